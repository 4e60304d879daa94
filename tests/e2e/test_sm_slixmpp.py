#!/usr/bin/env python3
"""E2E cross-check of XEP-0198 with an independent client library: slixmpp's stream
management plugin (xep_0198) enables SM with resumption on havend, loses its connection (the
transport is aborted, no closing stream), reconnects, resumes the same session and receives
what was sent to it meanwhile, with no unavailable presence in between.

Run by ctest (e2e.py.test_sm_slixmpp); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_sm_slixmpp.py -v
"""

import asyncio
import logging
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import (TestServer, ensure_slixmpp, slixmpp_address,  # noqa: E402
                           slixmpp_client)

ensure_slixmpp()  # re-executes under /usr/bin/python3 when this interpreter lacks slixmpp

from muc_testlib import PASSWORD, Client, body, is_message, is_presence  # noqa: E402

logging.getLogger("asyncio").setLevel(logging.CRITICAL)
TIMEOUT = 10.0


class SlixmppResumption(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer()
        for local in ("alice", "bob"):
            cls.srv.add_user(local, PASSWORD)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_resume_after_a_lost_connection(self):
        alice = slixmpp_client(self.srv, "alice", PASSWORD, resource="phone")
        alice.register_plugin("xep_0198")
        loop = alice.loop
        events = {name: asyncio.Queue() for name in
                  ("session_start", "sm_enabled", "session_resumed", "sm_failed", "message",
                   "disconnected", "stanza_acked")}
        for name, queue in events.items():
            alice.add_event_handler(name, lambda ev, q=queue: q.put_nowait(ev))

        def wait(name, timeout=TIMEOUT):
            return loop.run_until_complete(asyncio.wait_for(events[name].get(), timeout))

        def connect():
            alice.connect(slixmpp_address(self.srv), use_ssl=False, force_starttls=True)

        connect()
        wait("session_start")
        wait("sm_enabled")
        sm = alice.plugin["xep_0198"]
        self.assertTrue(sm.sm_id, "havend gave slixmpp no resumption id")
        alice.send_presence()

        bob = Client(self.srv, "bob", "desk")
        try:
            bob.send("<message type='chat' to='%s'><body>first</body></message>" % alice.boundjid)
            self.assertEqual(wait("message")["body"], "first")

            # The network goes: no closing stream, the server only sees the socket close.
            alice.transport.abort()
            wait("disconnected")
            bob.send("<message type='chat' to='%s'><body>while-away</body></message>"
                     % alice.boundjid)
            bob.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")

            connect()
            resumed = wait("session_resumed")
            self.assertIsNotNone(resumed)
            self.assertEqual(events["sm_failed"].qsize(), 0)
            self.assertEqual(events["session_start"].qsize(), 0, "a new session, not resumed")
            self.assertEqual(wait("message")["body"], "while-away")

            # The same session: bob never saw alice go, and messages keep flowing.
            bob.send("<message type='chat' to='%s'><body>after</body></message>"
                     % alice.boundjid)
            self.assertEqual(wait("message")["body"], "after")
            bob.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
            self.assertEqual(bob.pending(lambda e: is_presence(e, str(alice.boundjid),
                                                              "unavailable")), [])
            # What alice sends reaches bob, and havend acknowledges it (the counts agree).
            alice.send_message(mto="bob@localhost/desk", mbody="from-alice", mtype="chat")
            # bob waits in a thread while the loop runs alice's client.
            got = loop.run_until_complete(loop.run_in_executor(None, lambda: bob.expect(
                lambda e: is_message(e) and body(e) == "from-alice", "alice's message")))
            sm.request_ack()
            wait("stanza_acked")
            self.assertEqual(got.get("from"), str(alice.boundjid))
        finally:
            bob.close()
            try:
                loop.run_until_complete(asyncio.wait_for(alice.disconnect(wait=1.0), 5))
            except Exception:
                pass


if __name__ == "__main__":
    unittest.main()
