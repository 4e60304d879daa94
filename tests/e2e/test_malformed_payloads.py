#!/usr/bin/env python3
"""E2E over raw sockets: malformed and oversized payloads from a logged-in account (issue 10,
point 1 "Containment").

IQ handlers are keyed by the payload's namespace only, so a payload with the right namespace and
the wrong element name (<x xmlns='http://jabber.org/protocol/commands'/>) reaches a handler that
expects <command/>. Each such request must get the exact standard stanza error (RFC 6120
§8.3.3), an error or result must never be answered (§8.3.1), and afterwards the server still
answers a ping on the same stream and a fresh pair of accounts logs in and exchanges a message.

The cases that crashed or misbehaved before the fix:
- XEP-0050: an ad-hoc set whose payload is not <command/> killed havend (null dereference);
  now bad-request. An unknown action is bad-request + <malformed-action/> (XEP-0050 §4.6).
- XEP-0191: a request with more items than a block list may hold is refused before thousands of
  JIDs are parsed and de-duplicated (quadratic) on the event loop: policy-violation.
- XEP-0049: a get naming more fragments than a user may store is refused (each could answer
  with a fragment of up to max_bytes): policy-violation.
- RFC 6121 §3.1.3: a pending subscription request is stored in the recipient's roster and
  replayed at each login; a huge one is kept without its payload.
The other cases check answers that were already right and must stay so.

Run by ctest (e2e.py.test_malformed_payloads); by hand: HAVEND=build/havend
HAVENCTL=build/havenctl /usr/bin/python3 tests/e2e/test_malformed_payloads.py -v
"""

import os
import re
import sys
import unittest
import uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import RawStream, TestServer  # noqa: E402

PASSWORD = "correct horse battery"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_BLOCKING = "urn:xmpp:blocking"
NS_PRIVATE = "jabber:iq:private"
DOMAIN = "localhost"

BLOCKING_MAX_ITEMS = 50
PRIVATE_MAX_ITEMS = 5
ROSTER_MAX_ITEMS = 5


class Reply:
    """An <iq/> answer: its type and, for errors, the defined condition and any other child
    of <error/> (the application-specific condition)."""

    def __init__(self, text: str):
        self.text = text
        el = ET.fromstring(text)
        self.type = el.get("type")
        self.condition = None
        self.app_conditions = []
        for error in el.iter():
            if error.tag.rpartition("}")[2] != "error" or error is el:
                continue
            for child in error:
                ns, _, name = child.tag[1:].partition("}")
                if ns == NS_STANZAS and name != "text":
                    self.condition = name
                elif ns != NS_STANZAS:
                    self.app_conditions.append(child.tag)


class MalformedCase(unittest.TestCase):
    config: dict = {}
    roles: dict = {}  # local -> role, for accounts beyond the four members

    @classmethod
    def setUpClass(cls):
        config = {
            "blocking.max_items": BLOCKING_MAX_ITEMS,
            "private.max_items": PRIVATE_MAX_ITEMS,
            "roster.max_items": ROSTER_MAX_ITEMS,
        }
        config.update(cls.config)
        cls.srv = TestServer(config=config)
        for local in ("alice", "bob", "carol", "dave", "erin"):
            cls.srv.add_user(local, PASSWORD)
        for local, role in cls.roles.items():
            cls.srv.add_user(local, PASSWORD, role=role)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def setUp(self):
        self.streams = []

    def tearDown(self):
        for rs in self.streams:
            rs.close()

    def log_hint(self) -> str:
        return "\nserver log tail:\n" + self.srv.log_tail()

    def login(self, local="alice") -> RawStream:
        rs = RawStream(self.srv.c2s_port)
        self.streams.append(rs)
        jid = rs.login(local, PASSWORD, resource=uuid.uuid4().hex[:8])
        self.assertIsNotNone(jid, "login as %s failed%s" % (local, self.log_hint()))
        rs.jid = jid
        return rs

    def iq(self, rs: RawStream, iq_type: str, payload: str, to: str = None,
           timeout: float = 5.0) -> Reply:
        """Sends one IQ and returns the answer with the same id."""
        iq_id = "m-" + uuid.uuid4().hex[:10]
        to_attr = " to='%s'" % to if to else ""
        self.assertTrue(rs.send("<iq type='%s' id='%s'%s>%s</iq>"
                                % (iq_type, iq_id, to_attr, payload)),
                        "the server closed the stream" + self.log_hint())
        m = rs.read_match(r"<iq\b[^>]*\bid=['\"]%s['\"](?:[^>]*/>|.*?</iq>)" % iq_id, timeout)
        self.assertIsNotNone(m, "no answer to %s (havend %s)%s"
                             % (payload[:120], "running" if self.srv.running() else "DEAD",
                                self.log_hint()))
        return Reply(m.group(0))

    def expect_error(self, rs, iq_type, payload, condition, to=None, app=None) -> Reply:
        r = self.iq(rs, iq_type, payload, to)
        self.assertEqual(r.type, "error", "expected %s for %s, got %s"
                         % (condition, payload[:120], r.text[:300]))
        self.assertEqual(r.condition, condition, "for %s: %s" % (payload[:120], r.text[:300]))
        if app is not None:
            self.assertIn(app, r.app_conditions, r.text[:300])
        return r

    def expect_ping(self, rs: RawStream):
        r = self.iq(rs, "get", "<ping xmlns='urn:xmpp:ping'/>", DOMAIN)
        self.assertEqual(r.type, "result", r.text)

    def assert_alive(self, sender="carol", recipient="dave"):
        """havend runs, and a fresh pair of accounts logs in and exchanges a message."""
        self.assertTrue(self.srv.running(), "havend died" + self.log_hint())
        token = uuid.uuid4().hex
        c = self.login(sender)
        d = self.login(recipient)
        self.assertTrue(c.send("<message to='%s' type='chat' id='live'><body>%s</body>"
                               "</message>" % (d.jid, token)))
        self.assertIsNotNone(d.read_until(token, timeout=5),
                             "message not delivered" + self.log_hint())


