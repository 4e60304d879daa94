#!/usr/bin/env python3
"""E2E: the XEP-0045 Multi-User Chat service (module `muc`, at groups.<domain>) over real sockets.

Every test talks raw XML to a real havend (RawStream logins) and parses what comes back with
xml.etree.ElementTree, so the assertions are about exact addresses, status codes and error
conditions. One server per class; every test makes its own connections and a fresh room, so the
tests stay independent of each other and of their order.

Waiting is always for a stanza (bounded by TIMEOUT), never a sleep. To check that something was
NOT delivered, the observer makes a round trip to the MUC service after the actor's request was
answered: havend handles stanzas one after the other, so whatever the room sent for the actor's
request is queued on the observer's stream before the round trip's answer. (The one sleep is in
History.test_seconds_and_since, which needs messages of different ages.)

Run by ctest (e2e.py.test_muc); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_muc.py -v
"""

import calendar
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

USERS = ("alice", "bob", "carol", "dave", "erin")


class MucCase(unittest.TestCase):
    """One havend per class; fresh connections and rooms per test."""

    config: dict = {}

    @classmethod
    def setUpClass(cls):
        config = {"muc.history_default": 5}
        config.update(cls.config)
        cls.srv = TestServer(config=config)
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

    # set-up helpers ---------------------------------------------------------------------------

    def connect(self, local: str, presence: bool = True) -> Client:
        c = Client(self.srv, local, "res%d" % next(_seq), presence)
        self.addCleanup(c.close)
        return c

    def new_room(self, tag: str = "room") -> str:
        return "%s-%d@%s" % (tag, next(_seq), SERVICE)

    # joining ----------------------------------------------------------------------------------

    @staticmethod
    def send_join(c: Client, room: str, nick: str, history: Optional[dict] = None,
                  password: Optional[str] = None, extra: str = "") -> None:
        h = ""
        if history:
            h = "<history %s/>" % " ".join("%s=%s" % (k, quoteattr(str(v)))
                                            for k, v in history.items())
        p = "" if password is None else "<password>%s</password>" % escape(password)
        c.send("<presence to=%s><x xmlns='%s'>%s%s</x>%s</presence>"
               % (quoteattr(room + "/" + nick), NS_MUC, h, p, extra))

    def join(self, c: Client, room: str, nick: str, **kw) -> Joined:
        """Joins and collects everything from the room up to and including the subject.
        When the room was created by this join (201), the subject is not waited for: what
        the room sent by the next round trip is all (test_creator_is_owner_with_201 checks
        that a subject came)."""
        before = list(c.queue)
        self.send_join(c, room, nick, **kw)
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

    def join_error(self, c: Client, room: str, nick: str, **kw) -> ET.Element:
        """Attempts a join that must fail; returns the error presence."""
        me = room + "/" + nick
        self.send_join(c, room, nick, **kw)
        el = c.expect(lambda e: is_presence(e, me, "error")
                      or (is_presence(e, me, None) and 110 in codes(e)),
                      "answer to the join of %s" % me)
        if el.get("type") != "error":
            self.fail("%s could join %s although it should not: %s" % (c.jid, me, show(el)))
        return el

    def create(self, c: Client, room: str, nick: str, config: Optional[dict] = None,
               **kw) -> Joined:
        """Creates a room: join (must answer 201), then instant room or the given form."""
        j = self.join(c, room, nick, **kw)
        self.assertEqual(codes(j.self_presence), {110, 201}, show(j.self_presence))
        self.configure(c, room, config or {})
        return j

    def configure(self, c: Client, room: str, config: dict) -> None:
        r = c.iq(room, "<query xmlns='%s'>%s</query>" % (NS_OWNER, config_form(config)), "set")
        self.assertEqual(r.get("type"), "result", "configuring %s: %s" % (room, show(r)))

    # stanzas ----------------------------------------------------------------------------------

    @staticmethod
    def say(c: Client, room: str, text: str, msg_id: Optional[str] = None,
            extra: str = "") -> str:
        msg_id = msg_id or "gc%d" % next(_seq)
        c.send("<message to=%s type='groupchat' id='%s'><body>%s</body>%s</message>"
               % (quoteattr(room), msg_id, escape(text), extra))
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

    def assertError(self, el: ET.Element, condition: str, type_: Optional[str] = None):
        etype, cond = error_of(el)
        self.assertEqual(el.get("type"), "error", show(el))
        self.assertEqual(cond, condition, show(el))
        if type_ is not None:
            self.assertEqual(etype, type_, show(el))

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

    def disco_info(self, c: Client, to: str) -> ET.Element:
        return c.iq(to, "<query xmlns='%s'/>" % NS_INFO)

    def room_features(self, c: Client, room: str) -> set:
        r = self.disco_info(c, room)
        self.assertEqual(r.get("type"), "result", show(r))
        return {f.get("var") for f in r.iter(q("feature", NS_INFO))}

    def room_gone(self, c: Client, room: str) -> None:
        r = self.disco_info(c, room)
        self.assertError(r, "item-not-found")


# --- service and room discovery ------------------------------------------------------------------

class Discovery(MucCase):
    def test_service_info_identity_and_feature(self):
        a = self.connect("alice")
        r = self.disco_info(a, SERVICE)
        self.assertEqual(r.get("type"), "result", show(r))
        self.assertEqual(r.get("from"), SERVICE)
        ids = [(i.get("category"), i.get("type")) for i in r.iter(q("identity", NS_INFO))]
        self.assertIn(("conference", "text"), ids, show(r))
        self.assertIn(NS_MUC, {f.get("var") for f in r.iter(q("feature", NS_INFO))}, show(r))

    def test_server_items_list_the_service(self):
        # XEP-0045 §6.1: clients find the MUC service in their own server's disco#items.
        a = self.connect("alice")
        r = a.iq(DOMAIN, "<query xmlns='%s'/>" % NS_ITEMS)
        self.assertEqual(r.get("type"), "result", show(r))
        self.assertIn(SERVICE, [i.get("jid") for i in r.iter(q("item", NS_ITEMS))], show(r))

    def test_items_list_public_rooms_only(self):
        a = self.connect("alice")
        public, hidden = self.new_room("pub"), self.new_room("hid")
        self.create(a, public, "A", {"roomname": "Public Tea"})
        self.create(a, hidden, "A", {"roomname": "Hidden Tea", "publicroom": False})
        b = self.connect("bob")
        r = b.iq(SERVICE, "<query xmlns='%s'/>" % NS_ITEMS)
        self.assertEqual(r.get("type"), "result", show(r))
        items = {i.get("jid"): i.get("name") for i in r.iter(q("item", NS_ITEMS))}
        self.assertEqual(items.get(public), "Public Tea", show(r))
        self.assertNotIn(hidden, items, show(r))

    def test_room_info_defaults(self):
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "A", {"roomname": "Default Room"})
        b = self.connect("bob")
        self.join(b, room, "B")
        c = self.connect("carol")  # not an occupant: disco#info is for deciding whether to join
        r = self.disco_info(c, room)
        self.assertEqual(r.get("type"), "result", show(r))
        self.assertEqual(r.get("from"), room)
        idents = [(i.get("category"), i.get("type"), i.get("name"))
                  for i in r.iter(q("identity", NS_INFO))]
        self.assertIn(("conference", "text", "Default Room"), idents, show(r))
        features = {f.get("var") for f in r.iter(q("feature", NS_INFO))}
        for f in (NS_MUC, "muc_temporary", "muc_public", "muc_open", "muc_unmoderated",
                  "muc_semianonymous", "muc_unsecured", NS_OCCUPANT_ID):
            self.assertIn(f, features, show(r))
        for f in ("muc_persistent", "muc_hidden", "muc_membersonly", "muc_moderated",
                  "muc_nonanonymous", "muc_passwordprotected"):
            self.assertNotIn(f, features, show(r))
        forms = [x for x in r.iter(q("x", NS_DATA)) if x.get("type") == "result"]
        self.assertEqual(len(forms), 1, show(r))
        fields = form_fields(forms[0])
        self.assertEqual(fields["FORM_TYPE"]["values"], [NS_ROOMINFO], show(r))
        self.assertEqual(fields["muc#roominfo_occupants"]["values"], ["2"], show(r))

    def test_room_info_reflects_configuration(self):
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "A", {"persistentroom": True, "publicroom": False,
                                   "membersonly": True, "moderatedroom": True,
                                   "whois": "anyone", "passwordprotectedroom": True,
                                   "roomsecret": "s3cret"})
        features = self.room_features(a, room)
        for f in ("muc_persistent", "muc_hidden", "muc_membersonly", "muc_moderated",
                  "muc_nonanonymous", "muc_passwordprotected", NS_MUC):
            self.assertIn(f, features)
        for f in ("muc_temporary", "muc_public", "muc_open", "muc_unmoderated",
                  "muc_semianonymous", "muc_unsecured"):
            self.assertNotIn(f, features)
        # Persistent: destroy it so that it does not outlive the test.
        r = a.iq(room, "<query xmlns='%s'><destroy/></query>" % NS_OWNER, "set")
        self.assertEqual(r.get("type"), "result", show(r))

    def test_missing_room_is_item_not_found(self):
        a = self.connect("alice")
        self.room_gone(a, self.new_room("nothing"))


