#!/usr/bin/env python3
"""E2E: the peer-support rules inside XEP-0045 rooms (modules/peersupport/rooms.cpp) over real
sockets.

With the peer-support model on (sam a supporter, ada an admin, alice and bob members):
only staff create rooms; members meet in a room a supporter opened and talk to the room; but
everything that reaches a single person through the room (a private message, an IQ, a mediated
invitation) obeys the rule for that person's own address, and the refusal is exactly the one the
direct address gives. Private messages with the room's moderators work both ways; a member's
vCard is not for staff without a grant, through a room as anywhere. A second server with the
model off shows that the creation gate is the model's.

Same raw-XML approach as test_muc.py (whose small helpers are copied here): one server per
class, fresh connections and rooms per test; "not delivered" is proven by a round trip to the
MUC service after the refused request was answered (havend handles stanzas in order).

Run by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_muc_peersupport.py -v
"""

import itertools
import os
import socket
import ssl
import sys
import time
import unittest
import xml.etree.ElementTree as ET
from typing import Callable, List, Optional
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import TestServer  # noqa: E402
from muc_testlib import *  # noqa: E402,F401,F403 (the shared names and Client)
from muc_testlib import _seq  # noqa: E402

USERS = ("sam", "ada", "alice", "bob")


# modules/peersupport/peersupport.cpp (register_texts), README.md §6.1.
REFUSAL_EN = ("This contact cannot be reached. Here you can write to the peer supporters who "
              "contacted you and to the team addresses; members cannot contact each other.")
REFUSAL_DE = ("Dieser Kontakt ist nicht erreichbar. Hier kannst du den Peersupporter*innen "
              "schreiben, die dich angeschrieben haben, und den Team-Adressen; Mitglieder "
              "können einander nicht anschreiben.")
# xeps/xep0045_muc/service.cpp (register_texts).
CREATE_REFUSED_EN = "Rooms on this service are created by its staff."
CREATE_REFUSED_DE = "Räume dieses Dienstes werden von seinem Team angelegt."



# --- helpers (from test_muc.py) --------------------------------------------------------------

def error_text(el) -> tuple:
    """(text, xml:lang) of a stanza error's <text/>; (None, None) without one."""
    e = el.find(q("error", NS_CLIENT))
    t = None if e is None else e.find(q("text", NS_STANZAS))
    if t is None:
        return None, None
    return t.text or "", t.get(XML_LANG)


def error_signature(el) -> tuple:
    """The whole <error/> element as comparable data: its attributes, and every child's tag,
    attributes (xml:lang included) and text, in order. None when el carries no <error/>."""
    e = el.find(q("error", NS_CLIENT))
    if e is None:
        return None
    return (tuple(sorted(e.attrib.items())),
            tuple((c.tag, tuple(sorted(c.attrib.items())), (c.text or "").strip(),
                   len(list(c))) for c in e))


def payload_tags(el) -> list:
    """The stanza's children other than <error/> (what a refusal carries besides the error)."""
    return [c.tag for c in el if c.tag != q("error", NS_CLIENT)]