class MalformedPayloads(MalformedCase):

    def test_adhoc_set_with_a_payload_that_is_not_command_is_bad_request(self):
        # issue 10: this one stanza segfaulted the whole server.
        rs = self.login()
        self.expect_error(rs, "set", "<x xmlns='%s'/>" % NS_COMMANDS, "bad-request", DOMAIN)
        self.expect_ping(rs)
        self.assert_alive()

    def test_adhoc_unknown_action_is_malformed_action(self):
        rs = self.login()
        # XEP-0050 §4.6: bad-request with <malformed-action/>.
        self.expect_error(rs, "set", "<command xmlns='%s' node='%s' action='frobnicate'/>"
                          % (NS_COMMANDS, "urn:haven:none"), "bad-request", DOMAIN,
                          app="{%s}malformed-action" % NS_COMMANDS)
        # Known actions on a node that does not exist (or is not ours): item-not-found.
        self.expect_error(rs, "set", "<command xmlns='%s'/>" % NS_COMMANDS, "item-not-found",
                          DOMAIN)
        self.expect_error(rs, "set", "<command xmlns='%s' node='urn:haven:none' "
                          "action='cancel'/>" % NS_COMMANDS, "item-not-found", DOMAIN)
        self.expect_ping(rs)

    def test_wrong_element_in_a_handled_namespace(self):
        """Every IQ handler, given a payload of its namespace with the wrong element name."""
        rs = self.login()
        cases = [
            # (type, payload, to, condition)
            ("get", "<x xmlns='http://jabber.org/protocol/disco#info'/>", DOMAIN,
             "bad-request"),
            ("get", "<x xmlns='http://jabber.org/protocol/disco#items'/>", DOMAIN,
             "bad-request"),
            ("get", "<x xmlns='http://jabber.org/protocol/disco#info'/>", "bob@" + DOMAIN,
             "bad-request"),
            ("get", "<x xmlns='http://jabber.org/protocol/disco#items'/>", "bob@" + DOMAIN,
             "bad-request"),
            ("get", "<x xmlns='jabber:iq:roster'/>", None, "bad-request"),
            ("set", "<x xmlns='jabber:iq:roster'/>", None, "bad-request"),
            ("set", "<query xmlns='jabber:iq:roster'><item/></query>", None, "bad-request"),
            ("set", "<query xmlns='jabber:iq:roster'><item jid='a@b'/><item jid='c@d'/>"
             "</query>", None, "bad-request"),
            ("get", "<x xmlns='urn:xmpp:blocking'/>", None, "bad-request"),
            ("set", "<x xmlns='urn:xmpp:blocking'/>", None, "bad-request"),
            ("set", "<block xmlns='urn:xmpp:blocking'/>", None, "bad-request"),
            ("set", "<block xmlns='urn:xmpp:blocking'><item jid='a@b@c'/></block>", None,
             "jid-malformed"),
            ("set", "<x xmlns='urn:xmpp:carbons:2'/>", None, "bad-request"),
            ("get", "<x xmlns='vcard-temp'/>", None, "bad-request"),
            ("set", "<x xmlns='vcard-temp'/>", None, "bad-request"),
            ("get", "<x xmlns='vcard-temp'/>", "bob@" + DOMAIN, "bad-request"),
            ("get", "<x xmlns='jabber:iq:private'/>", None, "bad-request"),
            ("set", "<x xmlns='jabber:iq:private'/>", None, "bad-request"),
            ("get", "<query xmlns='jabber:iq:private'/>", None, "not-acceptable"),
            ("set", "<query xmlns='jabber:iq:private'><a/></query>", None, "not-acceptable"),
            ("get", "<x xmlns='jabber:iq:register'/>", DOMAIN, "service-unavailable"),
            ("set", "<x xmlns='jabber:iq:register'/>", None, "service-unavailable"),
            ("set", "<x xmlns='%s'/>" % NS_COMMANDS, DOMAIN, "bad-request"),
            ("get", "<x xmlns='urn:example:nobody'/>", DOMAIN, "service-unavailable"),
            ("get", "<x xmlns='urn:xmpp:ping'/>", DOMAIN, "bad-request"),
            ("get", "<x xmlns='urn:xmpp:ping'/>", "bob@" + DOMAIN, "bad-request"),
            ("get", "<x xmlns='jabber:iq:version'/>", DOMAIN, "bad-request"),
            # RFC 6120 §8.2.3: exactly one payload.
            ("get", "<ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/>", DOMAIN,
             "bad-request"),
            ("get", "", DOMAIN, "bad-request"),
        ]
        for iq_type, payload, to, condition in cases:
            with self.subTest(payload=payload, to=to):
                self.expect_error(rs, iq_type, payload, condition, to)
        self.expect_ping(rs)
        self.assert_alive()

    def test_errors_and_results_are_never_answered(self):
        # RFC 6120 §8.3.1: the same malformed payloads in an error or a result get no answer;
        # the next thing the stream carries is the pong.
        rs = self.login()
        for iq_type in ("error", "result"):
            for payload in ("<x xmlns='%s'/>" % NS_COMMANDS, "<x xmlns='urn:xmpp:carbons:2'/>",
                            "<x xmlns='urn:xmpp:blocking'/>", "<x xmlns='jabber:iq:roster'/>",
                            ""):
                for to in (DOMAIN, None):
                    to_attr = " to='%s'" % to if to else ""
                    self.assertTrue(rs.send("<iq type='%s' id='n-%s'%s>%s</iq>"
                                            % (iq_type, uuid.uuid4().hex[:6], to_attr,
                                               payload)))
        iq_id = "after-" + uuid.uuid4().hex[:8]
        rs.send("<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                % (iq_id, DOMAIN))
        first = rs.read_match(r"<iq\b.*?(?:/>|</iq>)", timeout=5)
        self.assertIsNotNone(first, "no pong" + self.log_hint())
        self.assertIn(iq_id, first.group(0), "an error or result was answered: "
                      + first.group(0))
        self.assert_alive()

    def test_block_request_with_more_items_than_a_list_holds(self):
        rs = self.login("bob")
        items = "".join("<item jid='u%d@example.net'/>" % i
                        for i in range(BLOCKING_MAX_ITEMS + 1))
        for verb in ("block", "unblock"):
            with self.subTest(verb=verb):
                r = self.expect_error(rs, "set", "<%s xmlns='%s'>%s</%s>"
                                      % (verb, NS_BLOCKING, items, verb), "policy-violation")
                self.assertIn("too many items", r.text)
        # A full list's worth is still fine, and so is unblocking it all again.
        items = "".join("<item jid='u%d@example.net'/>" % i for i in range(BLOCKING_MAX_ITEMS))
        self.assertEqual(self.iq(rs, "set", "<block xmlns='%s'>%s</block>"
                                 % (NS_BLOCKING, items)).type, "result")
        self.assertEqual(self.iq(rs, "set", "<unblock xmlns='%s'/>" % NS_BLOCKING).type,
                         "result")
        self.expect_ping(rs)

    def test_block_request_with_thousands_of_items(self):
        # 4,000 items (~100 KB, under the 256 KiB stanza cap and the 4,096-element cap, which
        # ends the stream itself): refused at once, the stream and the server go on.
        rs = self.login("bob")
        items = "".join("<item jid='x%d@e.net'/>" % i for i in range(4000))
        self.expect_error(rs, "set", "<unblock xmlns='%s'>%s</unblock>" % (NS_BLOCKING, items),
                          "policy-violation")
        self.expect_ping(rs)
        self.assert_alive()

    def test_private_get_naming_more_fragments_than_a_user_may_store(self):
        rs = self.login("bob")
        names = "".join("<f%d xmlns='urn:example:p'/>" % i for i in range(PRIVATE_MAX_ITEMS + 1))
        for iq_type in ("get", "set"):
            with self.subTest(type=iq_type):
                self.expect_error(rs, iq_type, "<query xmlns='%s'>%s</query>"
                                  % (NS_PRIVATE, names), "policy-violation")
        # Thousands of copies of one name: refused too, not answered thousands of times.
        many = "<f xmlns='urn:example:p'/>" * 4000
        self.expect_error(rs, "get", "<query xmlns='%s'>%s</query>" % (NS_PRIVATE, many),
                          "policy-violation")
        names = "".join("<f%d xmlns='urn:example:p'/>" % i for i in range(PRIVATE_MAX_ITEMS))
        self.assertEqual(self.iq(rs, "get", "<query xmlns='%s'>%s</query>"
                                 % (NS_PRIVATE, names)).type, "result")
        self.expect_ping(rs)

    def test_huge_pending_subscription_request_is_stored_without_its_payload(self):
        # RFC 6121 §3.1.3: bob is offline; alice's request waits in bob's roster and is shown
        # to him at login. A 100 KB status is delivered live but not stored and replayed.
        a = self.login("alice")
        big = "s" * 100000
        a.send("<presence to='bob@%s' type='subscribe'><status>%s</status></presence>"
               % (DOMAIN, big))
        small = "please add me"
        a.send("<presence to='carol@%s' type='subscribe'><status>%s</status></presence>"
               % (DOMAIN, small))
        self.expect_ping(a)  # both processed
        for local, status in (("bob", None), ("carol", small)):
            with self.subTest(recipient=local):
                rs = self.login(local)
                rs.send("<presence/>")
                m = rs.read_match(r"<presence\b[^>]*type=['\"]subscribe['\"][^>]*"
                                  r"(?:/>|>.*?</presence>)", timeout=5)
                self.assertIsNotNone(m, "the pending request was not shown" + self.log_hint())
                got = m.group(0)
                self.assertIn("alice@" + DOMAIN, got)
                self.assertTrue(big not in got and len(got) < 8192,
                                "the %d-byte request was stored whole" % len(got))
                if status:
                    self.assertIn(status, got)
                rs.close()
        self.assert_alive()


    def test_subscriptions_cannot_grow_the_roster_past_max_items(self):
        # RFC 6121 §3.1.2: an outbound subscribe (or pre-approval) adds a roster item; before
        # the fix any number of them did, past [roster] max_items, one row per stanza.
        rs = self.login("erin")
        for i in range(ROSTER_MAX_ITEMS):
            rs.send("<presence to='c%d@example.net' type='subscribe'/>" % i)
        self.expect_ping(rs)
        for stanza in ("<presence to='more@example.net' type='subscribe'/>",
                       "<presence to='more@example.net' type='subscribed'/>"):
            with self.subTest(stanza=stanza):
                rs.send(stanza)
                m = rs.read_match(r"<presence\b[^>]*from=['\"]more@example\.net['\"][^>]*>"
                                  r".*?</presence>", timeout=5)
                self.assertIsNotNone(m, "no bounce" + self.log_hint())
                self.assertIn("policy-violation", m.group(0))
        r = self.iq(rs, "get", "<query xmlns='jabber:iq:roster'/>")
        self.assertEqual(r.type, "result")
        self.assertEqual(r.text.count("<item "), ROSTER_MAX_ITEMS, r.text)
        self.assertNotIn("more@example.net", r.text)
        # An item already in the roster can still be asked again: nothing bounces (remote
        # errors go to available resources only, and erin sent no presence), so the next
        # thing the stream carries is the pong.
        rs.send("<presence to='c0@example.net' type='subscribe'/>")
        iq_id = "after-" + uuid.uuid4().hex[:8]
        rs.send("<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                % (iq_id, DOMAIN))
        first = rs.read_match(r"<(?:iq|presence)\b.*?(?:/>|</iq>|</presence>)", timeout=5)
        self.assertIsNotNone(first, "no pong" + self.log_hint())
        self.assertIn(iq_id, first.group(0))


class MalformedPayloadsUnderPolicy(MalformedCase):
    """The same crash from a member under the default peer-support policy (issue 10 tried it
    on the default config): members may address the server, so the stanza gets through."""

    config = {"peersupport.enabled": True}
    roles = {"sam": "supporter"}

    def test_member_adhoc_set_with_a_payload_that_is_not_command(self):
        rs = self.login("alice")
        self.expect_error(rs, "set", "<x xmlns='%s'/>" % NS_COMMANDS, "bad-request", DOMAIN)
        self.expect_ping(rs)
        # Members cannot write to each other under the policy; a supporter can write to one.
        self.assert_alive(sender="sam", recipient="bob")


if __name__ == "__main__":
    unittest.main(verbosity=2)
