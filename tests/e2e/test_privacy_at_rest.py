#!/usr/bin/env python3
"""E2E: the database holds no social graph in the clear (issue 11, "privacy at rest").

A real havend with the peer-support model on, a supporter, a second supporter and an admin, and
one functional address. Over real sockets the test produces every kind of personal record the
server stores: a conversation grant (with its roster items on both sides), a functional-address
inquiry that a staff member claims (and that is queued for an offline staff member), a roster
item set by hand, a pending inbound subscription request with a status text, a block list, a
vCard and an offline message. Then, with havend stopped cleanly:

1. the raw bytes of haven.sqlite (and -wal/-journal, if any) contain none of the distinctive
   texts (names, groups, status, vCard, bodies, blocked JID, address name);
2. read with sqlite3, no table but accounts/roster_version/schema_version holds any account's
   localpart (or the functional address's) in any TEXT/BLOB cell, except the owner column `user`
   of roster/kv/offline;
3. restarted on the same data_dir, everything is still there and works, so the sealed rows open
   with the key: roster names and groups, the offline message, the pending request, vCard, block
   list, the grant (member and supporter chat) and the inquiry (it still goes to its claimer).

A second test deletes a member with havenctl while havend is stopped (the database path) and
checks that its grant and its inquiry are gone: `havenctl grant list`, the row counts, and the
staff's inquiry list (the close command's form) after a restart.

Positive controls keep the scans honest: the account names are found in the raw file and in
`accounts`, the scanner reports them there, and the scanned tables hold rows.

Run by ctest (e2e.py.test_privacy_at_rest); by hand: HAVEND=build/havend
HAVENCTL=build/havenctl /usr/bin/python3 tests/e2e/test_privacy_at_rest.py -v
"""

import itertools
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import unittest
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import RawStream, RawToml, TestServer  # noqa: E402

PASSWORD = "correct horse battery"
DOMAIN = "localhost"

# Account names: distinctive, none a substring of another.
MEMBER = "memberneedleone"
MEMBER2 = "memberneedletwo"
SUPPORTER = "supneedlesam"
SUPPORTER2 = "supneedlekim"  # staff of the functional address, no grant
ADMIN = "adminneedleada"  # staff of the functional address, offline while the inquiry comes in
FA_LOCAL = "teamneedlebox"
FA_JID = "%s@%s" % (FA_LOCAL, DOMAIN)

NEEDLES = {
    "roster_name": "needle-roster-name-1",
    "roster_group": "needle-roster-group-1",
    "grant_group": "needle-grant-group-1",  # [peersupport] roster_group
    "sub_status": "needle-sub-status-1",
    "vcard_nick": "needle-vcard-nick-1",
    "vcard_desc": "needle-vcard-desc-1",
    "blocked": "needle-blocked-1",  # the localpart of a blocked remote JID
    "offline_body": "needle-offline-body-1",
    "inquiry_body": "needle-inquiry-body-1",
    "claim_body": "needle-claim-reply-1",
    "grant_body": "needle-grant-opening-1",
    "fa_name": "needle-fa-name-1",
}
BLOCKED_JID = NEEDLES["blocked"] + "@example.net"

# Not scanned: plaintext by design (accounts is needed for login; the others hold no contacts).
PLAIN_TABLES = {"accounts", "roster_version", "schema_version"}
# Tables whose `user` column names the row's owner (that one column may hold a localpart).
OWNED_TABLES = {"roster", "kv", "offline"}

_ids = itertools.count(1)


def jid(local: str) -> str:
    return "%s@%s" % (local, DOMAIN)


def fa_config(staff) -> RawToml:
    return RawToml('[{jid = "%s", name = "%s", staff = [%s]}]'
                   % (FA_JID, NEEDLES["fa_name"], ", ".join('"%s"' % jid(s) for s in staff)))