class Case(unittest.TestCase):
    """One havend per class; fresh connections and rooms per test."""

    config: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer(config=dict(cls.config))
        try:
            for u in USERS:
                cls.srv.add_user(u, PASSWORD)
            cls.srv.start()
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def connect(self, local: str, presence: bool = True) -> Client:
        c = Client(self.srv, local, "res%d" % next(_seq), presence)
        self.addCleanup(c.close)
        return c

    def new_room(self, tag: str = "room") -> str:
        return "%s-%d@%s" % (tag, next(_seq), SERVICE)

    @staticmethod
    def send_join(c: Client, room: str, nick: str, lang: Optional[str] = None) -> None:
        la = "" if lang is None else " xml:lang=%s" % quoteattr(lang)
        c.send("<presence to=%s%s><x xmlns='%s'/></presence>"
               % (quoteattr(room + "/" + nick), la, NS_MUC))

    def join(self, c: Client, room: str, nick: str) -> Joined:
        """Joins and collects everything from the room up to and including the subject (for a
        creation, 201: up to a round trip)."""
        before = list(c.queue)
        self.send_join(c, room, nick)
        got = []

        def fresh(e):
            return (not any(e is b for b in before) and bare(e.get("from")) == room
                    and kind(e) in ("presence", "message"))

        while True:
            el = c.expect(fresh, "stanza from %s while joining as %s (got so far: %s)"
                          % (room, nick, [show(g) for g in got]))
            got.append(el)
            if is_presence(el, type_="error"):
                self.fail("%s joining %s/%s was refused: %s" % (c.jid, room, nick, show(el)))
            if is_subject_message(el):
                return Joined(room, nick, got)
            if is_presence(el, room + "/" + nick, None) and 201 in codes(el):
                c.sync()
                for e in c.pending(fresh):
                    c.queue.remove(e)
                    got.append(e)
                    if is_subject_message(e):
                        break
                return Joined(room, nick, got)

    def join_error(self, c: Client, room: str, nick: str,
                   lang: Optional[str] = None) -> ET.Element:
        """Attempts a join that must fail; returns the error presence."""
        me = room + "/" + nick
        self.send_join(c, room, nick, lang)
        el = c.expect(lambda e: is_presence(e, me, "error")
                      or (is_presence(e, me, None) and 110 in codes(e)),
                      "answer to the join of %s" % me)
        if el.get("type") != "error":
            self.fail("%s could join %s although it should not: %s" % (c.jid, me, show(el)))
        return el

    def create(self, c: Client, room: str, nick: str, config: Optional[dict] = None) -> Joined:
        """Creates a room: join (must answer 201, owner/moderator), then instant room or the
        given form."""
        j = self.join(c, room, nick)
        self.assertEqual(codes(j.self_presence), {110, 201}, show(j.self_presence))
        it = item(j.self_presence)
        self.assertEqual((it.get("affiliation"), it.get("role")), ("owner", "moderator"),
                         show(j.self_presence))
        r = c.iq(room, "<query xmlns='%s'>%s</query>" % (NS_OWNER, config_form(config or {})),
                 "set")
        self.assertEqual(r.get("type"), "result", "configuring %s: %s" % (room, show(r)))
        return j

    @staticmethod
    def say(c: Client, room: str, text: str) -> str:
        msg_id = "gc%d" % next(_seq)
        c.send("<message to=%s type='groupchat' id='%s'><body>%s</body></message>"
               % (quoteattr(room), msg_id, escape(text)))
        return msg_id

    @staticmethod
    def expect_groupchat(c: Client, frm: str, text: str) -> ET.Element:
        return c.expect(lambda e: is_message(e, frm, "groupchat") and has_body(e, text),
                        "groupchat %r from %s" % (text, frm))

    @staticmethod
    def expect_presence(c: Client, frm: str, type_: Optional[str] = None,
                        pred: Callable[[ET.Element], bool] = lambda e: True,
                        what: str = "") -> ET.Element:
        return c.expect(lambda e: is_presence(e, frm, type_) and pred(e),
                        "%s presence from %s %s" % (type_ or "available", frm, what))

    @staticmethod
    def expect_error_reply(c: Client, stanza_kind: str, msg_id: str) -> ET.Element:
        return c.expect(lambda e: kind(e) == stanza_kind and e.get("id") == msg_id
                        and e.get("type") == "error", "error answer to %s %s"
                        % (stanza_kind, msg_id))

    def send_message(self, c: Client, to: str, text: str, type_: Optional[str] = "chat",
                     lang: Optional[str] = None, extra: str = "") -> str:
        msg_id = "m%d" % next(_seq)
        t = "" if type_ is None else " type=%s" % quoteattr(type_)
        la = "" if lang is None else " xml:lang=%s" % quoteattr(lang)
        c.send("<message to=%s id='%s'%s%s><body>%s</body>%s</message>"
               % (quoteattr(to), msg_id, t, la, escape(text), extra))
        return msg_id

    def refused_message(self, c: Client, to: str, text: str, type_: Optional[str] = "chat",
                        lang: Optional[str] = None) -> ET.Element:
        mid = self.send_message(c, to, text, type_, lang)
        err = self.expect_error_reply(c, "message", mid)
        self.assertEqual(err.get("from"), to, show(err))
        return err

    def assertError(self, el: ET.Element, condition: str, type_: Optional[str] = None):
        etype, cond = error_of(el)
        self.assertEqual(el.get("type"), "error", show(el))
        self.assertEqual(cond, condition, show(el))
        if type_ is not None:
            self.assertEqual(etype, type_, show(el))

    def assertPolicyRefusal(self, el: ET.Element, lang: str = "en"):
        """The peer-support refusal (README §6.1): service-unavailable, cancel, the text in
        the stanza's language."""
        self.assertError(el, "service-unavailable", "cancel")
        self.assertEqual(error_text(el), (REFUSAL_EN if lang == "en" else REFUSAL_DE, lang),
                         show(el))

    def assertSameError(self, via_room: ET.Element, direct: ET.Element, what: str):
        self.assertEqual(via_room.get("type"), "error", "%s through the room: %s"
                         % (what, show(via_room)))
        self.assertEqual(direct.get("type"), "error", "%s directly: %s" % (what, show(direct)))
        self.assertEqual(error_signature(via_room), error_signature(direct),
                         "%s: the room's error differs from the direct one\nroom:   %s\n"
                         "direct: %s" % (what, show(via_room), show(direct)))
        self.assertEqual(payload_tags(via_room), payload_tags(direct),
                         "%s: what travels with the error differs\nroom:   %s\ndirect: %s"
                         % (what, show(via_room), show(direct)))

    def assertNotDelivered(self, c: Client, pred: Callable[[ET.Element], bool], what: str):
        c.sync()
        got = c.pending(pred)
        self.assertEqual(got, [], "%s received %s: %s"
                         % (c.jid, what, [show(e) for e in got]))

    def admin(self, c: Client, room: str, items: str, type_: str = "set") -> ET.Element:
        return c.iq(room, "<query xmlns='%s'>%s</query>" % (NS_ADMIN, items), type_)

    def admin_ok(self, c: Client, room: str, items: str, type_: str = "set") -> ET.Element:
        r = self.admin(c, room, items, type_)
        self.assertEqual(r.get("type"), "result", "muc#admin %s: %s" % (items, show(r)))
        return r

    def room_gone(self, c: Client, room: str) -> None:
        r = c.iq(room, "<query xmlns='%s'/>" % NS_INFO)
        self.assertError(r, "item-not-found")

    def set_vcard(self, c: Client, fn: str) -> None:
        r = c.iq(c.bare, "<vCard xmlns='%s'><FN>%s</FN></vCard>" % (NS_VCARD, escape(fn)),
                 "set")
        self.assertEqual(r.get("type"), "result", "publishing %s's vCard: %s" % (c.local, show(r)))

    def vcard_get(self, c: Client, to: str) -> ET.Element:
        return c.iq(to, "<vCard xmlns='%s'/>" % NS_VCARD)


