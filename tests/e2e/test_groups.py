#!/usr/bin/env python3
"""E2E: group rooms (modules/groups, issue 12) over real sockets — rooms from [[groups]],
admission by membership request, the next meeting for members, the meeting link exactly inside
its window (the server's clock moved with `havenctl clock advance`, never by sleeping), personal
Jitsi and BigBlueButton links checked against HMAC/SHA computed here, `havenctl group meeting`,
and a weekly meeting across the DST change in Europe/Berlin.

Run by ctest (e2e.py.test_groups); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_groups.py -v
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
import unittest
import urllib.parse
import zoneinfo
from xml.sax.saxutils import quoteattr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import TestServer  # noqa: E402
from muc_testlib import (NS_COMMANDS, NS_DATA, NS_INFO, NS_MUC, Client,  # noqa: E402
                         PASSWORD, SERVICE, body, codes, command_note, error_of, form_fields,
                         is_message, is_presence, kind, q, show)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NS_OOB = "jabber:x:oob"
NS_REGISTER = "jabber:iq:register"
NS_MUC_REGISTER = NS_MUC + "#register"
GROUP_FORM = "urn:haven:params:group:0"
ROOM = "lobby@" + SERVICE
JITSI_SECRET = "jitsi-app-secret-for-tests"
BBB_SECRET = "bbb-shared-secret-for-tests"


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def local_start(days_ahead: int, hour: int = 18) -> datetime.datetime:
    """A Berlin wall-clock time `days_ahead` days from now at `hour`:00."""
    d = datetime.datetime.now(BERLIN) + datetime.timedelta(days=days_ahead)
    return d.replace(hour=hour, minute=0, second=0, microsecond=0)


def values(x) -> dict:
    return {k: v["values"] for k, v in form_fields(x).items()}


class GroupCase(unittest.TestCase):
    link_toml = ""   # extra keys of the [[groups]] table
    meeting_url = "https://meet.example.org/lobby-group"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        secret = os.path.join(cls.tmp.name, "secret")
        with open(secret, "w") as f:
            f.write((JITSI_SECRET if "jitsi" in cls.link_toml else BBB_SECRET) + "\n")
        cls.start = local_start(2)
        toml = """
[[groups]]
id = "lobby"
name = "Lobby"
room = "%s"
supporters = ["sam@localhost", "sue@localhost"]
time_zone = "Europe/Berlin"
%s
[[groups.meetings]]
title = "Evening group"
start = "%s"
duration_minutes = 60
repeat = "weekly"
url = "%s"
""" % (ROOM, cls.link_toml.replace("@SECRET@", secret), cls.start.strftime("%Y-%m-%dT%H:%M"),
       cls.meeting_url)
        cls.srv = TestServer(config={"peersupport.enabled": True,
                                     "peersupport.supporters": ["sam@localhost", "sue@localhost"],
                                     "server.clock_control": True},
                             extra_toml=toml)
        cls.offset = 0.0
        try:
            for u in ("sam", "sue", "alice", "bob", "carol"):
                cls.srv.add_user(u, PASSWORD, "supporter" if u in ("sam", "sue") else "member")
            cls.srv.start()
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        cls.tmp.cleanup()

    # --- helpers ---

    def connect(self, local):
        c = Client(self.srv, local, "r%d" % int(time.monotonic() * 1000000 % 1000000))
        self.addCleanup(c.close)
        return c

    @classmethod
    def advance_to(cls, t: float):
        """Moves the server's clock so that it reads about `t` (unix seconds)."""
        now = time.time() + cls.offset
        delta = int(t - now)
        if delta <= 0:
            return
        r = cls.srv.run_ctl(["clock", "advance", str(delta)])
        assert r.exit_code == 0, r.err
        cls.offset += delta

    def join(self, c, nick, lang=None):
        lang_attr = " xml:lang='%s'" % lang if lang else ""
        c.send("<presence to=%s%s><x xmlns='%s'/></presence>"
               % (quoteattr(ROOM + "/" + nick), lang_attr, NS_MUC))
        me = ROOM + "/" + nick
        p = c.expect(lambda e: is_presence(e, me, "error") or
                     (is_presence(e, me, None) and 110 in codes(e)), "join answer for " + me)
        return p

    def admit(self, owner, member):
        r = owner.iq(ROOM, "<query xmlns='http://jabber.org/protocol/muc#admin'>"
                     "<item jid='%s' affiliation='member'/></query>" % member.bare, "set")
        self.assertEqual(r.get("type"), "result", show(r))

    def link_messages(self, c):
        c.sync()
        return [e for e in c.queue if is_message(e, ROOM) and e.find(q("x", NS_OOB)) is not None]

    def expect_link(self, c):
        m = c.expect(lambda e: is_message(e, ROOM, "groupchat") and
                     e.find(q("x", NS_OOB)) is not None, "meeting link")
        url = m.find(q("x", NS_OOB)).findtext(q("url", NS_OOB))
        self.assertIn(url, body(m))
        self.assertIsNotNone(m.find(q("no-store", "urn:xmpp:hints")), show(m))
        return url

    def meeting_utc(self):
        s = self.start.astimezone(datetime.timezone.utc)
        return s.timestamp(), s.timestamp() + 3600