# --- creating and configuring ----------------------------------------------------------------------

class Creation(MucCase):
    ROOMCONFIG_FIELDS = ("muc#roomconfig_roomname", "muc#roomconfig_roomdesc",
                         "muc#roomconfig_persistentroom", "muc#roomconfig_publicroom",
                         "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom",
                         "muc#roomconfig_whois", "muc#roomconfig_allowinvites",
                         "muc#roomconfig_changesubject", "muc#roomconfig_allowpm",
                         "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_roomsecret",
                         "muc#roomconfig_maxusers", "muc#maxhistoryfetch",
                         "muc#roomconfig_roomadmins", "muc#roomconfig_roomowners")

    def test_creator_is_owner_with_201(self):
        a = self.connect("alice")
        room = self.new_room()
        j = self.join(a, room, "Alice")
        p = j.self_presence
        self.assertEqual(p.get("from"), room + "/Alice")
        self.assertEqual(p.get("to"), a.jid)
        self.assertEqual(codes(p), {110, 201}, show(p))
        it = item(p)
        self.assertEqual((it.get("affiliation"), it.get("role")), ("owner", "moderator"))
        self.assertEqual(it.get("jid"), a.jid, show(p))
        self.assertEqual(j.occupants, [])
        self.assertEqual(j.history, [])
        # §7.2.16: the room SHALL send the subject, empty if none (the contract: to every
        # joiner, the creator too).
        self.assertIsNotNone(j.subject, "no subject message after the creation: %s"
                             % [show(e) for e in j.stanzas])
        self.assertEqual(subject_text(j.subject), "")

    def test_locked_room_refuses_others_until_configured(self):
        a = self.connect("alice")
        b = self.connect("bob")
        room = self.new_room()
        self.join(a, room, "Alice")
        err = self.join_error(b, room, "Bob")
        self.assertError(err, "item-not-found", "cancel")
        self.assertEqual(err.get("from"), room + "/Bob")
        self.assertNotDelivered(a, lambda e: is_presence(e, room + "/Bob"), "Bob's presence")
        self.configure(a, room, {})  # instant room
        j = self.join(b, room, "Bob")
        self.assertEqual(codes(j.self_presence), {110})
        self.expect_presence(a, room + "/Bob")

    def test_config_form_fields_and_defaults(self):
        a = self.connect("alice")
        room = self.new_room()
        self.join(a, room, "Alice")
        r = a.iq(room, "<query xmlns='%s'/>" % NS_OWNER)
        self.assertEqual(r.get("type"), "result", show(r))
        x = r.find(q("query", NS_OWNER) + "/" + q("x", NS_DATA))
        self.assertIsNotNone(x, show(r))
        self.assertEqual(x.get("type"), "form", show(r))
        fields = form_fields(x)
        self.assertEqual(fields.get("FORM_TYPE", {}).get("values"), [NS_ROOMCONFIG], show(r))
        for var in self.ROOMCONFIG_FIELDS:
            self.assertIn(var, fields, "field %s missing: %s" % (var, show(r)))
        v = lambda name: fields["muc#roomconfig_" + name]["values"]  # noqa: E731
        self.assertFalse(truthy(v("persistentroom")))
        self.assertTrue(truthy(v("publicroom")))
        self.assertFalse(truthy(v("membersonly")))
        self.assertFalse(truthy(v("moderatedroom")))
        self.assertFalse(truthy(v("changesubject")))
        self.assertEqual(v("whois"), ["moderators"])
        self.assertEqual(set(fields["muc#roomconfig_whois"]["options"]),
                         {"moderators", "anyone"})
        self.assertEqual(v("allowpm"), ["anyone"])
        self.assertEqual(set(fields["muc#roomconfig_allowpm"]["options"]),
                         {"anyone", "participants", "moderators", "none"})

    def test_submitted_form_unlocks_and_applies(self):
        a = self.connect("alice")
        room = self.new_room()
        self.join(a, room, "Alice")
        self.configure(a, room, {"roomname": "Configured", "roomdesc": "about things",
                                 "changesubject": True})
        b = self.connect("bob")
        self.join(b, room, "Bob")
        r = self.disco_info(b, room)
        names = [i.get("name") for i in r.iter(q("identity", NS_INFO))]
        self.assertEqual(names, ["Configured"], show(r))
        # changesubject applied: a participant may now set the subject.
        b.send("<message to='%s' type='groupchat'><subject>by bob</subject></message>" % room)
        m = a.expect(lambda e: is_subject_message(e) and subject_text(e) == "by bob",
                     "subject by Bob")
        self.assertEqual(m.get("from"), room + "/Bob")
        # The owner reads back what was submitted.
        r = a.iq(room, "<query xmlns='%s'/>" % NS_OWNER)
        fields = form_fields(r.find(q("query", NS_OWNER) + "/" + q("x", NS_DATA)))
        self.assertEqual(fields["muc#roomconfig_roomname"]["values"], ["Configured"])
        self.assertEqual(fields["muc#roomconfig_roomdesc"]["values"], ["about things"])
        self.assertTrue(truthy(fields["muc#roomconfig_changesubject"]["values"]))

    def test_form_sets_admins_and_owners(self):
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice", {"roomadmins": [jid("carol")],
                                       "roomowners": [a.bare, jid("bob")]})
        r = self.admin_ok(a, room, "<item affiliation='admin'/>", "get")
        self.assertEqual([i.get("jid") for i in r.iter(q("item", NS_ADMIN))], [jid("carol")])
        r = self.admin_ok(a, room, "<item affiliation='owner'/>", "get")
        self.assertEqual(sorted(i.get("jid") for i in r.iter(q("item", NS_ADMIN))),
                         [a.bare, jid("bob")], show(r))
        j = self.join(self.connect("bob"), room, "Bob")
        self.assertEqual((item(j.self_presence).get("affiliation"),
                          item(j.self_presence).get("role")), ("owner", "moderator"))

    def test_config_denied_to_non_owner(self):
        a = self.connect("alice")
        b = self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.join(b, room, "Bob")
        r = b.iq(room, "<query xmlns='%s'/>" % NS_OWNER)
        self.assertError(r, "forbidden", "auth")
        r = b.iq(room, "<query xmlns='%s'>%s</query>"
                 % (NS_OWNER, config_form({"roomname": "mine"})), "set")
        self.assertError(r, "forbidden", "auth")

    def test_join_without_nick_is_jid_malformed(self):
        # XEP-0045 §7.2.1: presence to the bare room JID.
        a = self.connect("alice")
        room = self.new_room()
        a.send("<presence to='%s' id='nonick'><x xmlns='%s'/></presence>" % (room, NS_MUC))
        err = self.expect_error_reply(a, "presence", "nonick")
        self.assertError(err, "jid-malformed", "modify")

    def test_password_protected_room(self):
        a = self.connect("alice")
        b = self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice", {"passwordprotectedroom": True, "roomsecret": "s3cret"})
        self.assertIn("muc_passwordprotected", self.room_features(b, room))
        self.assertError(self.join_error(b, room, "Bob"), "not-authorized", "auth")
        self.assertError(self.join_error(b, room, "Bob", password="wrong"), "not-authorized",
                         "auth")
        j = self.join(b, room, "Bob", password="s3cret")
        self.assertEqual(codes(j.self_presence), {110})

    def test_max_users(self):
        a = self.connect("alice")
        room = self.new_room()
        self.join(a, room, "Alice")
        r = a.iq(room, "<query xmlns='%s'/>" % NS_OWNER)
        options = form_fields(r.find(q("query", NS_OWNER) + "/" + q("x", NS_DATA)))[
            "muc#roomconfig_maxusers"]["options"]
        if options and "2" not in options:
            self.skipTest("maxusers offers %s only" % options)
        self.configure(a, room, {"maxusers": "2"})
        self.join(self.connect("bob"), room, "Bob")
        err = self.join_error(self.connect("carol"), room, "Carol")
        self.assertError(err, "service-unavailable", "wait")


# --- entering a room ----------------------------------------------------------------------------

class RoomBudget(MucCase):
    config = {"muc.max_rooms_per_account": 2}

    def test_one_account_cannot_take_the_whole_room_budget(self):
        """[muc] max_rooms_per_account: creating one more room than an account may own is
        resource-constraint; another account still can."""
        a = self.connect("alice")
        for _ in range(2):
            self.create(a, self.new_room("mine"), "Alice", {"muc#roomconfig_persistentroom": "1"})
        err = self.join_error(a, self.new_room("one-too-many"), "Alice")
        self.assertEqual(error_of(err), ("wait", "resource-constraint"), show(err))
        b = self.connect("bob")
        self.create(b, self.new_room("bobs"), "Bob")