PEERSUPPORT = {
    "peersupport.enabled": True,
    "peersupport.supporters": [jid("sam")],
    "peersupport.admins": [jid("ada")],
}


class PeerSupportRooms(Case):
    config = PEERSUPPORT

    def group(self, config: Optional[dict] = None, members: bool = False) -> tuple:
        """sam creates a room (nick Sam); with members=True sam first makes alice and bob
        members via muc#admin. alice (Alice) and bob (Bob) join."""
        s, a, b = self.connect("sam"), self.connect("alice"), self.connect("bob")
        room = self.new_room("group")
        self.create(s, room, "Sam", config)
        if members:
            for c in (a, b):
                self.admin_ok(s, room, "<item jid='%s' affiliation='member'/>" % c.bare)
        ja = self.join(a, room, "Alice")
        jb = self.join(b, room, "Bob")
        if members:
            for j in (ja, jb):
                self.assertEqual(item(j.self_presence).get("affiliation"), "member",
                                 show(j.self_presence))
        self.expect_presence(s, room + "/Bob")
        self.expect_presence(a, room + "/Bob")
        return room, s, a, b

    # 1. ---------------------------------------------------------------------------------------

    def test_member_cannot_create_room(self):
        a = self.connect("alice")
        room = self.new_room("bymember")
        err = self.join_error(a, room, "Alice")
        self.assertEqual(err.get("from"), room + "/Alice", show(err))
        self.assertError(err, "not-allowed", "cancel")
        self.assertEqual(error_text(err), (CREATE_REFUSED_EN, "en"), show(err))
        # In the presence's language.
        err = self.join_error(a, room, "Alice", lang="de")
        self.assertError(err, "not-allowed", "cancel")
        self.assertEqual(error_text(err), (CREATE_REFUSED_DE, "de"), show(err))
        # Nothing was created, not even a locked room.
        self.room_gone(a, room)
        b = self.connect("bob")
        self.assertError(self.join_error(b, room, "Bob"), "not-allowed", "cancel")
        self.room_gone(b, room)

    def test_staff_create_rooms(self):
        for local, nick in (("sam", "Sam"), ("ada", "Ada")):
            c = self.connect(local)
            room = self.new_room("by" + local)
            j = self.join(c, room, nick)
            self.assertEqual(codes(j.self_presence), {110, 201}, show(j.self_presence))
            it = item(j.self_presence)
            self.assertEqual((it.get("affiliation"), it.get("role")), ("owner", "moderator"))
            r = c.iq(room, "<query xmlns='%s'>%s</query>" % (NS_OWNER, config_form({})), "set")
            self.assertEqual(r.get("type"), "result", show(r))
            r = c.iq(room, "<query xmlns='%s'/>" % NS_INFO)
            self.assertEqual(r.get("type"), "result", show(r))

    # 3. ---------------------------------------------------------------------------------------

    def check_groupchat(self, room, s, a, b):
        self.say(a, room, "hello from alice")
        for c in (s, a, b):
            m = self.expect_groupchat(c, room + "/Alice", "hello from alice")
            self.assertEqual(m.get("to"), c.jid, show(m))
        self.say(b, room, "hello from bob")
        for c in (s, a, b):
            self.expect_groupchat(c, room + "/Bob", "hello from bob")

    def test_members_meet_in_instant_room(self):
        self.check_groupchat(*self.group())

    def test_members_meet_in_members_only_room(self):
        room, s, a, b = self.group({"membersonly": True}, members=True)
        self.check_groupchat(room, s, a, b)
        r = self.admin_ok(s, room, "<item affiliation='member'/>", "get")
        self.assertEqual(sorted(i.get("jid") for i in r.iter(q("item", NS_ADMIN))),
                         [jid("alice"), jid("bob")], show(r))

    # 4. ---------------------------------------------------------------------------------------

    def test_private_message_between_members_is_refused_like_direct(self):
        room, s, a, b = self.group()
        for lang in (None, "de"):
            direct = self.refused_message(a, b.bare, "direct psst", "chat", lang)
            self.assertPolicyRefusal(direct, lang or "en")
            pm = self.refused_message(a, room + "/Bob", "room psst", "chat", lang)
            self.assertPolicyRefusal(pm, lang or "en")
            self.assertSameError(pm, direct, "alice's chat message to Bob (lang %s)" % lang)
        # Nothing reached bob, neither through the room nor directly.
        self.assertNotDelivered(b, lambda e: is_message(e) and body(e) in ("direct psst",
                                                                          "room psst"),
                                "a refused private message")
        self.assertNotDelivered(b, lambda e: is_message(e, room + "/Alice"),
                                "anything from Alice's occupant JID")
        # bob → alice the same way.
        pm = self.refused_message(b, room + "/Alice", "back at you")
        self.assertPolicyRefusal(pm)
        self.assertNotDelivered(a, lambda e: is_message(e, room + "/Bob"),
                                "a refused private message from Bob")

    # 5. ---------------------------------------------------------------------------------------

    def test_private_messages_with_moderator_both_ways(self):
        room, s, a, b = self.group()
        mid = self.send_message(a, room + "/Sam", "hi sam, can we talk?")
        m = s.expect(lambda e: is_message(e, room + "/Alice") and
                     has_body(e, "hi sam, can we talk?"), "alice's private message")
        self.assertEqual(m.get("type"), "chat", show(m))
        self.assertEqual(m.get("to"), s.jid, show(m))
        self.assertIsNotNone(muc_x(m), show(m))
        mid2 = self.send_message(s, room + "/Alice", "of course")
        m = a.expect(lambda e: is_message(e, room + "/Sam") and has_body(e, "of course"),
                     "sam's private message")
        self.assertEqual(m.get("type"), "chat", show(m))
        self.assertEqual(m.get("to"), a.jid, show(m))
        self.assertNotDelivered(a, lambda e: e.get("id") == mid and e.get("type") == "error",
                                "an error for the private message to Sam")
        self.assertNotDelivered(s, lambda e: e.get("id") == mid2 and e.get("type") == "error",
                                "an error for the private message to Alice")
        # And alice answers again (a reply, not only a first message).
        self.send_message(a, room + "/Sam", "thanks")
        s.expect(lambda e: is_message(e, room + "/Alice") and has_body(e, "thanks"),
                 "alice's second private message")
        self.assertNotDelivered(b, lambda e: is_message(e) and body(e) in (
            "hi sam, can we talk?", "of course", "thanks"), "someone else's private message")

    # 6. ---------------------------------------------------------------------------------------

    def test_iqs_between_members_are_refused_like_direct(self):
        room, s, a, b = self.group()
        self.set_vcard(b, "Bob Secret")
        vcard = "<vCard xmlns='%s'/>" % NS_VCARD
        version = "<query xmlns='%s'/>" % NS_VERSION
        for what, payload in (("vCard get", vcard), ("version get", version)):
            direct = a.iq(b.bare, payload)
            self.assertPolicyRefusal(direct)
            self.assertEqual(direct.get("from"), b.bare, show(direct))
            via = a.iq(room + "/Bob", payload)
            self.assertEqual(via.get("from"), room + "/Bob", show(via))
            self.assertPolicyRefusal(via)
            self.assertSameError(via, direct, "alice's %s to Bob" % what)
            self.assertNotIn("Bob Secret", show(via))
        # The version query through the room goes to bob's resource; directly to it too.
        direct_full = a.iq(b.jid, version)
        via = a.iq(room + "/Bob", version)
        self.assertSameError(via, direct_full, "alice's version get to Bob's resource")
        self.assertNotDelivered(b, lambda e: kind(e) == "iq" and bare(e.get("from")) != SERVICE
                                and e.get("from") != DOMAIN, "an IQ from alice")

    def test_member_vcard_of_moderator_same_as_direct(self):
        room, s, a, b = self.group()
        self.set_vcard(s, "Sam Staff")
        direct = self.vcard_get(a, s.bare)
        via = self.vcard_get(a, room + "/Sam")
        self.assertEqual(via.get("type"), direct.get("type"),
                         "room: %s\ndirect: %s" % (show(via), show(direct)))
        self.assertEqual(error_of(via), error_of(direct),
                         "room: %s\ndirect: %s" % (show(via), show(direct)))
        if direct.get("type") == "error":
            self.assertSameError(via, direct, "alice's vCard get of Sam")
        else:
            self.assertEqual(show(via.find(q("vCard", NS_VCARD))),
                             show(direct.find(q("vCard", NS_VCARD))))

    # 7. ---------------------------------------------------------------------------------------

    def test_staff_without_grant_gets_no_member_vcard(self):
        room, s, a, b = self.group()
        self.set_vcard(a, "Alice Private")
        # Precondition: no grant (sam, alice): alice's direct message to sam is refused.
        self.assertPolicyRefusal(self.refused_message(a, s.bare, "are you there?"))
        direct = self.vcard_get(s, a.bare)
        self.assertError(direct, "service-unavailable", "cancel")
        via = self.vcard_get(s, room + "/Alice")
        self.assertError(via, "service-unavailable", "cancel")
        self.assertEqual(via.get("from"), room + "/Alice", show(via))
        self.assertSameError(via, direct, "sam's vCard get of Alice")
        self.assertNotIn("Alice Private", show(via))
        # ada (admin) as well: she is staff without a grant too.
        d = self.connect("ada")
        self.join(d, room, "Ada")
        direct = self.vcard_get(d, a.bare)
        via = self.vcard_get(d, room + "/Alice")
        self.assertError(via, "service-unavailable", "cancel")
        self.assertSameError(via, direct, "ada's vCard get of Alice")

    # 8. ---------------------------------------------------------------------------------------

    def invite(self, c: Client, room: str, to: str, reason: str) -> str:
        msg_id = "inv%d" % next(_seq)
        c.send("<message to='%s' id='%s'><x xmlns='%s'><invite to='%s'><reason>%s</reason>"
               "</invite></x></message>" % (room, msg_id, NS_USER, to, escape(reason)))
        return msg_id

    @staticmethod
    def invitation_from(room: str, reason: Optional[str] = None):
        def pred(e):
            x = muc_x(e) if is_message(e, room) else None
            inv = None if x is None else x.find(q("invite", NS_USER))
            return inv is not None and (reason is None
                                        or inv.findtext(q("reason", NS_USER)) == reason)
        return pred

    def test_mediated_invitations(self):
        s, a, b = self.connect("sam"), self.connect("alice"), self.connect("bob")
        room = self.new_room("invites")
        self.create(s, room, "Sam", {"allowinvites": True})
        # Staff invites a member: delivered.
        self.invite(s, room, a.bare, "come in")
        m = a.expect(self.invitation_from(room, "come in"), "sam's invitation")
        inv = muc_x(m).find(q("invite", NS_USER))
        self.assertIn(inv.get("from"), (s.jid, s.bare), show(m))
        self.join(a, room, "Alice")
        # A member invites a member: the policy refusal, the same as a message straight to bob.
        direct = self.refused_message(a, b.bare, "join my room", type_=None)
        self.assertPolicyRefusal(direct)
        mid = self.invite(a, room, b.bare, "from alice")
        err = self.expect_error_reply(a, "message", mid)
        self.assertEqual(err.get("from"), room, show(err))
        self.assertPolicyRefusal(err)
        self.assertSameError(err, direct, "alice's invitation of bob")
        # A full JID is the same person.
        mid = self.invite(a, room, b.jid, "from alice, full")
        err = self.expect_error_reply(a, "message", mid)
        self.assertSameError(err, direct, "alice's invitation of bob's resource")
        self.assertNotDelivered(b, lambda e: is_message(e, room), "an invitation from alice")
        self.assertEqual([e for e in b.log if is_message(e) and muc_x(e) is not None], [],
                         "bob received an invitation")

    # 9. ---------------------------------------------------------------------------------------

    def test_semi_anonymous_for_members(self):
        room, s, a, b = self.group()
        b.send("<presence to='%s/Bob'><show>away</show><status>brb</status></presence>" % room)
        self.expect_presence(a, room + "/Bob", None,
                             lambda e: e.findtext(q("status", NS_CLIENT)) == "brb", "away")
        p = self.expect_presence(s, room + "/Bob", None,
                                 lambda e: e.findtext(q("status", NS_CLIENT)) == "brb", "away")
        self.assertEqual(item(p).get("jid"), b.jid, "the moderator sees the real JID: " + show(p))
        self.say(b, room, "bob speaking")
        self.expect_groupchat(a, room + "/Bob", "bob speaking")
        # Member lists name real JIDs: not for members.
        for what in ("member", "owner", "admin"):
            r = self.admin(a, room, "<item affiliation='%s'/>" % what, "get")
            self.assertError(r, "forbidden", "auth")
            self.assertNotIn(b.bare, show(r))
        r = self.admin(a, room, "<item role='participant'/>", "get")
        self.assertError(r, "forbidden", "auth")
        self.assertNotIn(b.bare, show(r))
        b.send("<presence to='%s/Bob' type='unavailable'/>" % room)
        self.expect_presence(a, room + "/Bob", "unavailable")
        p = self.expect_presence(s, room + "/Bob", "unavailable")
        a.sync()
        # Everything alice ever received: no item about Bob carries a jid, and bob's address
        # appears nowhere.
        from_bob = [e for e in a.log if is_presence(e, room + "/Bob")]
        self.assertGreaterEqual(len(from_bob), 3, [show(e) for e in from_bob])
        for e in a.log:
            if is_presence(e) and bare(e.get("from")) == room and e.get("from") != room + "/Alice":
                for it in e.iter(q("item", NS_USER)):
                    self.assertIsNone(it.get("jid"), "alice sees a real JID: " + show(e))
            self.assertNotIn(b.bare, show(e), "alice learnt bob's address: " + show(e))
        # The moderator saw bob's real JID on his join.
        joins = [e for e in s.log if is_presence(e, room + "/Bob", None)]
        self.assertTrue(joins)
        self.assertEqual(item(joins[0]).get("jid"), b.jid, show(joins[0]))

    # 10. --------------------------------------------------------------------------------------

    def test_member_cannot_admit_anyone(self):
        s, a, b = self.connect("sam"), self.connect("alice"), self.connect("bob")
        room = self.new_room("closed")
        self.create(s, room, "Sam", {"membersonly": True})
        self.admin_ok(s, room, "<item jid='%s' affiliation='member'/>" % a.bare)
        self.join(a, room, "Alice")
        r = self.admin(a, room, "<item jid='%s' affiliation='member'/>" % b.bare)
        self.assertError(r, "forbidden", "auth")
        err = self.join_error(b, room, "Bob")
        self.assertError(err, "registration-required", "auth")
        r = self.admin_ok(s, room, "<item affiliation='member'/>", "get")
        self.assertEqual([i.get("jid") for i in r.iter(q("item", NS_ADMIN))], [a.bare], show(r))
        # In an open room a member (affiliation none) cannot hand out affiliations either.
        room2 = self.new_room("open")
        self.create(s, room2, "Sam")
        self.join(a, room2, "Alice")
        r = self.admin(a, room2, "<item jid='%s' affiliation='member'/>" % b.bare)
        self.assertError(r, "forbidden", "auth")
        r = self.admin_ok(s, room2, "<item affiliation='member'/>", "get")
        self.assertEqual([i.get("jid") for i in r.iter(q("item", NS_ADMIN))], [], show(r))


# 2. -------------------------------------------------------------------------------------------

class PlainServerRooms(Case):
    """The peer-support model off (the harness default): a plain XMPP server."""

    config = {"peersupport.enabled": False}

    def test_plain_account_creates_room(self):
        a = self.connect("alice")
        room = self.new_room("plain")
        j = self.join(a, room, "Alice")
        self.assertEqual(codes(j.self_presence), {110, 201}, show(j.self_presence))
        it = item(j.self_presence)
        self.assertEqual((it.get("affiliation"), it.get("role")), ("owner", "moderator"))

    def test_private_messages_between_accounts(self):
        # The control for the refusals above: without the model the same PM is delivered.
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room("plainpm")
        self.join(a, room, "Alice")
        r = a.iq(room, "<query xmlns='%s'>%s</query>" % (NS_OWNER, config_form({})), "set")
        self.assertEqual(r.get("type"), "result", show(r))
        self.join(b, room, "Bob")
        self.send_message(a, room + "/Bob", "psst")
        m = b.expect(lambda e: is_message(e, room + "/Alice") and has_body(e, "psst"),
                     "alice's private message")
        self.assertEqual(m.get("type"), "chat", show(m))


if __name__ == "__main__":
    unittest.main(verbosity=2)