class GroupRoomsPlain(GroupCase):
    def test_01_room_exists_members_only_with_supporters_as_owners(self):
        sam, alice = self.connect("sam"), self.connect("alice")
        r = sam.iq(ROOM, "<query xmlns='%s'/>" % NS_INFO)
        features = {f.get("var") for f in r.iter(q("feature", NS_INFO))}
        self.assertIn("muc_membersonly", features)
        self.assertIn("muc_persistent", features)
        self.assertIn("muc_semianonymous", features)
        owners = sam.iq(ROOM, "<query xmlns='http://jabber.org/protocol/muc#admin'>"
                        "<item affiliation='owner'/></query>")
        self.assertEqual(sorted(i.get("jid") for i in owners.iter(
            q("item", "http://jabber.org/protocol/muc#admin"))), ["sam@localhost", "sue@localhost"])
        p = self.join(alice, "Alice")
        self.assertEqual(error_of(p)[1], "registration-required", show(p))

    def test_02_admission_by_request_next_meeting_and_link_window(self):
        sam, alice, bob = self.connect("sam"), self.connect("alice"), self.connect("bob")
        # alice asks to join; sam admits her through the request form.
        form = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>%s</value></field>"
                "<field var='muc#register_roomnick'><value>Alice</value></field></x>"
                % (NS_DATA, NS_MUC_REGISTER))
        r = alice.iq(ROOM, "<query xmlns='%s'>%s</query>" % (NS_REGISTER, form), "set")
        self.assertEqual(r.get("type"), "result", show(r))
        req = sam.expect(lambda e: is_message(e, ROOM) and e.find(q("x", NS_DATA)) is not None,
                         "membership request")
        self.assertEqual(values(req.find(q("x", NS_DATA)))["muc#jid"], ["alice@localhost"])
        sam.send("<message to='%s'><x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>%s"
                 "</value></field><field var='muc#jid'><value>alice@localhost</value></field>"
                 "<field var='muc#register_allow'><value>1</value></field></x></message>"
                 % (ROOM, NS_DATA, NS_MUC_REGISTER))
        alice.expect(lambda e: is_message(e, ROOM) and "member" in (body(e) or ""), "accepted")
        self.join(sam, "Sam")
        # alice joins in German: the next date, in German, no URL anywhere.
        p = self.join(alice, "Alice", lang="de")
        self.assertEqual(p.get("type"), None, show(p))
        nxt = alice.expect(lambda e: is_message(e, ROOM, "groupchat") and
                           "Nächstes Treffen" in (body(e) or ""), "next meeting (de)")
        self.assertIn("Evening group", body(nxt))
        self.assertIn("18:00", body(nxt))
        self.assertNotIn("meet.example.org", body(nxt))
        # disco: the group's schedule for members, not for others; never the URL.
        info = alice.iq(ROOM, "<query xmlns='%s'/>" % NS_INFO)
        forms = [values(x) for x in info.iter(q("x", NS_DATA))]
        group = [f for f in forms if f.get("FORM_TYPE") == [GROUP_FORM]]
        self.assertEqual(len(group), 1, show(info))
        start_utc, end_utc = self.meeting_utc()
        self.assertEqual(group[0]["group#next_start"],
                         [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_utc))])
        self.assertNotIn("meet.example.org", show(info))
        other = bob.iq(ROOM, "<query xmlns='%s'/>" % NS_INFO)
        self.assertNotIn(GROUP_FORM, show(other))
        self.assertEqual(self.link_messages(alice), [], "a link before the window")

        # 16 minutes before: still nothing.
        self.advance_to(start_utc - 16 * 60)
        self.assertEqual(self.link_messages(alice), [])
        # The window opens 15 minutes before: everyone present and admitted gets it once.
        self.advance_to(start_utc - 15 * 60 + 1)
        self.assertEqual(self.expect_link(alice), self.meeting_url)
        self.assertEqual(self.expect_link(sam), self.meeting_url)
        self.advance_to(start_utc - 10 * 60)
        self.assertEqual(self.link_messages(alice), [], "the link came twice")
        # bob (not a member) got nothing; the link is in no history or subject.
        self.assertEqual([e for e in bob.queue if "meet.example.org" in show(e)], [])
        sue = self.connect("sue")
        self.join(sue, "Sue")
        url = self.expect_link(sue)  # joining during the window brings it
        self.assertEqual(url, self.meeting_url)
        sue.sync()
        history = [e for e in sue.queue if is_message(e, ROOM) and
                   e.find(q("delay", "urn:xmpp:delay")) is not None]
        self.assertEqual([h for h in history if "meet.example.org" in show(h)], [])
        subject = [e for e in sue.queue if e.find(q("subject", "jabber:client")) is not None]
        self.assertEqual([s for s in subject if "meet.example.org" in show(s)], [])
        # After the end: a newcomer gets the next date, no link.
        self.advance_to(end_utc + 60)
        carol_owner = sam
        carol = self.connect("carol")
        self.admit(carol_owner, carol)
        self.join(carol, "Carol")
        carol.expect(lambda e: is_message(e, ROOM) and "Next meeting" in (body(e) or ""),
                     "next meeting (en)")
        self.assertEqual(self.link_messages(carol), [])


