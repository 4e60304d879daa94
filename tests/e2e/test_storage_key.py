#!/usr/bin/env python3
"""E2E: the sealing key can live outside data_dir ([storage] key_file, issue 11).

A copy of data_dir alone must not be enough to read what the server sealed. With key_file set,
the key is created there (mode 0600) and not in data_dir; an offline message sealed with it is
delivered after a restart; and the database file holds no trace of the message body.

Run by ctest (e2e.py.test_storage_key); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_storage_key.py -v
"""

import os
import stat
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import RawStream, TestServer  # noqa: E402

PASSWORD = "correct horse battery"
BODY = "a secret only the key opens 7f3a"


class KeyFileOutsideDataDir(unittest.TestCase):
    def test_key_elsewhere_and_offline_message_survives_restart(self):
        key_dir = tempfile.mkdtemp(prefix="haven-key-")
        key_file = os.path.join(key_dir, "haven.key")
        srv = TestServer({"storage.key_file": key_file})
        try:
            srv.add_user("ann", PASSWORD)
            srv.add_user("bo", PASSWORD)
            srv.start()
            st = os.stat(key_file)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "storage.key")))
            ann = RawStream(srv.direct_tls_port, direct_tls=True)
            self.assertIsNotNone(ann.login("ann", PASSWORD, resource="r", timeout=10))
            self.assertTrue(ann.send("<message to='bo@localhost' type='chat' id='k1'>"
                                     "<body>%s</body></message>" % BODY))
            self.assertTrue(ann.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/>"
                                     "</iq>"))
            self.assertIsNotNone(ann.read_match(r"<iq[^>]*id='sync'", timeout=5))
            ann.close()
            self.assertEqual(srv.stop(), 0)
            for name in os.listdir(srv.data_dir):
                path = os.path.join(srv.data_dir, name)
                if os.path.isfile(path):
                    with open(path, "rb") as f:
                        self.assertNotIn(BODY.encode(), f.read(), name)
            srv.start()
            bo = RawStream(srv.direct_tls_port, direct_tls=True)
            try:
                self.assertIsNotNone(bo.login("bo", PASSWORD, resource="r", timeout=10))
                self.assertTrue(bo.send("<presence/>"))
                self.assertIsNotNone(bo.read_until(BODY, 5), srv.log_tail())
            finally:
                bo.close()
        finally:
            srv.close()
            if os.path.exists(key_file):
                os.unlink(key_file)
            os.rmdir(key_dir)


if __name__ == "__main__":
    unittest.main()