def stanza_with(kind: str, *parts: str, tag=()) -> str:
    """A regex for one whole <kind>…</kind> stanza whose opening tag matches every regex in tag
    (any order) and whose text then contains every part (regexes), in order. The tempered dots
    keep a match inside one stanza."""
    inner = r"(?:(?!</%s>|<%s\b).)*?" % (kind, kind)
    head = "".join(r"(?=[^>]*%s)" % t for t in tag)
    return r"<%s\b%s%s%s</%s>" % (kind, head, inner, "".join(p + inner for p in parts), kind)


def attr(name: str, value: str) -> str:
    return r"""\b%s=['"]%s['"]""" % (name, re.escape(value))


def from_account(bare: str) -> str:
    """from= the bare JID or any of its full JIDs."""
    return r"""\bfrom=['"]%s(?:/[^'"]*)?['"]""" % re.escape(bare)


class Client:
    """A logged-in raw stream with its own buffer: expect() removes only the matched stanza,
    so waiting for one thing never throws away another that arrived earlier."""

    def __init__(self, srv: TestServer, local: str, resource: str = "r",
                 roster: bool = True, presence: bool = True):
        self.srv = srv
        self.local = local
        self.rs = RawStream(srv.direct_tls_port, direct_tls=True, timeout=10)
        self.buf = ""
        self.full_jid = self.rs.login(local, PASSWORD, resource=resource, timeout=10)
        if self.full_jid is None:
            self.rs.close()
            raise AssertionError("login of %s failed; log tail:\n%s" % (local, srv.log_tail()))
        self.roster = ""
        if roster:
            # An interested resource (RFC 6121 §2.1.6): pushes come only after a roster get.
            self.roster = self.iq("<query xmlns='jabber:iq:roster'/>")
        if presence:
            self.send("<presence/>")

    def close(self) -> None:
        self.rs.close()

    def send(self, xml: str) -> None:
        if not self.rs.send(xml):
            raise AssertionError("%s: the server closed the stream" % self.local)

    def expect(self, pattern: str, timeout: float = 5.0) -> Optional[str]:
        """The first stanza text matching pattern (DOTALL), removed from the buffer; None after
        timeout."""
        rx = re.compile(pattern, re.DOTALL)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[:m.start()] + self.buf[m.end():]
                return m.group(0)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            more = self.rs.read_any(timeout=left)
            if more is None and self.rs.closed:
                return None
            self.buf += more or ""

    def must(self, pattern: str, what: str, timeout: float = 5.0) -> str:
        got = self.expect(pattern, timeout)
        if got is None:
            raise AssertionError("%s: no %s within %.1f s\nreceived, unmatched:\n%s\nlog tail:\n%s"
                                 % (self.local, what, timeout, self.buf[-3000:],
                                    self.srv.log_tail()))
        return got

    def iq(self, payload: str, type_: str = "get", to: Optional[str] = None,
           ok: bool = True) -> str:
        """Sends an IQ and returns the whole answer (result or error)."""
        iq_id = "q%d" % next(_ids)
        self.send("<iq type='%s' id='%s'%s>%s</iq>"
                  % (type_, iq_id, " to='%s'" % to if to else "", payload))
        answer = self.must(r"<iq\b[^>]*%s[^>]*?(?:/>|>(?:(?!</iq>).)*?</iq>)" % attr("id", iq_id),
                           "answer to IQ %s (%s)" % (iq_id, payload[:60]))
        if ok and not re.search(attr("type", "result"), answer.split(">", 1)[0]):
            raise AssertionError("%s: IQ %s failed: %s" % (self.local, payload[:80], answer))
        return answer

    def say(self, to: str, body: str) -> None:
        self.send("<message to='%s' type='chat' id='m%d'><body>%s</body></message>"
                  % (to, next(_ids), body))

    def sync(self) -> None:
        """Everything this client sent before has been processed by the server."""
        self.iq("<ping xmlns='urn:xmpp:ping'/>", to=DOMAIN)

    def leave(self) -> None:
        """Closes the stream cleanly and waits until the server closed its side."""
        self.rs.send("<presence type='unavailable'/></stream:stream>")
        self.rs.wait_closed(5)
        self.rs.close()