class GroupRoomsJitsi(GroupCase):
    link_toml = ('link = "jitsi"\njitsi_app_id = "haven-tests"\nsecret_file = "@SECRET@"\n')

    def test_personal_jwt_link(self):
        sam, alice = self.connect("sam"), self.connect("alice")
        self.admit(sam, alice)
        self.join(alice, 'Al "the" <Nick>')
        start_utc, end_utc = self.meeting_utc()
        self.advance_to(start_utc - 5 * 60)
        url = self.expect_link(alice)
        base, _, query = url.partition("?")
        self.assertEqual(base, self.meeting_url)
        token = urllib.parse.parse_qs(query)["jwt"][0]
        header_b64, payload_b64, sig_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        payload = json.loads(b64url_decode(payload_b64))
        self.assertEqual(header["alg"], "HS256")
        expected = hmac.new(JITSI_SECRET.encode(), (header_b64 + "." + payload_b64).encode(),
                            hashlib.sha256).digest()
        self.assertEqual(b64url_decode(sig_b64), expected, "JWT signature")
        self.assertEqual(payload["room"], "lobby-group")
        self.assertEqual(payload["iss"], "haven-tests")
        self.assertEqual(payload["context"]["user"]["name"], 'Al "the" <Nick>')
        self.assertEqual(payload["exp"], int(end_utc))
        self.assertEqual(payload["nbf"], int(start_utc) - 15 * 60)  # the window's start
        wrong = hmac.new(b"another secret", (header_b64 + "." + payload_b64).encode(),
                         hashlib.sha256).digest()
        self.assertNotEqual(b64url_decode(sig_b64), wrong)


class GroupRoomsBbb(GroupCase):
    link_toml = ('link = "bbb"\nbbb_api = "https://bbb.example.org/bigbluebutton/api"\n'
                 'bbb_checksum = "sha256"\nsecret_file = "@SECRET@"\n')

    def test_signed_join_url(self):
        sam, alice = self.connect("sam"), self.connect("alice")
        self.admit(sam, alice)
        self.join(alice, "Jürgen & Co")
        start_utc, _ = self.meeting_utc()
        self.advance_to(start_utc - 5 * 60)
        url = self.expect_link(alice)
        prefix = "https://bbb.example.org/bigbluebutton/api/join?"
        self.assertTrue(url.startswith(prefix), url)
        query, _, checksum = url[len(prefix):].rpartition("&checksum=")
        self.assertEqual(checksum, hashlib.sha256(("join" + query + BBB_SECRET).encode())
                         .hexdigest())
        params = urllib.parse.parse_qs(query)
        self.assertEqual(params["fullName"], ["Jürgen & Co"])
        self.assertEqual(params["meetingID"], ["lobby"])
        self.assertEqual(params["role"], ["VIEWER"])