class Joining(MucCase):
    def test_join_order_presences_history_subject(self):
        a = self.connect("alice")
        b = self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.join(b, room, "Bob")
        self.say(a, room, "first")
        self.expect_groupchat(b, room + "/Alice", "first")  # so the order is fixed
        self.say(b, room, "second")
        self.expect_groupchat(a, room + "/Bob", "second")
        c = self.connect("carol")
        j = self.join(c, room, "Carol")
        kinds = []
        for el in j.stanzas:
            if is_presence(el) and el is not j.self_presence:
                kinds.append("occupant")
            elif el is j.self_presence:
                kinds.append("self")
            elif any(el is h for h in j.history):
                kinds.append("history")
            elif is_subject_message(el):
                kinds.append("subject")
            else:
                kinds.append("other: " + show(el))
        self.assertEqual(kinds, ["occupant", "occupant", "self", "history", "history",
                                 "subject"], [show(e) for e in j.stanzas])
        self.assertEqual({e.get("from") for e in j.occupants}, {room + "/Alice", room + "/Bob"})
        self.assertEqual([body(m) for m in j.history], ["first", "second"])
        self.assertEqual([m.get("from") for m in j.history], [room + "/Alice", room + "/Bob"])
        for m in j.history:
            self.assertEqual(delay_of(m).get("from"), room, show(m))
            self.assertTrue(delay_of(m).get("stamp"), show(m))
            self.assertEqual(m.get("type"), "groupchat")
        s = j.subject
        self.assertEqual(bare(s.get("from")), room)
        self.assertEqual(subject_text(s), "")
        self.assertIsNone(s.find(q("body", NS_CLIENT)))
        # Existing occupants learn of the newcomer.
        for other in (a, b):
            p = self.expect_presence(other, room + "/Carol")
            self.assertEqual(codes(p), set(), show(p))
            self.assertEqual(item(p).get("role"), "participant")
            self.assertEqual(item(p).get("affiliation"), "none")

    def test_semi_anonymous_jid_only_to_moderators(self):
        a = self.connect("alice")
        b = self.connect("bob")
        c = self.connect("carol")
        room = self.new_room()
        self.create(a, room, "Alice")
        jb = self.join(b, room, "Bob")
        self.assertEqual(codes(jb.self_presence), {110}, "no 100 in a semi-anonymous room")
        self.assertIsNone(item(jb.presence_of("Alice")).get("jid"),
                          "a participant sees the owner's real JID: "
                          + show(jb.presence_of("Alice")))
        # The moderator sees the real JID.
        p = self.expect_presence(a, room + "/Bob")
        self.assertEqual(item(p).get("jid"), b.jid, show(p))
        jc = self.join(c, room, "Carol")
        self.assertEqual(item(jc.presence_of("Alice")).get("jid"), None)
        self.assertEqual(item(jc.presence_of("Bob")).get("jid"), None)
        p = self.expect_presence(b, room + "/Carol")
        self.assertIsNone(item(p).get("jid"), show(p))
        p = self.expect_presence(a, room + "/Carol")
        self.assertEqual(item(p).get("jid"), c.jid, show(p))

    def test_non_anonymous_jid_to_all_with_100(self):
        a = self.connect("alice")
        b = self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice", {"whois": "anyone"})
        jb = self.join(b, room, "Bob")
        self.assertEqual(codes(jb.self_presence), {100, 110}, show(jb.self_presence))
        self.assertEqual(item(jb.presence_of("Alice")).get("jid"), a.jid)
        self.assertEqual(item(jb.self_presence).get("jid"), b.jid)
        self.assertIn("muc_nonanonymous", self.room_features(b, room))
        p = self.expect_presence(a, room + "/Bob")
        self.assertEqual(item(p).get("jid"), b.jid, show(p))
        self.assertEqual(codes(p), set(), show(p))

    def test_repeated_join_resyncs(self):
        # XEP-0045 §7.2.1: a join presence (with the muc <x/>) from a full JID that is already
        # an occupant SHOULD get "exactly the same stanzas ... as if it actually just joined".
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.say(a, room, "before")
        self.join(b, room, "Bob")
        self.expect_presence(a, room + "/Bob")
        before = list(b.queue)
        self.send_join(b, room, "Bob")
        b.sync()  # everything the room sends for the join has arrived
        got = [e for e in b.queue if not any(e is x for x in before)
               and bare(e.get("from")) == room]
        again = Joined(room, "Bob", got)  # one self-presence
        self.assertEqual([e.get("from") for e in again.occupants], [room + "/Alice"],
                         [show(e) for e in got])
        self.assertEqual([body(m) for m in again.history], ["before"], [show(e) for e in got])
        self.assertIsNotNone(again.subject, [show(e) for e in got])
        self.assertNotDelivered(a, lambda e: is_presence(e, room + "/Bob", "unavailable"),
                                "Bob leaving on his repeated join")

    def test_nick_conflict(self):
        a = self.connect("alice")
        b = self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice")
        err = self.join_error(b, room, "Alice")
        self.assertError(err, "conflict", "cancel")
        self.assertEqual(err.get("from"), room + "/Alice")
        self.assertNotDelivered(a, lambda e: is_presence(e, room + "/Alice"),
                                "a presence for the conflicting join")
        # Bob is no occupant: his groupchat is refused.
        mid = self.say(b, room, "am I in?")
        self.assertError(self.expect_error_reply(b, "message", mid), "not-acceptable")

    def test_occupant_id_on_presences_and_messages(self):
        a = self.connect("alice")
        b = self.connect("bob")
        room = self.new_room()
        ja = self.create(a, room, "Alice")
        ids_a = occupant_ids(ja.self_presence)
        self.assertEqual(len(ids_a), 1, show(ja.self_presence))
        alice_id = ids_a[0]
        self.assertTrue(alice_id)
        jb = self.join(b, room, "Bob")
        self.assertEqual(occupant_ids(jb.presence_of("Alice")), [alice_id])
        ids_b = occupant_ids(jb.self_presence)
        self.assertEqual(len(ids_b), 1, show(jb.self_presence))
        bob_id = ids_b[0]
        self.assertNotEqual(alice_id, bob_id)
        p = self.expect_presence(a, room + "/Bob")
        self.assertEqual(occupant_ids(p), [bob_id], show(p))
        self.say(a, room, "hello")
        for c in (a, b):
            m = self.expect_groupchat(c, room + "/Alice", "hello")
            self.assertEqual(occupant_ids(m), [alice_id], show(m))
        # History carries the sender's id too.
        jc = self.join(self.connect("carol"), room, "Carol")
        self.assertEqual([occupant_ids(m) for m in jc.history], [[alice_id]])
        self.assertEqual(occupant_ids(jc.presence_of("Alice")), [alice_id])
        self.assertEqual(occupant_ids(jc.presence_of("Bob")), [bob_id])

    def test_occupant_id_supplied_by_client_is_replaced(self):
        a = self.connect("alice")
        b = self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice")
        jb = self.join(b, room, "Bob",
                       extra="<occupant-id xmlns='%s' id='forged-join'/>" % NS_OCCUPANT_ID)
        bob_id = occupant_ids(jb.self_presence)
        self.assertEqual(len(bob_id), 1)
        self.assertNotEqual(bob_id, ["forged-join"])
        p = self.expect_presence(a, room + "/Bob")
        self.assertEqual(occupant_ids(p), bob_id, show(p))
        forged = "<occupant-id xmlns='%s' id='%s'/>"
        alice_id = (occupant_ids(jb.presence_of("Alice")) or ["alice-id"])[0]
        self.say(b, room, "forged", extra=forged % (NS_OCCUPANT_ID, alice_id))
        m = self.expect_groupchat(a, room + "/Bob", "forged")
        self.assertEqual(occupant_ids(m), bob_id, show(m))
        # A presence update with a forged id.
        b.send("<presence to='%s/Bob'><status>busy</status>%s</presence>"
               % (room, forged % (NS_OCCUPANT_ID, "forged-update")))
        p = self.expect_presence(a, room + "/Bob", None,
                                 lambda e: e.findtext(q("status", NS_CLIENT)) == "busy")
        self.assertEqual(occupant_ids(p), bob_id, show(p))

    def test_occupant_id_stable_across_rejoin_and_nick_change(self):
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice")
        b = self.connect("bob")
        first = occupant_ids(self.join(b, room, "Bob").self_presence)
        self.assertEqual(len(first), 1)
        b.send("<presence to='%s/Bob' type='unavailable'/>" % room)
        p = self.expect_presence(b, room + "/Bob", "unavailable")
        self.assertEqual(occupant_ids(p), first, show(p))
        p = self.expect_presence(a, room + "/Bob", "unavailable")
        self.assertEqual(occupant_ids(p), first, show(p))
        b2 = self.connect("bob")  # another session of the same account, another nick
        again = occupant_ids(self.join(b2, room, "Robert").self_presence)
        self.assertEqual(again, first)
        b2.send("<presence to='%s/Bobby'/>" % room)
        p = self.expect_presence(b2, room + "/Bobby", None, lambda e: 110 in codes(e))
        self.assertEqual(occupant_ids(p), first, show(p))