def roster_item(roster_xml: str, contact: str) -> Optional[str]:
    """The <item/> for contact in a roster result or push (text), or None."""
    m = re.search(r"<item\b[^>]*%s[^>]*?(?:/>|>(?:(?!</item>).)*?</item>)" % attr("jid", contact),
                  roster_xml, re.DOTALL)
    return m.group(0) if m else None


def read_db_files(data_dir: str) -> dict:
    """Raw bytes of haven.sqlite and its companions (-wal, -journal, -shm) that exist."""
    out = {}
    for name in sorted(os.listdir(data_dir)):
        if name.startswith("haven.sqlite"):
            with open(os.path.join(data_dir, name), "rb") as f:
                out[name] = f.read()
    return out


def copy_db(data_dir: str, dest: str) -> str:
    """A copy of the database (with its WAL) to inspect, so data_dir stays untouched."""
    for suffix in ("", "-wal"):
        src = os.path.join(data_dir, "haven.sqlite" + suffix)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(dest, "haven.sqlite" + suffix))
    return os.path.join(dest, "haven.sqlite")


def cell_bytes(value) -> Optional[bytes]:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return None  # INTEGER, REAL, NULL


def scan_for_names(db_path: str, names, tables=None) -> list:
    """(table, column, rowid-ish, name) for every TEXT/BLOB cell holding one of names
    (case-insensitively), skipping the owner column `user` of OWNED_TABLES. tables: the tables
    to scan (default: every table but PLAIN_TABLES)."""
    hits = []
    con = sqlite3.connect(db_path)
    try:
        all_tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in all_tables if tables is None else tables:
            if tables is None and table in PLAIN_TABLES:
                continue
            cur = con.execute('SELECT * FROM "%s"' % table.replace('"', '""'))
            columns = [d[0] for d in cur.description]
            for n, row in enumerate(cur):
                for column, value in zip(columns, row):
                    if table in OWNED_TABLES and column == "user":
                        continue
                    data = cell_bytes(value)
                    if data is None:
                        continue
                    low = data.lower()
                    for name in names:
                        if name.lower().encode("utf-8") in low:
                            hits.append((table, column, n, name))
    finally:
        con.close()
    return hits


def table_info(db_path: str) -> dict:
    """{table: ([columns], row count)} for every table."""
    con = sqlite3.connect(db_path)
    try:
        out = {}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cols = [r[1] for r in con.execute('PRAGMA table_info("%s")' % table)]
            count = con.execute('SELECT COUNT(*) FROM "%s"' % table).fetchone()[0]
            out[table] = (cols, count)
        return out
    finally:
        con.close()


def owner_counts(db_path: str, table: str) -> dict:
    con = sqlite3.connect(db_path)
    try:
        return dict(con.execute('SELECT user, COUNT(*) FROM "%s" GROUP BY user' % table))
    finally:
        con.close()