class GroupMeetingsByHavenctl(GroupCase):
    def test_add_list_remove_and_dst(self):
        # A weekly meeting on Tuesdays 18:00 Berlin from the week before the spring change.
        r = self.srv.run_ctl(["group", "meeting", "add", "lobby", "Spring group",
                              "2027-03-23T18:00", "90", "weekly", "https://meet.example.org/x"])
        self.assertEqual(r.exit_code, 0, r.err)
        meeting_id = r.out.split()[1]
        listing = self.srv.run_ctl(["group", "meeting", "list", "lobby"])
        self.assertEqual(listing.exit_code, 0, listing.err)
        line = [l for l in listing.out.splitlines() if l.startswith(meeting_id)]
        self.assertEqual(len(line), 1, listing.out)
        self.assertIn("next: 2027-03-23T17:00:00Z", line[0])  # CET: UTC+1
        self.advance_to(datetime.datetime(2027, 3, 24, tzinfo=datetime.timezone.utc).timestamp())
        listing = self.srv.run_ctl(["group", "meeting", "list", "lobby"])
        line = [l for l in listing.out.splitlines() if l.startswith(meeting_id)]
        self.assertIn("next: 2027-03-30T16:00:00Z", line[0])  # CEST: UTC+2, same 18:00
        bad = self.srv.run_ctl(["group", "meeting", "add", "lobby", "x", "2027-02-30T18:00",
                                "60", "weekly", "https://meet.example.org/x"])
        self.assertNotEqual(bad.exit_code, 0)
        self.assertIn("start", bad.err)
        self.assertNotEqual(self.srv.run_ctl(["group", "meeting", "list", "nope"]).exit_code, 0)
        r = self.srv.run_ctl(["group", "meeting", "remove", "lobby", meeting_id])
        self.assertEqual(r.exit_code, 0, r.err)
        listing = self.srv.run_ctl(["group", "meeting", "list", "lobby"])
        self.assertNotIn(meeting_id, listing.out)
        # The config's own meeting cannot be removed here.
        self.assertNotEqual(self.srv.run_ctl(["group", "meeting", "remove", "lobby", "c1"])
                            .exit_code, 0)


class GroupCommands(GroupCase):
    def execute(self, c, node, fields=None):
        return c.command(ROOM, node, fields)

    def note(self, r):
        return command_note(r)

    def test_room_commands_for_owners_only(self):
        sam, alice = self.connect("sam"), self.connect("alice")
        items = sam.iq(ROOM, "<query xmlns='http://jabber.org/protocol/disco#items' node='%s'/>"
                       % NS_COMMANDS)
        nodes = {i.get("node") for i in items.iter(q("item",
                                                      "http://jabber.org/protocol/disco#items"))}
        self.assertTrue({"urn:haven:group:meeting-add", "urn:haven:group:meetings",
                         "urn:haven:group:admit"} <= nodes, show(items))
        none = alice.iq(ROOM, "<query xmlns='http://jabber.org/protocol/disco#items' node='%s'/>"
                        % NS_COMMANDS)
        self.assertEqual(list(none.iter(q("item", "http://jabber.org/protocol/disco#items"))), [])
        denied = self.execute(alice, "urn:haven:group:meeting-add")
        self.assertEqual(error_of(denied)[1], "item-not-found", show(denied))
        r = self.execute(sam, "urn:haven:group:meeting-add",
                         {"title": "Extra", "start": "2030-01-08T19:30", "duration": "45",
                          "repeat": "none", "url": "https://meet.example.org/extra"})
        self.assertEqual(r.get("type"), "result", show(r))
        self.assertIn("added", self.note(r))
        listing = self.note(self.execute(sam, "urn:haven:group:meetings", {}))
        self.assertIn("Extra", listing)
        self.assertIn("2030-01-08T18:30:00Z", listing)  # 19:30 CET
        bad = self.execute(sam, "urn:haven:group:meeting-add",
                           {"title": "Bad", "start": "soon", "duration": "45",
                            "repeat": "none", "url": "https://meet.example.org/x"})
        self.assertIn("start", self.note(bad))

    def test_admit_needs_a_conversation(self):
        sam, bob = self.connect("sam"), self.connect("bob")
        r = self.execute(sam, "urn:haven:group:admit", {"jid": "bob@localhost"})
        self.assertIn("no conversation", self.note(r))
        self.assertEqual(error_of(self.join(bob, "Bob"))[1], "registration-required")
        # sam writes to bob: a grant; now sam can admit him.
        sam.send("<message to='bob@localhost' type='chat'><body>Hello Bob</body></message>")
        bob.expect(lambda e: is_message(e, "sam@localhost/" + sam.jid.split("/")[1]) or
                   (kind(e) == "message" and (body(e) or "") == "Hello Bob"), "sam's message")
        r = self.execute(sam, "urn:haven:group:admit", {"jid": "bob@localhost"})
        self.assertIn("now a member", self.note(r))
        p = self.join(bob, "Bob")
        self.assertIsNone(p.get("type"), show(p))


if __name__ == "__main__":
    unittest.main()