# --- discussion history ------------------------------------------------------------------------

class History(MucCase):
    config = {"muc.history_default": 5, "muc.history_max": 8}

    def room_with_messages(self, n: int) -> tuple:
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice")
        for i in range(n):
            self.say(a, room, "m%d" % i)
        self.expect_groupchat(a, room + "/Alice", "m%d" % (n - 1))
        return a, room

    def bodies(self, j: Joined) -> list:
        return [body(m) for m in j.history]

    def test_default_count(self):
        a, room = self.room_with_messages(7)
        j = self.join(self.connect("bob"), room, "Bob")
        self.assertEqual(self.bodies(j), ["m2", "m3", "m4", "m5", "m6"])
        for m in j.history:
            self.assertEqual(m.get("from"), room + "/Alice")
            self.assertEqual(delay_of(m).get("from"), room)

    def test_maxstanzas(self):
        a, room = self.room_with_messages(4)
        j = self.join(self.connect("bob"), room, "Bob", history={"maxstanzas": 2})
        self.assertEqual(self.bodies(j), ["m2", "m3"])
        j = self.join(self.connect("carol"), room, "Carol", history={"maxstanzas": 0})
        self.assertEqual(self.bodies(j), [])
        self.assertTrue(is_subject_message(j.subject))

    def test_maxchars_zero_means_no_history(self):
        # XEP-0045 §7.2.15: "If the client wishes to receive no history, it MUST set the
        # 'maxchars' attribute to a value of '0'".
        a, room = self.room_with_messages(2)
        j = self.join(self.connect("bob"), room, "Bob", history={"maxchars": 0})
        self.assertEqual(self.bodies(j), [])

    def test_history_max_caps_the_room_setting(self):
        # history_default (5) is the room's muc#maxhistoryfetch, the room-level limit every
        # request is cut to (§7.2.15); the owner may raise it, but not beyond history_max (8).
        a, room = self.room_with_messages(10)
        j = self.join(self.connect("bob"), room, "Bob", history={"maxstanzas": 50})
        self.assertEqual(self.bodies(j), ["m%d" % i for i in range(5, 10)])

        room = self.new_room()
        self.create(a, room, "Alice")
        r = a.iq(room, "<query xmlns='%s'>%s</query>"
                 % (NS_OWNER, config_form({"muc#maxhistoryfetch": "50"})), "set")
        if r.get("type") == "error":  # refusing an out-of-range value is fine too
            self.assertError(r, "not-acceptable")
            self.configure(a, room, {"muc#maxhistoryfetch": "8"})
        for i in range(10):
            self.say(a, room, "n%d" % i)
        self.expect_groupchat(a, room + "/Alice", "n9")
        j = self.join(self.connect("carol"), room, "Carol", history={"maxstanzas": 50})
        self.assertEqual(self.bodies(j), ["n%d" % i for i in range(2, 10)])

    def test_room_maxhistoryfetch(self):
        a, room = self.room_with_messages(4)
        self.configure(a, room, {"muc#maxhistoryfetch": "3"})
        j = self.join(self.connect("bob"), room, "Bob")
        self.assertEqual(self.bodies(j), ["m1", "m2", "m3"])

    def test_seconds_and_since(self):
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.say(a, room, "old")
        self.expect_groupchat(a, room + "/Alice", "old")
        t_old = time.time()
        # The only sleep in this file: history by age needs messages of different ages.
        # 3.2 s leave room for stamps the server may round to whole seconds.
        time.sleep(3.2)
        self.say(a, room, "new1")
        self.say(a, room, "new2")
        self.expect_groupchat(a, room + "/Alice", "new2")
        j = self.join(self.connect("bob"), room, "Bob", history={"seconds": 2})
        self.assertEqual(self.bodies(j), ["new1", "new2"])
        since = utc_stamp(calendar.timegm(time.gmtime(t_old)) + 2)  # between old and new
        j = self.join(self.connect("carol"), room, "Carol", history={"since": since})
        self.assertEqual(self.bodies(j), ["new1", "new2"])
        j = self.join(self.connect("dave"), room, "Dave",
                      history={"since": "1970-01-01T00:00:00Z"})
        self.assertEqual(self.bodies(j), ["old", "new1", "new2"])
        j = self.join(self.connect("erin"), room, "Erin",
                      history={"since": utc_stamp(time.time() + 3600)})
        self.assertEqual(self.bodies(j), [])

    def test_subject_is_not_history(self):
        a, room = self.room_with_messages(1)
        a.send("<message to='%s' type='groupchat'><subject>Topic</subject></message>" % room)
        a.expect(is_subject_message, "subject change")
        j = self.join(self.connect("bob"), room, "Bob")
        self.assertEqual(self.bodies(j), ["m0"])
        self.assertEqual(subject_text(j.subject), "Topic")
        self.assertEqual([e for e in j.stanzas if is_subject_message(e)], [j.subject])


# --- messages, subject, private messages, self-ping -------------------------------------------

