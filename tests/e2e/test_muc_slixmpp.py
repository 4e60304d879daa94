#!/usr/bin/env python3
"""E2E cross-check of the XEP-0045 MUC service with an independent client library: two slixmpp
clients (plugin xep_0045) join a room at groups.localhost and exchange a groupchat message.

The first client creates the room (status 201) and accepts the default configuration (an
instant room, an empty submitted form); the second joins the unlocked room, then the first
writes to the room and both receive the message from the sender's occupant JID.

Run by ctest (e2e.py.test_muc_slixmpp); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_muc_slixmpp.py -v
"""

import asyncio
import logging
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import (TestServer, connect_slixmpp, ensure_slixmpp,  # noqa: E402
                           slixmpp_client)

ensure_slixmpp()  # re-executes under /usr/bin/python3 when this interpreter lacks slixmpp

from slixmpp import JID  # noqa: E402

PASSWORD = "correct horse battery"
ROOM = "slixroom@groups.localhost"
TIMEOUT = 10.0
# slixmpp leaves a filter task pending per closed stream; asyncio reports each at exit.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def run(loop, awaitable, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(awaitable, timeout))


class SlixmppMuc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer()
        try:
            for local in ("alice", "bob"):
                cls.srv.add_user(local, PASSWORD)
            cls.srv.start()
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            try:
                run(c.loop, c.disconnect(wait=1.0), timeout=5)
            except Exception:  # already gone: nothing to close
                pass

    def connect(self, local, resource):
        c = slixmpp_client(self.srv, local, PASSWORD, resource=resource)
        c.register_plugin("xep_0030")
        c.register_plugin("xep_0004")
        c.register_plugin("xep_0045")
        self.clients.append(c)
        self.assertTrue(connect_slixmpp(c, self.srv, timeout=TIMEOUT),
                        "slixmpp login as %s failed; log:\n%s" % (local, self.srv.log_tail()))
        return c

    def test_two_clients_join_and_exchange_groupchat(self):
        alice = self.connect("alice", "sa")
        bob = self.connect("bob", "sb")
        loop = alice.loop
        room = JID(ROOM)

        pres, subject, occupants, history = run(
            loop, alice["xep_0045"].join_muc_wait(room, "Alice", maxstanzas=0, timeout=TIMEOUT))
        self.assertEqual(pres["muc"]["status_codes"], {110, 201})
        self.assertEqual(pres["muc"]["affiliation"], "owner")
        self.assertEqual(pres["muc"]["role"], "moderator")
        # slixmpp's occupant list includes the self-presence.
        others = lambda ps: [str(p["from"]) for p in ps  # noqa: E731
                             if 110 not in p["muc"]["status_codes"]]
        self.assertEqual(others(occupants), [])
        # An instant room: the default configuration, an empty submitted form.
        form = alice["xep_0004"].make_form(ftype="submit")
        run(loop, alice["xep_0045"].set_room_config(room, form))

        bob_seen = loop.create_future()

        def on_presence(p):
            if p["from"].resource == "Bob" and not bob_seen.done():
                bob_seen.set_result(p)

        alice.add_event_handler("muc::%s::got_online" % ROOM, on_presence)
        pres, subject, occupants, history = run(
            loop, bob["xep_0045"].join_muc_wait(room, "Bob", timeout=TIMEOUT))
        self.assertEqual(pres["muc"]["status_codes"], {110})
        self.assertEqual(pres["muc"]["role"], "participant")
        self.assertEqual(others(occupants), [ROOM + "/Alice"])
        self.assertEqual(history, [])
        self.assertEqual(subject["subject"], "")
        run(loop, bob_seen)
        self.assertEqual(sorted(alice["xep_0045"].get_roster(room)), ["Alice", "Bob"])

        got = {name: loop.create_future() for name in ("alice", "bob")}

        def receiver(name):
            def on_message(msg):
                if msg["body"] == "hello room" and not got[name].done():
                    got[name].set_result(msg)
            return on_message

        alice.add_event_handler("groupchat_message", receiver("alice"))
        bob.add_event_handler("groupchat_message", receiver("bob"))
        alice.send_message(mto=room, mbody="hello room", mtype="groupchat")
        for name in ("bob", "alice"):  # the sender gets the reflection too
            msg = run(loop, got[name])
            self.assertEqual(str(msg["from"]), ROOM + "/Alice")
            self.assertEqual(msg["type"], "groupchat")

        reply = loop.create_future()
        alice.add_event_handler("groupchat_message", lambda m: m["body"] == "hi alice"
                                and not reply.done() and reply.set_result(m))
        bob.send_message(mto=room, mbody="hi alice", mtype="groupchat")
        msg = run(loop, reply)
        self.assertEqual(str(msg["from"]), ROOM + "/Bob")


if __name__ == "__main__":
    unittest.main(verbosity=2)
