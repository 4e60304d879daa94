#!/usr/bin/env python3
"""E2E: XEP-0198 Stream Management, XEP-0352 Client State Indication and the server's
keepalive pings (issue 13), over real sockets against a real havend.

Raw streams (muc_testlib.Client) so every count and every element is checked exactly: the
<sm/> feature, <enable/>/<enabled/>, <r/>/<a/> in both directions, resumption on a new
connection with the unacknowledged stanzas resent in order, <failed/> for unknown, foreign and
expired ids, the resumption window running out (messages to offline storage, presence
unavailable), the queue bound, and dead connections found by the keepalive ping. A connection
"dies" here the way a phone's does: the socket is shut down without </stream:stream>.

Waiting is for stanzas (bounded by TIMEOUT), never a sleep, except where time itself is the
subject (the resumption window and the ping timeout, both set to about a second).

Run by ctest (e2e.py.test_stream_management); by hand: HAVEND=build/havend
HAVENCTL=build/havenctl /usr/bin/python3 tests/e2e/test_stream_management.py -v
"""

import os
import socket
import sys
import time
import unittest
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from muc_testlib import (TIMEOUT, Client, ServerCase, body, is_message,  # noqa: E402
                         is_presence, jid, kind, q, show)

NS_SM = "urn:xmpp:sm:3"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_STREAMS = "http://etherx.jabber.org/streams"
NS_XMPP_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"
USERS = ("alice", "bob", "carol")


def is_sm(el: ET.Element, name: str) -> bool:
    return el.tag == q(name, NS_SM)


def drop(c: Client) -> None:
    """The connection dies without a closing stream (a phone losing its network)."""
    try:
        c.rs.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    c.rs.close()


def enable(c: Client, resume: bool = False, extra: str = "") -> ET.Element:
    c.send("<enable xmlns='%s'%s%s/>" % (NS_SM, " resume='true'" if resume else "", extra))
    return c.expect(lambda e: is_sm(e, "enabled") or is_sm(e, "failed"), "<enabled/>")


def ack_count(c: Client) -> int:
    c.send("<r xmlns='%s'/>" % NS_SM)
    return int(c.expect(lambda e: is_sm(e, "a"), "<a/>").get("h"))


def chat(sender: Client, to: str, text: str) -> None:
    sender.send("<message type='chat' to=%s><body>%s</body></message>" % (quoteattr(to), text))


def bodies_from(c: Client, frm: str, n: int, what: str):
    out = []
    for i in range(n):
        m = c.expect(lambda e: is_message(e) and (e.get("from") or "").startswith(frm)
                     and body(e) is not None, "%s (%d of %d)" % (what, i + 1, n))
        out.append(body(m))
    return out


class SmCase(ServerCase):
    users = USERS

    def resume(self, local: str, previd: str, h: int) -> (Client, ET.Element):
        c = self.client(local, bind=False)
        c.send("<resume xmlns='%s' previd=%s h='%d'/>" % (NS_SM, quoteattr(previd), h))
        answer = c.expect(lambda e: is_sm(e, "resumed") or is_sm(e, "failed"),
                          "<resumed/> or <failed/>")
        return c, answer

    def contacts(self):
        """alice and bob, subscribed both ways (once per server), both online, each having
        seen the other's presence."""
        a, b = self.client("alice"), self.client("bob", "desk")
        if not getattr(type(self), "subscribed", False):
            for x, y in ((a, b), (b, a)):
                x.send("<presence type='subscribe' to=%s/>" % quoteattr(y.bare))
                y.expect(lambda e: is_presence(e, x.bare, "subscribe"), "subscription request")
                y.send("<presence type='subscribed' to=%s/>" % quoteattr(x.bare))
                x.expect(lambda e: is_presence(e, y.jid, None), "the contact's presence")
            type(self).subscribed = True
        else:
            b.expect(lambda e: is_presence(e, a.jid, None), "alice's presence")
            a.expect(lambda e: is_presence(e, b.jid, None), "bob's presence")
        return a, b