class Messaging(MucCase):
    def three(self, config: Optional[dict] = None) -> tuple:
        a, b, c = self.connect("alice"), self.connect("bob"), self.connect("carol")
        room = self.new_room()
        self.create(a, room, "Alice", config)
        self.join(b, room, "Bob")
        self.join(c, room, "Carol")
        return room, a, b, c

    def test_groupchat_reflected_to_all_including_sender(self):
        room, a, b, c = self.three()
        self.say(b, room, "hi all")
        for x in (a, b, c):
            m = self.expect_groupchat(x, room + "/Bob", "hi all")
            self.assertEqual(m.get("to"), x.jid)
            self.assertEqual(m.get("type"), "groupchat")
            self.assertIsNone(delay_of(m), "a live message carries no delay: " + show(m))

    def test_reflection_keeps_message_id(self):
        # XEP-0045 §7.4 (since 1.31): the service SHOULD reflect the client's 'id'.
        room, a, b, c = self.three()
        self.say(b, room, "with id", msg_id="client-chosen-id")
        for x in (a, b):
            m = self.expect_groupchat(x, room + "/Bob", "with id")
            self.assertEqual(m.get("id"), "client-chosen-id", show(m))

    def test_groupchat_from_non_occupant(self):
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice")
        d = self.connect("dave")
        mid = self.say(d, room, "let me in")
        self.assertError(self.expect_error_reply(d, "message", mid), "not-acceptable")
        self.assertNotDelivered(a, lambda e: has_body(e, "let me in") and is_message(e),
                                "the non-occupant's message")

    def test_visitor_in_moderated_room_is_forbidden(self):
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice", {"moderatedroom": True})
        j = self.join(b, room, "Bob")
        self.assertEqual(item(j.self_presence).get("role"), "visitor", show(j.self_presence))
        mid = self.say(b, room, "can you hear me")
        self.assertError(self.expect_error_reply(b, "message", mid), "forbidden")
        self.assertNotDelivered(a, lambda e: is_message(e) and has_body(e, "can you hear me"),
                                "the visitor's message")

    def test_subject_by_moderator(self):
        room, a, b, c = self.three()
        a.send("<message to='%s' type='groupchat'><subject>Plans</subject></message>" % room)
        for x in (a, b, c):
            m = x.expect(lambda e: is_subject_message(e) and subject_text(e) == "Plans",
                         "subject 'Plans'")
            self.assertEqual(m.get("from"), room + "/Alice")
        j = self.join(self.connect("dave"), room, "Dave")
        self.assertEqual(subject_text(j.subject), "Plans")

    def test_subject_by_participant_forbidden_by_default(self):
        room, a, b, c = self.three()
        b.send("<message to='%s' type='groupchat' id='subj1'><subject>Mine</subject></message>"
               % room)
        self.assertError(self.expect_error_reply(b, "message", "subj1"), "forbidden", "auth")
        self.assertNotDelivered(c, lambda e: is_subject_message(e) and subject_text(e) == "Mine",
                                "the refused subject")

    def test_subject_by_participant_with_changesubject(self):
        room, a, b, c = self.three({"changesubject": True})
        b.send("<message to='%s' type='groupchat'><subject>Ours</subject></message>" % room)
        for x in (a, b, c):
            m = x.expect(lambda e: is_subject_message(e) and subject_text(e) == "Ours",
                         "subject 'Ours'")
            self.assertEqual(m.get("from"), room + "/Bob")

    def test_blocked_occupant_is_not_delivered(self):
        """XEP-0191 holds for room messages: blocking room/nick stops that occupant's copies."""
        a, b, c = self.connect("alice"), self.connect("bob"), self.connect("carol")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.join(b, room, "Bob")
        self.join(c, room, "Carol")
        r = b.iq(b.bare, "<block xmlns='urn:xmpp:blocking'><item jid=%s/></block>"
                 % quoteattr(room + "/Alice"), "set")
        self.assertEqual(r.get("type"), "result", show(r))
        self.say(a, room, "from alice")
        self.expect_groupchat(c, room + "/Alice", "from alice")
        self.say(c, room, "from carol")
        self.expect_groupchat(b, room + "/Carol", "from carol")
        self.assertNotDelivered(b, lambda e: has_body(e, "from alice"), "a blocked occupant's message")

    def test_forged_room_notices_are_removed(self):
        """A muc#user <x/> in an occupant's groupchat (fake status codes, someone's 'jid')
        is not repeated: only the room says such things."""
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.join(b, room, "Bob")
        self.say(b, room, "forged", extra="<x xmlns='%s'><status code='301'/><item jid='x@y'/>"
                 "</x>" % NS_USER)
        m = self.expect_groupchat(a, room + "/Bob", "forged")
        self.assertIsNone(muc_x(m), show(m))

    def test_private_message(self):
        room, a, b, c = self.three()
        a.send("<message to='%s/Bob' type='chat' id='pm1'><body>psst</body>"
               "<x xmlns='%s'/></message>" % (room, NS_USER))
        m = b.expect(lambda e: is_message(e, room + "/Alice") and has_body(e, "psst"),
                     "private message")
        self.assertEqual(m.get("type"), "chat")
        self.assertEqual(m.get("to"), b.jid)
        self.assertIsNotNone(muc_x(m), show(m))
        self.assertNotIn(a.bare, show(m), "the PM reveals the sender's real JID")
        # Without <x/> from the client the service adds it (SHOULD, §7.5).
        b.send("<message to='%s/Alice' type='chat'><body>hush</body></message>" % room)
        m = a.expect(lambda e: is_message(e, room + "/Bob") and has_body(e, "hush"),
                     "private reply")
        self.assertIsNotNone(muc_x(m), show(m))
        self.assertNotDelivered(c, lambda e: is_message(e) and body(e) in ("psst", "hush"),
                                "someone else's private message")

    def test_private_message_to_unknown_nick(self):
        room, a, b, c = self.three()
        a.send("<message to='%s/Nobody' type='chat' id='pm2'><body>?</body></message>" % room)
        self.assertError(self.expect_error_reply(a, "message", "pm2"), "item-not-found")

    def test_private_message_from_non_occupant(self):
        room, a, b, c = self.three()
        d = self.connect("dave")
        d.send("<message to='%s/Bob' type='chat' id='pm3'><body>hey</body></message>" % room)
        self.assertError(self.expect_error_reply(d, "message", "pm3"), "not-acceptable")
        self.assertNotDelivered(b, lambda e: is_message(e) and has_body(e, "hey"),
                                "the non-occupant's private message")

    def test_groupchat_to_occupant_is_bad_request(self):
        room, a, b, c = self.three()
        a.send("<message to='%s/Bob' type='groupchat' id='pm4'><body>wrong</body></message>"
               % room)
        self.assertError(self.expect_error_reply(a, "message", "pm4"), "bad-request", "modify")
        self.assertNotDelivered(b, lambda e: is_message(e) and has_body(e, "wrong"),
                                "a groupchat-typed private message")

    def test_allowpm_none(self):
        room, a, b, c = self.three({"allowpm": "none"})
        b.send("<message to='%s/Carol' type='chat' id='pm5'><body>no pms</body></message>"
               % room)
        self.assertError(self.expect_error_reply(b, "message", "pm5"), "forbidden")
        self.assertNotDelivered(c, lambda e: is_message(e) and has_body(e, "no pms"),
                                "a private message with allowpm=none")

    def test_allowpm_moderators(self):
        room, a, b, c = self.three({"allowpm": "moderators"})
        b.send("<message to='%s/Carol' type='chat' id='pm6'><body>from bob</body></message>"
               % room)
        self.assertError(self.expect_error_reply(b, "message", "pm6"), "forbidden")
        a.send("<message to='%s/Carol' type='chat'><body>from alice</body></message>" % room)
        c.expect(lambda e: is_message(e, room + "/Alice") and has_body(e, "from alice"),
                 "a moderator's private message")

    def test_self_ping(self):
        room, a, b, c = self.three()
        r = a.iq(room + "/Alice", "<ping xmlns='%s'/>" % NS_PING)
        self.assertEqual(r.get("type"), "result", show(r))
        self.assertEqual(r.get("from"), room + "/Alice")
        d = self.connect("dave")
        r = d.iq(room + "/Dave", "<ping xmlns='%s'/>" % NS_PING)
        self.assertError(r, "not-acceptable", "cancel")


# --- nick changes and leaving -------------------------------------------------------------

class NickAndLeave(MucCase):
    def two(self) -> tuple:
        return self.two_with("bob")

    def two_with(self, other: str) -> tuple:
        a, b = self.connect("alice"), self.connect(other)
        room = self.new_room()
        nick = other.capitalize()
        self.create(a, room, "Alice")
        self.join(b, room, nick)
        self.expect_presence(a, room + "/" + nick)
        return room, a, b

    def test_nick_change(self):
        room, a, b = self.two()
        b.send("<presence to='%s/Bobby'/>" % room)
        for x, self_codes in ((b, {110}), (a, set())):
            gone = self.expect_presence(x, room + "/Bob", "unavailable")
            self.assertEqual(codes(gone), {303} | self_codes, show(gone))
            self.assertEqual(item(gone).get("nick"), "Bobby", show(gone))
            back = self.expect_presence(x, room + "/Bobby")
            self.assertEqual(codes(back), self_codes, show(back))
            self.assertEqual(item(back).get("role"), "participant")
        self.say(b, room, "renamed")
        self.expect_groupchat(a, room + "/Bobby", "renamed")

    def test_nick_change_order(self):
        # The unavailable presence for the old nick comes before the new one (§7.6).
        room, a, b = self.two()
        b.send("<presence to='%s/Bobby'/>" % room)
        first = a.expect(lambda e: is_presence(e) and bare(e.get("from")) == room,
                         "first presence after the nick change")
        self.assertEqual((first.get("from"), first.get("type")), (room + "/Bob", "unavailable"))

    def test_nick_change_conflict(self):
        room, a, b = self.two()
        b.send("<presence to='%s/Alice' id='nc1'/>" % room)
        err = self.expect_error_reply(b, "presence", "nc1")
        self.assertError(err, "conflict", "cancel")
        self.assertEqual(err.get("from"), room + "/Alice")
        self.say(b, room, "still bob")
        self.expect_groupchat(a, room + "/Bob", "still bob")

    def test_leave(self):
        room, a, b = self.two()
        b.send("<presence to='%s/Bob' type='unavailable'/>" % room)
        p = self.expect_presence(b, room + "/Bob", "unavailable")
        self.assertEqual(codes(p), {110}, show(p))
        self.assertEqual(item(p).get("role"), "none")
        p = self.expect_presence(a, room + "/Bob", "unavailable")
        self.assertEqual(codes(p), set(), show(p))
        self.assertEqual(item(p).get("role"), "none")
        mid = self.say(b, room, "after leaving")
        self.assertError(self.expect_error_reply(b, "message", mid), "not-acceptable")

    def test_presence_update_is_broadcast(self):
        room, a, b = self.two()
        b.send("<presence to='%s/Bob'><show>away</show><status>brb</status></presence>" % room)
        for x, self_codes in ((a, set()), (b, {110})):
            p = self.expect_presence(x, room + "/Bob")
            self.assertEqual(p.findtext(q("show", NS_CLIENT)), "away", show(p))
            self.assertEqual(p.findtext(q("status", NS_CLIENT)), "brb", show(p))
            self.assertEqual(codes(p), self_codes, show(p))

    def test_leave_carries_the_leaving_status_only(self):
        # The unavailable presence is the one the occupant sent (§7.14), not its last status.
        room, a, b = self.two()
        b.send("<presence to='%s/Bob'><status>brb</status></presence>" % room)
        self.expect_presence(a, room + "/Bob")
        b.send("<presence to='%s/Bob' type='unavailable'/>" % room)
        p = self.expect_presence(a, room + "/Bob", "unavailable")
        self.assertIsNone(p.find(q("status", NS_CLIENT)), show(p))
        room, a, c = self.two_with("carol")
        c.send("<presence to='%s/Carol' type='unavailable'><status>bye</status></presence>"
               % room)
        p = self.expect_presence(a, room + "/Carol", "unavailable")
        self.assertEqual(p.findtext(q("status", NS_CLIENT)), "bye", show(p))

    def test_temporary_room_vanishes_with_last_occupant(self):
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice", {"roomname": "Short lived"})
        a.send("<presence to='%s/Alice' type='unavailable'/>" % room)
        self.expect_presence(a, room + "/Alice", "unavailable")
        self.room_gone(a, room)
        r = a.iq(SERVICE, "<query xmlns='%s'/>" % NS_ITEMS)
        self.assertNotIn(room, [i.get("jid") for i in r.iter(q("item", NS_ITEMS))], show(r))
        j = self.join(a, room, "Alice")
        self.assertEqual(codes(j.self_presence), {110, 201})

    def test_closing_the_stream_leaves(self):
        room, a, b = self.two()
        b.send("</stream:stream>")
        p = self.expect_presence(a, room + "/Bob", "unavailable")
        self.assertEqual(item(p).get("role"), "none")

    def test_dropped_connection_leaves(self):
        room, a, b = self.two()
        b.rs.sock.shutdown(socket.SHUT_RDWR)  # no </stream:stream>, no unavailable presence
        b.close()
        p = self.expect_presence(a, room + "/Bob", "unavailable")
        self.assertEqual(item(p).get("role"), "none")

    def test_broadcast_unavailable_leaves(self):
        # RFC 6121 §4.5.2: the server sends the user's unavailable presence to the rooms it
        # sent directed presence to.
        room, a, b = self.two()
        b.send("<presence type='unavailable'/>")
        p = self.expect_presence(a, room + "/Bob", "unavailable")
        self.assertEqual(item(p).get("role"), "none")


