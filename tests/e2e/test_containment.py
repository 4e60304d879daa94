#!/usr/bin/env python3
"""E2E over real sockets: a failure outside the event bus's guard ends no process (issue 10,
point 1 "Containment").

The router's own paths (the fallback's account lookup for a message to a bare JID, offline
storage) run outside the event bus's per-handler guard. A StorageError thrown there used to
reach io.run() and end havend, for everybody. Here a second process breaks the database under
the running server (it drops the accounts table, as a botched manual repair or a corrupted file
would), and a logged-in client sends messages whose routing needs the database: the sender
gets internal-server-error, its stream and everybody else's go on, and the log names the top
tag only.

Run by ctest (e2e.py.test_containment); by hand: HAVEND=build/havend
HAVENCTL=build/havenctl /usr/bin/python3 tests/e2e/test_containment.py -v
"""

import glob
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import RawStream, TestServer  # noqa: E402

PASSWORD = "correct horse battery"


class StorageFailure(unittest.TestCase):
    def test_broken_database_does_not_end_the_server(self):
        server = TestServer({"log.level": "info"})
        self.addCleanup(server.close)
        for local in ("alice", "bob"):
            server.add_user(local, PASSWORD)
        server.start()
        alice = RawStream(server.c2s_port)
        self.addCleanup(alice.close)
        self.assertIsNotNone(alice.login("alice", PASSWORD))
        bob = RawStream(server.c2s_port)
        self.addCleanup(bob.close)
        self.assertIsNotNone(bob.login("bob", PASSWORD))
        self.assertTrue(bob.send("<presence/>"))  # available: messages to bob need no storage
        self.assertIsNotNone(bob.read_until("<presence", timeout=5))

        dbs = [p for p in glob.glob(os.path.join(server.data_dir, "*"))
               if p.endswith((".db", ".sqlite", ".sqlite3"))]
        self.assertTrue(dbs, "database file in %s" % os.listdir(server.data_dir))
        db = sqlite3.connect(dbs[0], timeout=10, isolation_level=None)
        db.execute("PRAGMA foreign_keys=OFF")
        db.execute("DROP TABLE accounts")
        db.close()

        # Nobody online under that name: the router asks the database, which fails.
        self.assertTrue(alice.send("<message to='nobody@localhost' type='chat' id='m1'>"
                                   "<body>hello</body></message>"))
        err = alice.read_match(r"<message[^>]*id='m1'[^>]*>.*?</message>", timeout=10)
        self.assertIsNotNone(err, "no answer; log:\n" + server.log_tail())
        self.assertIn("type='error'", err.group(0))
        self.assertIn("<internal-server-error", err.group(0))
        self.assertTrue(server.running(), "havend died:\n" + server.log_tail())

        # The same stream and another one still work; online delivery needs no database.
        self.assertTrue(alice.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"))
        self.assertIsNotNone(alice.read_match(r"<iq[^>]*id='p1'", timeout=10))
        self.assertTrue(alice.send("<message to='%s' type='chat' id='m2'><body>still here"
                                   "</body></message>" % server.jid("bob")))
        self.assertIsNotNone(bob.read_until("still here", timeout=10))
        log = server.log_contents()
        self.assertIn("routing <message/> failed", log)
        self.assertNotIn("hello", log)


if __name__ == "__main__":
    unittest.main()