class PrivacyAtRest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="haven-privacy-")
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def started_server(self, fa_staff, members):
        """A running havend with the given members, sam and kim as supporters and the admin."""
        srv = self.make_server(fa_staff)
        for local in members:
            srv.add_user(local, PASSWORD)
        srv.add_user(SUPPORTER, PASSWORD, role="supporter")
        srv.add_user(SUPPORTER2, PASSWORD, role="supporter")
        srv.add_user(ADMIN, PASSWORD, role="admin")
        srv.start()
        return srv

    def login(self, srv, local, **kw) -> Client:
        c = Client(srv, local, **kw)
        self.clients.append(c)
        return c

    def make_server(self, staff_of_address) -> TestServer:
        srv = TestServer({
            "peersupport.enabled": True,
            "peersupport.supporters": [jid(SUPPORTER), jid(SUPPORTER2)],
            "peersupport.admins": [jid(ADMIN)],
            "peersupport.roster_group": NEEDLES["grant_group"],
            "functional_addresses.addresses": fa_config(staff_of_address),
        })
        self.addCleanup(srv.close)
        return srv

    # ------------------------------------------------------------------------------------------

    def test_no_social_graph_in_the_file_and_all_of_it_survives_a_restart(self):
        srv = self.started_server([SUPPORTER2, ADMIN], (MEMBER, MEMBER2))

        member = self.login(srv, MEMBER)
        sam = self.login(srv, SUPPORTER)
        kim = self.login(srv, SUPPORTER2)

        # The member's own data: vCard, block list, a hand-made roster item (of another member,
        # which a member may add, README §6.2).
        member.iq("<vCard xmlns='vcard-temp'><NICKNAME>%s</NICKNAME><DESC>%s</DESC></vCard>"
                  % (NEEDLES["vcard_nick"], NEEDLES["vcard_desc"]), "set")
        member.iq("<block xmlns='urn:xmpp:blocking'><item jid='%s'/><item jid='%s'/></block>"
                  % (BLOCKED_JID, jid(MEMBER2)), "set")
        member.iq("<query xmlns='jabber:iq:roster'><item jid='%s' name='%s'><group>%s</group>"
                  "</item></query>" % (jid(MEMBER2), NEEDLES["roster_name"],
                                       NEEDLES["roster_group"]), "set")

        # A grant: the supporter writes first; roster items with the configured group on both
        # sides, then the member may answer.
        sam.say(jid(MEMBER), NEEDLES["grant_body"])
        push = member.must(stanza_with("iq", r"jabber:iq:roster", attr("jid", jid(SUPPORTER)),
                                       re.escape(NEEDLES["grant_group"])),
                           "roster push for the grant")
        self.assertRegex(push, attr("subscription", "both"))
        member.must(stanza_with("message", re.escape(NEEDLES["grant_body"])), "opening message")
        sam.must(stanza_with("iq", r"jabber:iq:roster", attr("jid", jid(MEMBER)),
                             re.escape(NEEDLES["grant_group"])), "the supporter's roster push")
        member.say(jid(SUPPORTER), "answer from the member")
        sam.must(stanza_with("message", "answer from the member"), "the member's answer")

        # A pending inbound subscription request with a status text, never answered.
        kim.send("<presence to='%s' type='subscribe'><status>%s</status></presence>"
                 % (jid(MEMBER), NEEDLES["sub_status"]))
        member.must(stanza_with("presence", attr("type", "subscribe"),
                                re.escape(NEEDLES["sub_status"])), "the subscription request")

        # An inquiry: the member writes to the address; kim (online) claims it by answering; the
        # admin is offline, so the inquiry is queued for them.
        member.say(FA_JID, NEEDLES["inquiry_body"])
        copy = kim.must(stanza_with("message", re.escape(NEEDLES["inquiry_body"])),
                        "the inquiry copy")
        pseudo = re.search(r"""\bfrom=['"]([^'"]+)['"]""", copy).group(1)
        self.assertTrue(pseudo.startswith(FA_LOCAL + "+"), copy)
        kim.say(pseudo, NEEDLES["claim_body"])
        member.must(stanza_with("message", attr("from", FA_JID), re.escape(NEEDLES["claim_body"])),
                    "the claimer's reply")

        # An offline message: the member leaves, the supporter writes.
        member.leave()
        sam.must(r"<presence\b[^>]*%s[^>]*%s|<presence\b[^>]*%s[^>]*%s"
                 % (attr("from", member.full_jid), attr("type", "unavailable"),
                    attr("type", "unavailable"), attr("from", member.full_jid)),
                 "the member's unavailable presence")
        sam.say(jid(MEMBER), NEEDLES["offline_body"])
        sam.sync()
        kim.sync()
        for c in (sam, kim):
            c.leave()
        self.assertEqual(srv.stop(), 0, srv.log_tail())

        # 1. Raw bytes: no needle anywhere in the database files.
        files = read_db_files(srv.data_dir)
        self.assertIn("haven.sqlite", files)
        raw = b"".join(files.values())
        # Positive control: the plaintext accounts table is found the same way.
        self.assertTrue(MEMBER.encode() in raw, "the raw scan does not see the accounts table")
        leaks = [(name, what, needle) for what, needle in sorted(NEEDLES.items())
                 for name, data in files.items() if needle.encode() in data]
        self.assertEqual(leaks, [], "texts in the clear (file, what, text)")

        # 2. sqlite3: no localpart (nor the address) outside the plaintext tables and the owner
        # column.
        db = copy_db(srv.data_dir, self.tmp)
        info = table_info(db)
        self.assertEqual(info["roster"][0], ["user", "contact_h", "item"])
        self.assertEqual(info["kv"][0], ["user", "store", "key_h", "value"])
        self.assertEqual(info["peersupport_grants"][0],
                         ["pair_h", "parties", "created", "last_activity"])
        self.assertEqual(info["fa_inquiries"][0],
                         ["token", "thread_h", "record", "state", "created", "updated"])
        # The scans below are not vacuous: the records exist.
        roster_owners = owner_counts(db, "roster")
        self.assertGreaterEqual(roster_owners.get(MEMBER, 0), 3, roster_owners)  # m2, sam, kim
        self.assertGreaterEqual(roster_owners.get(SUPPORTER, 0), 1, roster_owners)
        self.assertGreaterEqual(roster_owners.get(SUPPORTER2, 0), 1, roster_owners)  # ask-out
        self.assertGreaterEqual(owner_counts(db, "kv").get(MEMBER, 0), 3)  # vcard, block, hidden
        offline = owner_counts(db, "offline")
        self.assertGreaterEqual(offline.get(MEMBER, 0), 1, offline)
        self.assertGreaterEqual(offline.get(ADMIN, 0), 1, offline)  # the queued inquiry
        self.assertEqual(info["peersupport_grants"][1], 1)
        self.assertEqual(info["fa_inquiries"][1], 1)

        names = [MEMBER, MEMBER2, SUPPORTER, SUPPORTER2, ADMIN, FA_LOCAL]
        # Positive control: the scanner finds the names where they are in the clear.
        found = {h[3] for h in scan_for_names(db, names, tables=["accounts"])}
        self.assertEqual(found, set(names) - {FA_LOCAL})
        hits = scan_for_names(db, names)
        self.assertEqual(hits, [], "account names in the clear (table, column, row, name)")

        # 3. The same data_dir, restarted: every sealed record opens and works.
        srv.start()
        member = self.login(srv, MEMBER, presence=False)
        item = roster_item(member.roster, jid(MEMBER2))
        self.assertIsNotNone(item, member.roster)
        self.assertRegex(item, attr("name", NEEDLES["roster_name"]))
        self.assertIn("<group>%s</group>" % NEEDLES["roster_group"], item)
        item = roster_item(member.roster, jid(SUPPORTER))
        self.assertIsNotNone(item, member.roster)
        self.assertRegex(item, attr("subscription", "both"))
        self.assertIn("<group>%s</group>" % NEEDLES["grant_group"], item)
        self.assertIsNone(roster_item(member.roster, jid(SUPPORTER2)),
                          "a pending request is no roster item")
        member.send("<presence/>")
        member.must(stanza_with("message", from_account(jid(SUPPORTER)),
                                re.escape(NEEDLES["offline_body"])), "the offline message")
        member.must(stanza_with("presence", re.escape(NEEDLES["sub_status"]),
                                tag=(from_account(jid(SUPPORTER2)), attr("type", "subscribe"))),
                    "the pending subscription request, again at login")
        vcard = member.iq("<vCard xmlns='vcard-temp'/>")
        self.assertIn(NEEDLES["vcard_nick"], vcard)
        self.assertIn(NEEDLES["vcard_desc"], vcard)
        blocklist = member.iq("<blocklist xmlns='urn:xmpp:blocking'/>")
        self.assertRegex(blocklist, attr("jid", BLOCKED_JID))
        self.assertRegex(blocklist, attr("jid", jid(MEMBER2)))

        # The grant: the supporter's roster still has the member, and the member may answer.
        sam = self.login(srv, SUPPORTER)
        item = roster_item(sam.roster, jid(MEMBER))
        self.assertIsNotNone(item, sam.roster)
        self.assertRegex(item, attr("subscription", "both"))
        self.assertIn("<group>%s</group>" % NEEDLES["grant_group"], item)
        member.say(jid(SUPPORTER), "still allowed after the restart")
        sam.must(stanza_with("message", "still allowed after the restart"),
                 "the member's message under the restored grant")
        self.assertIsNone(member.expect(stanza_with("message", attr("type", "error")), 0.3),
                          "the member was refused")

        # The inquiry: still claimed by kim, so the member's next message goes to kim under
        # the same inquiry JID; the offline admin got the queued inquiry from storage.
        kim = self.login(srv, SUPPORTER2)
        member.say(FA_JID, "after the restart, to the team")
        kim.must(stanza_with("message", attr("from", pseudo), "after the restart, to the team"),
                 "the follow-up to the claimer")
        ada = self.login(srv, ADMIN)
        ada.must(stanza_with("message", attr("from", pseudo), re.escape(NEEDLES["inquiry_body"])),
                 "the inquiry queued for the offline admin")
        self.assertIsNone(ada.expect(stanza_with("message", "after the restart, to the team"),
                                     0.3), "a claimed inquiry's follow-up reached other staff")

    # ------------------------------------------------------------------------------------------

    def test_havenctl_delete_without_server_removes_grant_and_inquiry(self):
        gone, kept = "memberneedledel", "memberneedlekeep"
        srv = self.started_server([SUPPORTER2], (gone, kept))
        sam = self.login(srv, SUPPORTER)
        kim = self.login(srv, SUPPORTER2)
        pseudo = {}
        for local in (gone, kept):
            m = self.login(srv, local)
            sam.say(jid(local), "hello " + local)
            m.must(stanza_with("message", "hello " + local), "the opening message")
            m.say(FA_JID, "inquiry of " + local)
            copy = kim.must(stanza_with("message", "inquiry of " + local), "the inquiry copy")
            pseudo[local] = re.search(r"""\bfrom=['"]([^'"]+)['"]""", copy).group(1)
            m.leave()
        self.assertNotEqual(pseudo[gone], pseudo[kept])
        form = kim.iq("<command xmlns='http://jabber.org/protocol/commands' "
                      "node='urn:haven:functional-addresses:close' action='execute'/>",
                      "set", to=DOMAIN)
        self.assertIn(pseudo[gone], form)  # positive control for the check after the delete
        self.assertIn(pseudo[kept], form)
        for c in (sam, kim):
            c.leave()
        self.assertEqual(srv.stop(), 0, srv.log_tail())

        r = srv.run_ctl(["grant", "list"])
        self.assertEqual(r.exit_code, 0, r.err)
        self.assertIn("%s -> %s" % (jid(SUPPORTER), jid(gone)), r.out)
        self.assertIn("%s -> %s" % (jid(SUPPORTER), jid(kept)), r.out)
        before = table_info(copy_db(srv.data_dir, self.tmp))
        self.assertEqual(before["peersupport_grants"][1], 2)
        self.assertEqual(before["fa_inquiries"][1], 2)

        # The database path: no server runs.
        self.assertFalse(srv.running())
        r = srv.run_ctl(["user", "delete", jid(gone)])
        self.assertEqual(r.exit_code, 0, r.err)
        self.assertIn("deleted %s" % jid(gone), r.out)

        r = srv.run_ctl(["grant", "list"])
        self.assertEqual(r.exit_code, 0, r.err)
        self.assertNotIn(gone, r.out)
        self.assertIn("%s -> %s" % (jid(SUPPORTER), jid(kept)), r.out)
        after_dir = tempfile.mkdtemp(dir=self.tmp)
        after = table_info(copy_db(srv.data_dir, after_dir))
        self.assertEqual(after["peersupport_grants"][1], 1)
        self.assertEqual(after["fa_inquiries"][1], 1)
        self.assertNotIn(gone, owner_counts(os.path.join(after_dir, "haven.sqlite"), "roster"))

        # Started again: the staff's list of inquiries no longer has it; the other one remains.
        # The grant's item in the supporter's roster went with the grant.
        srv.start()
        sam = self.login(srv, SUPPORTER)
        roster = sam.iq("<query xmlns='jabber:iq:roster'/>")
        self.assertIsNone(roster_item(roster, jid(gone)), roster)
        self.assertIsNotNone(roster_item(roster, jid(kept)), roster)
        sam.leave()
        kim = self.login(srv, SUPPORTER2)
        form = kim.iq("<command xmlns='http://jabber.org/protocol/commands' "
                      "node='urn:haven:functional-addresses:close' action='execute'/>",
                      "set", to=DOMAIN)
        self.assertNotIn(pseudo[gone], form)
        self.assertIn(pseudo[kept], form)
        r = srv.run_ctl(["grant", "list"])  # through the control socket now
        self.assertEqual(r.exit_code, 0, r.err)
        self.assertNotIn(gone, r.out)
        self.assertIn(jid(kept), r.out)

    def test_deleting_a_member_on_a_running_server_ends_its_grants_at_once(self):
        """havenctl user delete over the control socket: before havenctl returns, the supporter
        got the roster push removing the member (the item the grant had created) and the
        member's unavailable presence; after a restart the item is still gone."""
        gone = "memberneedlerun"
        srv = self.started_server([SUPPORTER2], (gone,))
        sam = self.login(srv, SUPPORTER)
        sam.iq("<query xmlns='jabber:iq:roster'/>")  # roster pushes follow a roster get
        member = self.login(srv, gone)
        sam.say(jid(gone), "hello")
        member.must(stanza_with("message", "hello"), "the opening message")
        sam.must(r"<iq\b[^>]*%s(?:(?!</iq>).)*%s" % (attr("type", "set"), attr("jid", jid(gone))),
                 "the roster push of the new grant")
        r = srv.run_ctl(["user", "delete", jid(gone)])
        self.assertEqual(r.exit_code, 0, r.err)
        # Already there when havenctl returned: a short timeout is enough.
        sam.must(r"<item\b[^>]*%s[^>]*%s|<item\b[^>]*%s[^>]*%s"
                 % (attr("jid", jid(gone)), attr("subscription", "remove"),
                    attr("subscription", "remove"), attr("jid", jid(gone))),
                 "the roster push removing the deleted member", timeout=2.0)
        roster = sam.iq("<query xmlns='jabber:iq:roster'/>")
        self.assertIsNone(roster_item(roster, jid(gone)), roster)
        r = srv.run_ctl(["grant", "list"])
        self.assertEqual(r.exit_code, 0, r.err)
        self.assertNotIn(gone, r.out)
        sam.leave()
        self.assertEqual(srv.stop(), 0, srv.log_tail())
        srv.start()
        sam = self.login(srv, SUPPORTER)
        roster = sam.iq("<query xmlns='jabber:iq:roster'/>")
        self.assertIsNone(roster_item(roster, jid(gone)), roster)


if __name__ == "__main__":
    unittest.main()