# --- muc#admin: kick, voice, ban, member list, affiliations ------------------------------------

class Administration(MucCase):
    def room_with(self, *locals_, config: Optional[dict] = None) -> tuple:
        """alice creates (nick Alice), the others join with capitalised nicks."""
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice", config)
        others = []
        for local in locals_:
            c = self.connect(local)
            self.join(c, room, local.capitalize())
            others.append(c)
        return (room, a) + tuple(others)

    def test_kick(self):
        room, a, b, c = self.room_with("bob", "carol")
        r = self.admin(a, room, "<item nick='Bob' role='none'><reason>spam</reason></item>")
        self.assertEqual(r.get("type"), "result", show(r))
        p = self.expect_presence(b, room + "/Bob", "unavailable")
        self.assertEqual(codes(p), {110, 307}, show(p))
        self.assertEqual(item(p).get("role"), "none")
        self.assertEqual(item(p).findtext(q("reason", NS_USER)), "spam", show(p))
        for x in (a, c):
            p = self.expect_presence(x, room + "/Bob", "unavailable")
            self.assertEqual(codes(p), {307}, show(p))
            self.assertEqual(item(p).get("role"), "none")
        mid = self.say(b, room, "kicked?")
        self.assertError(self.expect_error_reply(b, "message", mid), "not-acceptable")

    def test_participant_cannot_kick(self):
        room, a, b, c = self.room_with("bob", "carol")
        r = self.admin(b, room, "<item nick='Carol' role='none'/>")
        self.assertError(r, "forbidden")
        self.assertNotDelivered(c, lambda e: is_presence(e, room + "/Carol", "unavailable"),
                                "a kick by a participant")

    def test_moderator_cannot_kick_owner(self):
        room, a, b = self.room_with("bob")
        self.admin_ok(a, room, "<item nick='Bob' role='moderator'/>")
        self.expect_presence(b, room + "/Bob", None, lambda e: item(e).get("role")
                             == "moderator", "with role moderator")
        r = self.admin(b, room, "<item nick='Alice' role='none'/>")
        self.assertError(r, "not-allowed", "cancel")
        self.assertNotDelivered(a, lambda e: is_presence(e, room + "/Alice", "unavailable"),
                                "a kick of the owner")
        c = self.connect("carol")
        self.admin_ok(a, room, "<item jid='%s' affiliation='admin'/>" % c.bare)
        self.join(c, room, "Carol")
        r = self.admin(b, room, "<item nick='Carol' role='none'/>")
        self.assertError(r, "not-allowed", "cancel")

    def test_voice_in_moderated_room(self):
        room, a, b, c = self.room_with("bob", "carol", config={"moderatedroom": True})
        self.admin_ok(a, room, "<item nick='Bob' role='participant'/>")
        for x in (a, b, c):
            p = self.expect_presence(x, room + "/Bob", None,
                                     lambda e: item(e).get("role") == "participant",
                                     "with role participant")
        self.say(b, room, "now I may speak")
        self.expect_groupchat(c, room + "/Bob", "now I may speak")
        self.admin_ok(a, room, "<item nick='Bob' role='visitor'/>")
        self.expect_presence(b, room + "/Bob", None, lambda e: item(e).get("role") == "visitor",
                             "with role visitor")
        mid = self.say(b, room, "and now?")
        self.assertError(self.expect_error_reply(b, "message", mid), "forbidden")

    def test_ban_present_occupant(self):
        room, a, b, c = self.room_with("bob", "carol")
        self.admin_ok(a, room, "<item jid='%s' affiliation='outcast'><reason>rude</reason>"
                      "</item>" % b.bare)
        p = self.expect_presence(b, room + "/Bob", "unavailable")
        self.assertIn(301, codes(p), show(p))
        self.assertEqual((item(p).get("affiliation"), item(p).get("role")), ("outcast", "none"))
        p = self.expect_presence(c, room + "/Bob", "unavailable")
        self.assertEqual(codes(p), {301}, show(p))
        self.assertError(self.join_error(b, room, "Bob"), "forbidden", "auth")
        b2 = self.connect("bob")  # any resource of the banned account
        self.assertError(self.join_error(b2, room, "Robert"), "forbidden", "auth")
        r = self.admin_ok(a, room, "<item affiliation='outcast'/>", "get")
        items = [(i.get("jid"), i.get("affiliation")) for i in r.iter(q("item", NS_ADMIN))]
        self.assertEqual(items, [(b.bare, "outcast")], show(r))

    def test_ban_expels_every_nick_of_the_account(self):
        """One account in the room under two nicks (two devices): a ban removes both."""
        room, a, b = self.room_with("bob")
        b2 = self.connect("bob")
        self.join(b2, room, "Bobby")
        self.admin_ok(a, room, "<item jid='%s' affiliation='outcast'/>" % b.bare)
        for c, nick in ((b, "Bob"), (b2, "Bobby")):
            p = self.expect_presence(c, room + "/" + nick, "unavailable")
            self.assertIn(301, codes(p), show(p))
        self.say(b2, room, "still here?")
        self.assertNotDelivered(a, lambda e: has_body(e, "still here?"), "a banned nick's message")

    def test_ban_absent_user(self):
        room, a = self.room_with()
        self.admin_ok(a, room, "<item jid='%s' affiliation='outcast'/>" % jid("dave"))
        self.assertError(self.join_error(self.connect("dave"), room, "Dave"), "forbidden",
                         "auth")

    def test_admin_cannot_ban_owner(self):
        room, a, c = self.room_with("carol")
        self.admin_ok(a, room, "<item jid='%s' affiliation='admin'/>" % c.bare)
        r = self.admin(c, room, "<item jid='%s' affiliation='outcast'/>" % a.bare)
        self.assertError(r, "not-allowed", "cancel")

    def test_admin_cannot_demote_owner(self):
        # XEP-0045 §10.7: a request to change an owner's affiliation from someone who is not
        # an owner MUST get <forbidden/>; the contract says not-allowed (see the report).
        room, a, c = self.room_with("carol")
        self.admin_ok(a, room, "<item jid='%s' affiliation='admin'/>" % c.bare)
        r = self.admin(c, room, "<item jid='%s' affiliation='member'/>" % a.bare)
        self.assertError(r, "forbidden")

    def test_last_owner_cannot_step_down(self):
        room, a = self.room_with()
        r = self.admin(a, room, "<item jid='%s' affiliation='admin'/>" % a.bare)
        self.assertError(r, "conflict")
        r = self.admin(a, room, "<item jid='%s' affiliation='none'/>" % a.bare)
        self.assertError(r, "conflict")

    def test_member_list(self):
        room, a, b = self.room_with("bob")
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % b.bare)
        p = self.expect_presence(b, room + "/Bob", None,
                                 lambda e: item(e).get("affiliation") == "member",
                                 "with affiliation member")
        self.assertEqual(item(p).get("role"), "participant")
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % jid("erin"))
        r = self.admin_ok(a, room, "<item affiliation='member'/>", "get")
        items = sorted((i.get("jid"), i.get("affiliation")) for i in r.iter(q("item", NS_ADMIN)))
        self.assertEqual(items, [(b.bare, "member"), (jid("erin"), "member")], show(r))
        r = self.admin(b, room, "<item affiliation='member'/>", "get")
        self.assertError(r, "forbidden")

    def test_members_only_room(self):
        room, a = self.room_with(config={"membersonly": True})
        b = self.connect("bob")
        self.assertError(self.join_error(b, room, "Bob"), "registration-required", "auth")
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % b.bare)
        j = self.join(b, room, "Bob")
        self.assertEqual((item(j.self_presence).get("affiliation"),
                          item(j.self_presence).get("role")), ("member", "participant"))

    def test_removing_member_from_members_only_room(self):
        room, a = self.room_with(config={"membersonly": True})
        b = self.connect("bob")
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % b.bare)
        self.join(b, room, "Bob")
        self.expect_presence(a, room + "/Bob")
        self.admin_ok(a, room, "<item jid='%s' affiliation='none'/>" % b.bare)
        p = self.expect_presence(b, room + "/Bob", "unavailable")
        self.assertIn(321, codes(p), show(p))
        self.assertEqual((item(p).get("affiliation"), item(p).get("role")), ("none", "none"))
        p = self.expect_presence(a, room + "/Bob", "unavailable")
        self.assertIn(321, codes(p), show(p))
        self.assertError(self.join_error(b, room, "Bob"), "registration-required", "auth")

    def test_owner_grants_admin(self):
        room, a, c = self.room_with("carol")
        self.admin_ok(a, room, "<item jid='%s' affiliation='admin'/>" % c.bare)
        p = self.expect_presence(c, room + "/Carol", None,
                                 lambda e: item(e).get("affiliation") == "admin",
                                 "with affiliation admin")
        self.assertEqual(item(p).get("role"), "moderator", show(p))
        r = self.admin_ok(a, room, "<item affiliation='admin'/>", "get")
        self.assertEqual([i.get("jid") for i in r.iter(q("item", NS_ADMIN))], [c.bare])
        # An admin may kick a participant.
        b = self.connect("bob")
        self.join(b, room, "Bob")
        self.admin_ok(c, room, "<item nick='Bob' role='none'/>")
        p = self.expect_presence(b, room + "/Bob", "unavailable")
        self.assertEqual(codes(p), {110, 307}, show(p))