class Negotiation(SmCase):
    def test_feature_offered_after_authentication_only(self):
        """§3: <sm/> is a feature of the authenticated stream."""
        c = self.client("alice", bind=False)
        self.assertIn("urn:xmpp:sm:3", c.features)
        with socket.create_connection(("127.0.0.1", self.srv.c2s_port), timeout=5) as s:
            s.sendall(b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
                      b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
            data = b""
            while b"</stream:features>" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertNotIn(b"urn:xmpp:sm:3", data)

    def test_enable_before_bind_fails(self):
        """§3: enabling before a resource is bound is an unexpected request."""
        c = self.client("alice", bind=False)
        f = enable(c)
        self.assertTrue(is_sm(f, "failed"), show(f))
        self.assertIsNotNone(f.find(q("unexpected-request", NS_STANZAS)), show(f))

    def test_enable_twice_fails(self):
        c = self.client("alice", presence=False)
        self.assertTrue(is_sm(enable(c), "enabled"))
        f = enable(c)
        self.assertTrue(is_sm(f, "failed"), show(f))
        self.assertIsNotNone(f.find(q("unexpected-request", NS_STANZAS)), show(f))

    def test_enabled_without_resumption_has_no_id(self):
        c = self.client("alice", presence=False)
        e = enable(c)
        self.assertTrue(is_sm(e, "enabled"), show(e))
        self.assertIsNone(e.get("id"))
        self.assertNotIn(e.get("resume"), ("true", "1"))

    def test_enabled_with_resumption(self):
        """§5: an id, resume='true' and the window in seconds (never more than the client
        asked for)."""
        c = self.client("alice", presence=False)
        e = enable(c, resume=True)
        self.assertGreaterEqual(len(e.get("id") or ""), 16)
        self.assertEqual(e.get("resume"), "true")
        self.assertEqual(int(e.get("max")), 600)
        d = self.client("alice", "tablet", presence=False)
        self.assertEqual(int(enable(d, resume=True, extra=" max='30'").get("max")), 30)

    def test_sm_element_without_enable_is_a_stream_error(self):
        c = self.client("alice", presence=False)
        c.send("<r xmlns='%s'/>" % NS_SM)
        err = c.expect(lambda e: e.tag == q("error", NS_STREAMS), "stream error")
        self.assertIsNotNone(err.find(q("unsupported-stanza-type", NS_XMPP_STREAMS)), show(err))


class Counting(SmCase):
    def test_server_counts_what_it_received(self):
        """§4: h is the number of stanzas the server handled since <enable/>; non-stanzas
        (<r/> itself) are not counted."""
        c = self.client("alice", presence=False)
        c.send("<presence/>")  # before <enable/>: not counted
        enable(c)
        self.assertEqual(ack_count(c), 0)
        for i in range(3):
            c.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        self.assertEqual(ack_count(c), 3)
        c.send("<presence/>")
        self.assertEqual(ack_count(c), 4)

    def test_server_requests_acks_and_takes_them(self):
        """§4: after a burst the server asks with <r/>; the client's <a/> is accepted, and an
        old (smaller) h again is harmless."""
        a = self.client("alice")
        enable(a)
        b = self.client("bob", "desk")
        for i in range(12):
            chat(b, a.bare, "m%d" % i)
        got = bodies_from(a, b.bare, 12, "message")
        self.assertEqual(got, ["m%d" % i for i in range(12)])
        a.expect(lambda e: is_sm(e, "r"), "the server's <r/>")
        a.send("<a xmlns='%s' h='12'/>" % NS_SM)
        a.send("<a xmlns='%s' h='5'/>" % NS_SM)
        # Still a working stream: a round trip answers.
        self.assertEqual(a.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>").get("type"),
                         "result")

    def test_ack_beyond_what_was_sent_ends_the_stream(self):
        """§4: an h above the number of stanzas sent is undefined-condition."""
        c = self.client("alice", presence=False)
        enable(c)
        c.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")  # one stanza sent to us
        c.send("<a xmlns='%s' h='5'/>" % NS_SM)
        err = c.expect(lambda e: e.tag == q("error", NS_STREAMS), "stream error")
        self.assertIsNotNone(err.find(q("undefined-condition", NS_XMPP_STREAMS)), show(err))

    def test_malformed_h_is_bad_format(self):
        c = self.client("alice", presence=False)
        enable(c)
        c.send("<a xmlns='%s' h='-1'/>" % NS_SM)
        err = c.expect(lambda e: e.tag == q("error", NS_STREAMS), "stream error")
        self.assertIsNotNone(err.find(q("bad-format", NS_XMPP_STREAMS)), show(err))


class Resumption(SmCase):
    def test_resume_resends_unacknowledged_in_order_and_presence_stays(self):
        """§5: the client comes back on a new connection; the server answers <resumed/> with
        its count and sends again, in order, what the client had not acknowledged. Meanwhile
        its contacts never saw it go unavailable, and messages sent while it was away wait."""
        a, b = self.contacts()
        e = enable(a, resume=True)
        token = e.get("id")
        for i in range(3):
            chat(b, a.jid, "before-%d" % i)
        self.assertEqual(bodies_from(a, b.bare, 3, "message"),
                         ["before-0", "before-1", "before-2"])
        a.send("<a xmlns='%s' h='1'/>" % NS_SM)  # only the first one is acknowledged
        a.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        drop(a)
        for i in range(2):
            chat(b, a.jid, "away-%d" % i)
        # The server's round trip for bob: whatever alice's going would have caused, bob
        # would have it by now.
        b.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        self.assertEqual(b.pending(lambda el: is_presence(el, a.jid, "unavailable")), [])
        self.assertEqual([el for el in b.queue if kind(el) == "message"], [])  # no bounces
        a2, answer = self.resume("alice", token, 1)
        self.assertTrue(is_sm(answer, "resumed"), show(answer))
        self.assertEqual(answer.get("previd"), token)
        self.assertEqual(int(answer.get("h")), 1)  # alice sent one stanza after <enable/>
        # The ping's result (acked? no: h=1 covered the first message only) comes again too.
        got = bodies_from(a2, b.bare, 4, "resent message")
        self.assertEqual(got, ["before-1", "before-2", "away-0", "away-1"])
        # The resumed stream is the old session: same JID, available, messages flow.
        chat(b, a.jid, "after")
        self.assertEqual(bodies_from(a2, b.bare, 1, "message"), ["after"])
        self.assertEqual(b.pending(lambda el: is_presence(el, a.jid, "unavailable")), [])
        # And it can be resumed again with the same id.
        n = ack_count(a2)
        self.assertGreaterEqual(n, 1)
        drop(a2)
        a3, answer = self.resume("alice", token, 0)
        self.assertTrue(is_sm(answer, "resumed"), show(answer))

    def test_resume_while_the_old_connection_still_looks_alive(self):
        """The client saw its connection die before the server did: the resumption takes the
        session from the old connection, which ends without a word."""
        a, b = self.contacts()
        token = enable(a, resume=True).get("id")
        chat(b, a.jid, "one")
        bodies_from(a, b.bare, 1, "message")
        a2, answer = self.resume("alice", token, 0)
        self.assertTrue(is_sm(answer, "resumed"), show(answer))
        self.assertEqual(bodies_from(a2, b.bare, 1, "resent message"), ["one"])
        self.assertTrue(a.rs.wait_closed(TIMEOUT), "the old connection was not closed")
        b.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        self.assertEqual(b.pending(lambda el: is_presence(el, a.jid, "unavailable")), [])

    def test_unknown_and_foreign_ids(self):
        """§5: an unknown id is item-not-found; another account's id gets exactly the same
        answer (no h) and leaves that session resumable."""
        a = self.client("alice", presence=False)
        token = enable(a, resume=True).get("id")
        drop(a)
        _, answer = self.resume("bob", "0123456789abcdef0123456789abcdef", 0)
        self.assertTrue(is_sm(answer, "failed"), show(answer))
        self.assertIsNotNone(answer.find(q("item-not-found", NS_STANZAS)), show(answer))
        self.assertIsNone(answer.get("h"))
        _, foreign = self.resume("bob", token, 0)
        self.assertEqual(ET.tostring(foreign), ET.tostring(answer))
        _, mine = self.resume("alice", token, 0)
        self.assertTrue(is_sm(mine, "resumed"), show(mine))

    def test_bad_h_on_resume_fails_and_leaves_the_session_resumable(self):
        """§5: an h beyond what was sent is undefined-condition (with the server's count), a
        missing h bad-request; neither ends the waiting session."""
        a = self.client("alice", presence=False)
        token = enable(a, resume=True).get("id")
        drop(a)
        _, answer = self.resume("alice", token, 7)
        self.assertTrue(is_sm(answer, "failed"), show(answer))
        self.assertIsNotNone(answer.find(q("undefined-condition", NS_STANZAS)), show(answer))
        self.assertEqual(answer.get("h"), "0")
        c = self.client("alice", bind=False)
        c.send("<resume xmlns='%s' previd=%s/>" % (NS_SM, quoteattr(token)))
        f = c.expect(lambda e: is_sm(e, "failed"), "<failed/>")
        self.assertIsNotNone(f.find(q("bad-request", NS_STANZAS)), show(f))
        _, mine = self.resume("alice", token, 0)
        self.assertTrue(is_sm(mine, "resumed"), show(mine))

    def test_resume_when_bound_fails(self):
        a = self.client("alice", presence=False)
        token = enable(a, resume=True).get("id")
        a.send("<resume xmlns='%s' previd=%s h='0'/>" % (NS_SM, quoteattr(token)))
        f = a.expect(lambda e: is_sm(e, "failed"), "<failed/>")
        self.assertIsNotNone(f.find(q("unexpected-request", NS_STANZAS)), show(f))


class Expiry(SmCase):
    config = {"c2s.resume_timeout_s": 1, "c2s.sm_max_unacked": 10}

    def test_window_ends_messages_go_offline_once_presence_unavailable(self):
        """When the window ends: presence unavailable, unacknowledged messages to offline
        storage (delivered once at the next login, never bounced), and the old id is
        <failed/> with the count the session ended with."""
        a, b = self.contacts()
        token = enable(a, resume=True).get("id")
        chat(b, a.jid, "seen-and-acked")
        bodies_from(a, b.bare, 1, "message")
        a.send("<a xmlns='%s' h='1'/>" % NS_SM)
        a.send("<presence><status>here</status></presence>")  # one stanza from alice
        b.expect(lambda e: is_presence(e, a.jid, None), "alice's new status")
        chat(b, a.jid, "unacked")
        bodies_from(a, b.bare, 1, "message")
        drop(a)
        chat(b, a.jid, "while-away")
        b.expect(lambda e: is_presence(e, a.jid, "unavailable"), "alice unavailable",
                 timeout=10)
        self.assertEqual([el for el in b.queue if kind(el) == "message"], [])  # no bounces
        _, answer = self.resume("alice", token, 0)
        self.assertTrue(is_sm(answer, "failed"), show(answer))
        self.assertIsNotNone(answer.find(q("item-not-found", NS_STANZAS)), show(answer))
        self.assertEqual(answer.get("h"), "1")
        fresh = self.client("alice", "laptop")
        got = bodies_from(fresh, b.bare, 2, "offline message")
        self.assertEqual(got, ["unacked", "while-away"])
        fresh.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        self.assertEqual([body(el) for el in fresh.queue if kind(el) == "message"], [])

    def test_queue_bound_ends_a_waiting_session(self):
        """A session away for long in a busy conversation does not grow without bound: past
        [c2s] sm_max_unacked it ends, and what it never acknowledged goes offline."""
        a = self.client("alice")
        token = enable(a, resume=True).get("id")
        drop(a)
        b = self.client("bob", "desk")
        for i in range(12):
            chat(b, jid("alice"), "q%d" % i)
        b.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        _, answer = self.resume("alice", token, 0)
        self.assertTrue(is_sm(answer, "failed"), show(answer))
        fresh = self.client("alice", "laptop")
        self.assertEqual(bodies_from(fresh, b.bare, 12, "offline message"),
                         ["q%d" % i for i in range(12)])

    def test_clean_close_routes_unacknowledged_messages_again(self):
        """§5 business rules: a stream closed with stanzas unacknowledged hands them on as if
        they had not been delivered (here: offline storage)."""
        a = self.client("alice")
        enable(a)
        b = self.client("bob", "desk")
        chat(b, a.bare, "unacked-at-close")
        bodies_from(a, b.bare, 1, "message")
        a.send("</stream:stream>")
        self.assertTrue(a.rs.wait_closed(TIMEOUT))
        fresh = self.client("alice", "laptop")
        self.assertEqual(bodies_from(fresh, b.bare, 1, "offline message"), ["unacked-at-close"])


class EndOfSession(SmCase):
    config = {"limits.max_sessions_per_account": 3}

    def test_private_message_and_request_are_handed_on(self):
        """Unacknowledged at the end: a message marked <private/> (XEP-0280) goes offline like
        any other, and an IQ request is answered with an error instead of being lost."""
        a = self.client("alice")
        enable(a)
        b = self.client("bob", "desk")
        b.send("<message type='chat' to=%s><body>private one</body>"
               "<private xmlns='urn:xmpp:carbons:2'/></message>" % quoteattr(a.jid))
        bodies_from(a, b.bare, 1, "message")
        b.send("<iq type='get' id='v1' to=%s><query xmlns='jabber:iq:version'/></iq>"
               % quoteattr(a.jid))
        a.expect(lambda e: kind(e) == "iq" and e.get("id") == "v1", "bob's request")
        a.send("</stream:stream>")
        self.assertTrue(a.rs.wait_closed(TIMEOUT))
        err = b.expect(lambda e: kind(e) == "iq" and e.get("id") == "v1", "an answer")
        self.assertEqual(err.get("type"), "error", show(err))
        fresh = self.client("alice", "laptop")
        self.assertEqual(bodies_from(fresh, b.bare, 1, "offline message"), ["private one"])

    def test_waiting_sessions_count_against_the_session_limit(self):
        """[limits] max_sessions_per_account: logging in and dropping the connection over and
        over cannot pile up waiting sessions; binding one more ends the oldest."""
        tokens = []
        for i in range(4):
            c = self.client("carol", "r%d" % i, presence=False)
            tokens.append(enable(c, resume=True).get("id"))
            drop(c)
        _, oldest = self.resume("carol", tokens[0], 0)
        self.assertTrue(is_sm(oldest, "failed"), show(oldest))
        _, newest = self.resume("carol", tokens[3], 0)
        self.assertTrue(is_sm(newest, "resumed"), show(newest))


NS_CSI = "urn:xmpp:csi:0"
NS_MUC = "http://jabber.org/protocol/muc"


class ClientState(SmCase):
    """XEP-0352: what an inactive client gets at once and what waits."""

    def presences_from(self, c: Client, frm: str):
        return [el for el in c.log if is_presence(el, frm)]

    def settle(self, inactive: Client, other: Client):
        """After `other`'s round trip the server has handled what `other` sent; what it wrote
        to `inactive` is read for half a second. No round trip of `inactive`'s own can show
        this: its IQ result is urgent and would bring everything held along (by design)."""
        other.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        deadline = time.monotonic() + 0.5
        while inactive._pump(deadline):
            pass

    def test_feature_offered(self):
        c = self.client("alice", bind=False)
        self.assertIn(NS_CSI, c.features)

    def test_presence_waits_latest_only_and_goes_before_a_message(self):
        a, b = self.contacts()
        a.send("<inactive xmlns='%s'/>" % NS_CSI)
        a.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")  # handled before bob's updates
        seen_before = len(self.presences_from(a, b.jid))
        for status in ("one", "two", "three"):
            b.send("<presence><status>%s</status></presence>" % status)
        self.settle(a, b)
        self.assertEqual(len(self.presences_from(a, b.jid)), seen_before, "presence not held")
        chat(b, a.bare, "wake up")
        m = a.expect(lambda e: is_message(e) and body(e) == "wake up", "the message")
        held = self.presences_from(a, b.jid)[seen_before:]
        self.assertEqual([p.findtext(q("status", "jabber:client")) for p in held], ["three"])
        self.assertLess(a.log.index(held[0]), a.log.index(m), "order changed")

    def test_chat_states_wait_until_active(self):
        a, b = self.contacts()
        a.send("<inactive xmlns='%s'/>" % NS_CSI)
        a.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        b.send("<message type='chat' to=%s><composing xmlns='http://jabber.org/protocol/"
               "chatstates'/></message>" % quoteattr(a.jid))
        self.settle(a, b)
        self.assertEqual(a.pending(lambda e: is_message(e, b.jid)), [])
        a.send("<active xmlns='%s'/>" % NS_CSI)
        a.expect(lambda e: is_message(e, b.jid), "the chat state, once active")

    def test_room_message_waits_unless_it_mentions_me(self):
        room = "csi-room@groups.localhost"
        a = self.client("alice", "room")
        a.send("<presence to='%s/alice'><x xmlns='%s'/></presence>" % (room, NS_MUC))
        a.expect(lambda e: is_presence(e, room + "/alice", None), "self-presence")
        a.iq(room, "<query xmlns='%s#owner'><x xmlns='jabber:x:data' type='submit'/></query>"
             % NS_MUC, "set")
        b = self.client("bob", "room")
        b.send("<presence to='%s/bob'><x xmlns='%s'/></presence>" % (room, NS_MUC))
        b.expect(lambda e: is_presence(e, room + "/bob", None), "self-presence")
        a.expect(lambda e: is_presence(e, room + "/bob", None), "bob joined")
        a.send("<inactive xmlns='%s'/>" % NS_CSI)
        a.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        b.send("<message type='groupchat' to='%s'><body>hello all</body></message>" % room)
        b.expect(lambda e: is_message(e, room + "/bob") and body(e) == "hello all", "echo")
        self.settle(a, b)
        self.assertEqual(a.pending(lambda e: is_message(e, room + "/bob")), [])
        b.send("<message type='groupchat' to='%s'><body>alice: look</body></message>" % room)
        got = [body(a.expect(lambda e: is_message(e, room + "/bob"), "room message"))
               for _ in range(2)]
        self.assertEqual(got, ["hello all", "alice: look"])


class Keepalive(SmCase):
    config = {"c2s.ping_interval_s": 2, "c2s.ping_timeout_s": 2}

    def wait_silently(self, silent: Client, others, seconds: float) -> bool:
        """Reads `silent`'s socket without ever answering (a dead phone whose socket stays
        open) while the others keep answering the server's pings; True once `silent` was
        dropped."""
        deadline = time.monotonic() + seconds
        while not silent.rs.closed and time.monotonic() < deadline:
            silent.rs.read_any(timeout=0.2)
            for o in others:
                o._pump(time.monotonic() + 0.05)
        return silent.rs.closed

    def test_silent_connection_is_dropped_and_a_live_one_kept(self):
        """The server pings a quiet client; one that answers stays, one that does not is
        dropped within interval + timeout, and its contacts see it go."""
        a, b = self.contacts()  # Client answers pings while it reads (muc_testlib)
        self.assertTrue(self.wait_silently(a, [b], 10), "an unanswered ping did not drop it")
        b.expect(lambda e: is_presence(e, a.jid, "unavailable"), "alice unavailable")
        pings = [el for el in b.log if kind(el) == "iq" and el.get("type") == "get"
                 and el.find(q("ping", "urn:xmpp:ping")) is not None]
        self.assertGreaterEqual(len(pings), 1, "bob was never pinged")
        self.assertEqual(b.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>").get("type"),
                         "result")

    def test_dead_connection_with_resumption_detaches(self):
        """With XEP-0198 the dropped connection's session waits for its client instead."""
        a, b = self.contacts()
        token = enable(a, resume=True).get("id")
        self.assertTrue(self.wait_silently(a, [b], 10), "the silent connection stayed")
        b.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")
        self.assertEqual(b.pending(lambda el: is_presence(el, a.jid, "unavailable")), [])
        _, answer = self.resume("alice", token, 0)
        self.assertTrue(is_sm(answer, "resumed"), show(answer))


if __name__ == "__main__":
    unittest.main()