# --- destroying a room -----------------------------------------------------------------------------

class Destruction(MucCase):
    def test_destroy(self):
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room()
        alt = "alt@" + SERVICE
        self.create(a, room, "Alice")
        self.join(b, room, "Bob")
        r = a.iq(room, "<query xmlns='%s'><destroy jid='%s'><reason>moving</reason></destroy>"
                 "</query>" % (NS_OWNER, alt), "set")
        self.assertEqual(r.get("type"), "result", show(r))
        for x, nick in ((a, "Alice"), (b, "Bob")):
            p = self.expect_presence(x, "%s/%s" % (room, nick), "unavailable")
            self.assertEqual((item(p).get("affiliation"), item(p).get("role")), ("none", "none"),
                             show(p))
            d = muc_x(p).find(q("destroy", NS_USER))
            self.assertIsNotNone(d, show(p))
            self.assertEqual(d.get("jid"), alt)
            self.assertEqual(d.findtext(q("reason", NS_USER)), "moving")
        self.room_gone(b, room)

    def test_destroy_by_non_owner(self):
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.join(b, room, "Bob")
        r = b.iq(room, "<query xmlns='%s'><destroy/></query>" % NS_OWNER, "set")
        self.assertError(r, "forbidden", "auth")
        self.assertNotDelivered(a, lambda e: is_presence(e, room + "/Alice", "unavailable"),
                                "a destruction by a non-owner")
        self.assertIn(NS_MUC, self.room_features(b, room))


# --- invitations ------------------------------------------------------------------------------

class Invitations(MucCase):
    def invite(self, c: Client, room: str, to: str, reason: str, msg_id: str = "") -> str:
        msg_id = msg_id or "inv%d" % next(_seq)
        c.send("<message to='%s' id='%s'><x xmlns='%s'><invite to='%s'><reason>%s</reason>"
               "</invite></x></message>" % (room, msg_id, NS_USER, to, escape(reason)))
        return msg_id

    def expect_invite(self, c: Client, room: str, inviter: Client, reason: str):
        def invitation(e):
            x = muc_x(e) if is_message(e, room) else None
            inv = None if x is None else x.find(q("invite", NS_USER))
            return inv is not None and inv.findtext(q("reason", NS_USER)) == reason

        # (Adding a member to a members-only room may bring its own invitation, §9.5.)
        m = c.expect(invitation, "invitation from %s with reason %r" % (room, reason))
        inv = muc_x(m).find(q("invite", NS_USER))
        self.assertIn(inv.get("from"), (inviter.jid, inviter.bare), show(m))
        self.assertEqual(inv.findtext(q("reason", NS_USER)), reason, show(m))
        self.assertIn(m.get("type"), (None, "normal"), show(m))
        return m

    def test_mediated_invitation(self):
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.invite(a, room, b.bare, "come along")
        self.expect_invite(b, room, a, "come along")

    def test_members_only_member_may_not_invite(self):
        a, b, c = self.connect("alice"), self.connect("bob"), self.connect("carol")
        room = self.new_room()
        self.create(a, room, "Alice", {"membersonly": True, "allowinvites": False})
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % b.bare)
        self.join(b, room, "Bob")
        mid = self.invite(b, room, c.bare, "join us")
        self.assertError(self.expect_error_reply(b, "message", mid), "forbidden", "auth")
        self.assertNotDelivered(c, lambda e: is_message(e, room) and muc_x(e) is not None,
                                "an invitation the room refused")
        self.assertError(self.join_error(c, room, "Carol"), "registration-required", "auth")

    def test_decline_goes_only_to_the_inviter(self):
        a, b, c = self.connect("alice"), self.connect("bob"), self.connect("carol")
        room = self.new_room()
        self.create(a, room, "Alice")
        # No invitation: the room relays no decline (it would be a relay to any address).
        mid = "d%d" % next(_seq)
        b.send("<message to='%s' id='%s'><x xmlns='%s'><decline to='%s'><reason>spam</reason>"
               "</decline></x></message>" % (room, mid, NS_USER, c.bare))
        self.assertError(self.expect_error_reply(b, "message", mid), "not-acceptable")
        self.assertNotDelivered(c, lambda e: is_message(e, room), "a relayed decline")
        # Invited by alice: bob's decline reaches alice, whatever 'to' says.
        self.invite(a, room, b.bare, "come")
        self.expect_invite(b, room, a, "come")
        b.send("<message to='%s'><x xmlns='%s'><decline to='%s'><reason>no time</reason>"
               "</decline></x></message>" % (room, NS_USER, c.bare))
        d = a.expect(lambda e: is_message(e, room) and muc_x(e) is not None
                     and muc_x(e).find(q("decline", NS_USER)) is not None, "the decline")
        self.assertEqual(muc_x(d).find(q("decline", NS_USER)).get("from"), b.bare)
        self.assertNotDelivered(c, lambda e: is_message(e, room), "a decline to a third party")

    def test_owner_invitation_makes_member(self):
        a, c = self.connect("alice"), self.connect("carol")
        room = self.new_room()
        self.create(a, room, "Alice", {"membersonly": True})
        self.invite(a, room, c.bare, "welcome")
        self.expect_invite(c, room, a, "welcome")
        j = self.join(c, room, "Carol")
        self.assertEqual(item(j.self_presence).get("affiliation"), "member")
        r = self.admin_ok(a, room, "<item affiliation='member'/>", "get")
        self.assertIn(c.bare, [i.get("jid") for i in r.iter(q("item", NS_ADMIN))], show(r))

    def test_allowinvites_lets_member_invite(self):
        # XEP-0045 §9.5: with invitation privileges opened to members, an invitation SHOULD
        # add the invitee to the member list.
        a, b, d = self.connect("alice"), self.connect("bob"), self.connect("dave")
        room = self.new_room()
        self.create(a, room, "Alice", {"membersonly": True, "allowinvites": True})
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % b.bare)
        self.join(b, room, "Bob")
        self.invite(b, room, d.bare, "from a member")
        self.expect_invite(d, room, b, "from a member")
        j = self.join(d, room, "Dave")
        self.assertEqual(item(j.self_presence).get("affiliation"), "member")


# --- membership requests (XEP-0045 §7.10, §9.9) ----------------------------------------------

NS_REGISTER = "jabber:iq:register"
NS_MUC_REGISTER = NS_MUC + "#register"


class Registration(MucCase):
    @staticmethod
    def values(form: ET.Element) -> dict:
        return {k: v["values"] for k, v in form_fields(form).items()}

    def request(self, c: Client, room: str, nick: str) -> ET.Element:
        form = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>%s</value></field>"
                "<field var='muc#register_roomnick'><value>%s</value></field></x>"
                % (NS_DATA, NS_MUC_REGISTER, escape(nick)))
        return c.iq(room, "<query xmlns='%s'>%s</query>" % (NS_REGISTER, form), "set")

    def approval_form(self, c: Client, room: str) -> ET.Element:
        def request(e):
            if not is_message(e, room):
                return False
            x = e.find(q("x", NS_DATA))
            return x is not None and self.values(x).get("FORM_TYPE") == [NS_MUC_REGISTER]
        return c.expect(request, "membership request form from %s" % room)

    def answer(self, c: Client, room: str, form: ET.Element, allow: bool) -> None:
        fields = self.values(form.find(q("x", NS_DATA)))
        c.send("<message to=%s><x xmlns='%s' type='submit'>"
               "<field var='FORM_TYPE'><value>%s</value></field>"
               "<field var='muc#jid'><value>%s</value></field>"
               "<field var='muc#register_roomnick'><value>%s</value></field>"
               "<field var='muc#register_allow'><value>%s</value></field></x></message>"
               % (quoteattr(room), NS_DATA, NS_MUC_REGISTER, fields["muc#jid"][0],
                  escape(fields["muc#register_roomnick"][0]), "true" if allow else "false"))

    def test_form_then_request_then_approval(self):
        """A non-member gets the registration form, asks, the owner approves, the member
        enters; the owner's form names the account and nick."""
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice", {"membersonly": True})
        self.assertError(self.join_error(b, room, "Bob"), "registration-required", "auth")
        r = b.iq(room, "<query xmlns='%s'/>" % NS_REGISTER)
        self.assertEqual(r.get("type"), "result", show(r))
        x = r.find(q("query", NS_REGISTER)).find(q("x", NS_DATA))
        self.assertIsNotNone(x, show(r))
        self.assertIn("muc#register_roomnick", form_fields(x))
        self.assertEqual(self.request(b, room, "Bobby").get("type"), "result")
        b.expect(lambda e: is_message(e, room) and body(e) is not None, "pending note")
        form = self.approval_form(a, room)
        fields = self.values(form.find(q("x", NS_DATA)))
        self.assertEqual(fields["muc#jid"], [b.bare])
        self.assertEqual(fields["muc#register_roomnick"], ["Bobby"])
        # Still not in before the answer.
        self.assertError(self.join_error(b, room, "Bobby"), "registration-required", "auth")
        self.answer(a, room, form, True)
        b.expect(lambda e: is_message(e, room) and "member" in (body(e) or ""), "accepted note")
        self.join(b, room, "Bobby")
        members = self.admin_ok(a, room, "<item affiliation='member'/>", "get")
        self.assertEqual([i.get("jid") for i in members.iter(q("item", NS_ADMIN))], [b.bare])
        r = b.iq(room, "<query xmlns='%s'/>" % NS_REGISTER)
        self.assertIsNotNone(r.find(q("query", NS_REGISTER)).find(q("registered", NS_REGISTER)))

    def test_declined_and_unauthorised_answers(self):
        a, b, c = self.connect("alice"), self.connect("bob"), self.connect("carol")
        room = self.new_room()
        self.create(a, room, "Alice", {"membersonly": True})
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % c.bare)
        self.join(c, room, "Carol")
        self.assertEqual(self.request(b, room, "Bob").get("type"), "result")
        form = self.approval_form(a, room)
        # A member cannot approve (§9.9: admins and owners).
        mid = "m%d" % next(_seq)
        fields = self.values(form.find(q("x", NS_DATA)))
        c.send("<message to=%s id='%s'><x xmlns='%s' type='submit'>"
               "<field var='FORM_TYPE'><value>%s</value></field>"
               "<field var='muc#jid'><value>%s</value></field>"
               "<field var='muc#register_allow'><value>1</value></field></x></message>"
               % (quoteattr(room), mid, NS_DATA, NS_MUC_REGISTER, fields["muc#jid"][0]))
        self.assertError(self.expect_error_reply(c, "message", mid), "forbidden", "auth")
        self.answer(a, room, form, False)
        b.expect(lambda e: is_message(e, room) and "declined" in (body(e) or ""), "declined")
        self.assertError(self.join_error(b, room, "Bob"), "registration-required", "auth")

    def test_nick_is_required_and_bans_hold(self):
        a, b = self.connect("alice"), self.connect("bob")
        room = self.new_room()
        self.create(a, room, "Alice", {"membersonly": True})
        self.assertError(self.request(b, room, ""), "not-acceptable")
        self.admin_ok(a, room, "<item jid='%s' affiliation='outcast'/>" % b.bare)
        self.assertError(self.request(b, room, "Bob"), "forbidden", "auth")
        self.assertNotDelivered(a, lambda e: is_message(e, room) and e.find(q("x", NS_DATA))
                                is not None, "a request from a banned account")


# --- service limits ----------------------------------------------------------------------------

class RoomLimit(MucCase):
    config = {"muc.max_rooms": 2}

    def test_max_rooms(self):
        a = self.connect("alice")
        first, second, third = self.new_room(), self.new_room(), self.new_room()
        self.create(a, first, "Alice")
        self.create(a, second, "Alice")
        err = self.join_error(a, third, "Alice")
        self.assertError(err, "resource-constraint")
        self.room_gone(a, third)
        a.send("<presence to='%s/Alice' type='unavailable'/>" % first)
        self.expect_presence(a, first + "/Alice", "unavailable")
        self.create(a, third, "Alice")  # the temporary room's place is free again


class OccupantLimit(MucCase):
    config = {"muc.max_occupants": 2}

    def test_max_occupants_admits_admins(self):
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice")
        self.join(self.connect("bob"), room, "Bob")
        self.assertError(self.join_error(self.connect("carol"), room, "Carol"),
                         "service-unavailable")
        self.admin_ok(a, room, "<item jid='%s' affiliation='admin'/>" % jid("dave"))
        j = self.join(self.connect("dave"), room, "Dave")
        self.assertEqual(item(j.self_presence).get("affiliation"), "admin")


# --- persistence ------------------------------------------------------------------------------

class Persistence(MucCase):
    def test_persistent_members_only_room_survives_restart(self):
        room = self.new_room("kept")
        a = self.connect("alice")
        self.create(a, room, "Alice", {"roomname": "Kept", "persistentroom": True,
                                       "membersonly": True})
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % jid("bob"))
        a.send("<presence to='%s/Alice' type='unavailable'/>" % room)
        self.expect_presence(a, room + "/Alice", "unavailable")
        # Empty but persistent: still there.
        self.assertIn("muc_persistent", self.room_features(a, room))
        a.close()

        self.srv.restart()

        a = self.connect("alice")
        r = self.disco_info(a, room)
        self.assertEqual(r.get("type"), "result", "the room did not survive: " + show(r))
        features = {f.get("var") for f in r.iter(q("feature", NS_INFO))}
        self.assertIn("muc_persistent", features, show(r))
        self.assertIn("muc_membersonly", features, show(r))
        self.assertEqual([i.get("name") for i in r.iter(q("identity", NS_INFO))], ["Kept"])
        j = self.join(a, room, "Alice")
        self.assertEqual(codes(j.self_presence), {110}, show(j.self_presence))
        self.assertEqual(item(j.self_presence).get("affiliation"), "owner")
        b = self.connect("bob")
        j = self.join(b, room, "Bob")
        self.assertEqual(item(j.self_presence).get("affiliation"), "member")
        c = self.connect("carol")
        self.assertError(self.join_error(c, room, "Carol"), "registration-required", "auth")
        r = self.admin_ok(a, room, "<item affiliation='member'/>", "get")
        self.assertEqual([i.get("jid") for i in r.iter(q("item", NS_ADMIN))], [jid("bob")])
        # Clean up: destroy removes it for good, across a restart too.
        r = a.iq(room, "<query xmlns='%s'><destroy/></query>" % NS_OWNER, "set")
        self.assertEqual(r.get("type"), "result", show(r))
        a.close()
        b.close()
        c.close()
        self.srv.restart()
        self.room_gone(self.connect("alice"), room)


class AccountDeletion(MucCase):
    def test_deleted_account_keeps_no_affiliation(self):
        """A new account with a deleted one's name inherits no membership."""
        a = self.connect("alice")
        room = self.new_room()
        self.create(a, room, "Alice", {"membersonly": True, "persistentroom": True})
        self.admin_ok(a, room, "<item jid='%s' affiliation='member'/>" % jid("erin"))
        r = self.srv.run_ctl(["user", "delete", jid("erin")])
        self.assertEqual(r.exit_code, 0, r.err)
        self.srv.add_user("erin", PASSWORD)
        members = self.admin_ok(a, room, "<item affiliation='member'/>", "get")
        self.assertEqual(list(members.iter(q("item", NS_ADMIN))), [], show(members))
        self.assertError(self.join_error(self.connect("erin"), room, "Erin"),
                         "registration-required", "auth")


if __name__ == "__main__":
    unittest.main(verbosity=2)
