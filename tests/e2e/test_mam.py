#!/usr/bin/env python3
"""E2E: XEP-0313 message archive (module `archive`) with XEP-0059 paging, XEP-0359 stanza ids
and XEP-0441 preferences, and the archive as a policy (retention, the peer-support rule for
conversations with members), over real sockets against a real havend.

Time moves with `havenctl clock advance` ([server] clock_control), never by sleeping.

Run by ctest (e2e.py.test_mam); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_mam.py -v
"""

import os
import sqlite3
import sys
import time
import unittest
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from muc_testlib import (NS_INFO, ServerCase, body, error_of, is_message,  # noqa: E402
                         kind, q, show, utc_stamp)

NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_SID = "urn:xmpp:sid:0"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_CLIENT = "jabber:client"


def form(fields: dict) -> str:
    inner = "<field var='FORM_TYPE' type='hidden'><value>%s</value></field>" % NS_MAM
    for k, v in fields.items():
        values = "".join("<value>%s</value>" % escape(x) for x in (v if isinstance(v, list)
                                                                    else [v]))
        inner += "<field var=%s>%s</field>" % (quoteattr(k), values)
    return "<x xmlns='jabber:x:data' type='submit'>%s</x>" % inner


class Result:
    def __init__(self, iq, messages):
        self.iq = iq
        self.messages = messages  # the forwarded originals, in order
        fin = iq.find(q("fin", NS_MAM))
        self.complete = fin is not None and fin.get("complete") in ("true", "1")
        s = fin.find(q("set", NS_RSM)) if fin is not None else None
        self.first = s.findtext(q("first", NS_RSM)) if s is not None else None
        self.last = s.findtext(q("last", NS_RSM)) if s is not None else None
        self.ids = [m.get("archive_id") for m in messages]

    def bodies(self):
        return [body(m) for m in self.messages]


class MamCase(ServerCase):
    users = ("alice", "bob", "carol")
    base_config = {"server.clock_control": True}
    seq = 0

    def chat(self, sender, to_client, text, extra=""):
        sender.send("<message type='chat' to=%s><body>%s</body>%s</message>"
                    % (quoteattr(to_client.jid), escape(text), extra))
        return to_client.expect(lambda e: is_message(e) and body(e) == text, "message " + text)

    def query(self, c, fields=None, rsm="", to=None):
        type(self).seq += 1
        qid = "q%d" % type(self).seq
        payload = "<query xmlns='%s' queryid='%s'>%s%s</query>" % (
            NS_MAM, qid, form(fields) if fields else "",
            "<set xmlns='%s'>%s</set>" % (NS_RSM, rsm) if rsm else "")
        r = c.iq(to or c.bare, payload, "set")
        if r.get("type") != "result":
            return r
        messages = []
        for el in [e for e in c.queue if kind(e) == "message"]:
            res = el.find(q("result", NS_MAM))
            if res is None or res.get("queryid") != qid:
                continue
            c.queue.remove(el)
            fwd = res.find(q("forwarded", NS_FORWARD))
            original = fwd.find(q("message", NS_CLIENT))
            original.set("archive_id", res.get("id"))
            original.set("stamp", fwd.find(q("delay", NS_DELAY)).get("stamp"))
            self.assertEqual(el.get("from"), c.bare, show(el))
            messages.append(original)
        return Result(r, messages)

    def advance(self, seconds):
        r = self.srv.run_ctl(["clock", "advance", str(seconds)])
        self.assertEqual(r.exit_code, 0, r.err)


class Archive(MamCase):
    def test_feature_on_the_account(self):
        a = self.client("alice")
        r = a.iq(a.bare, "<query xmlns='%s'/>" % NS_INFO)
        features = [f.get("var") for f in r.iter(q("feature", NS_INFO))]
        self.assertIn(NS_MAM, features)
        self.assertIn(NS_SID, features)

    def test_received_messages_in_order_with_the_ids_the_client_saw(self):
        a, b = self.client("alice"), self.client("bob")
        start = utc_stamp(time.time() - 5)
        seen = [self.chat(b, a, "m%d" % i) for i in range(3)]
        ids = []
        for m in seen:
            sid = m.find(q("stanza-id", NS_SID))
            self.assertIsNotNone(sid, show(m))
            self.assertEqual(sid.get("by"), "alice@localhost")
            ids.append(sid.get("id"))
        r = self.query(a, {"with": "bob@localhost", "start": start})
        self.assertIsInstance(r, Result)
        self.assertEqual(r.bodies()[-3:], ["m0", "m1", "m2"])
        self.assertEqual(r.ids[-3:], ids)
        self.assertTrue(r.complete)
        self.assertEqual(r.last, ids[-1])
        self.assertTrue(all(m.get("from", "").startswith("bob@localhost") for m in r.messages))
        # The sender's archive holds its side (with = the recipient).
        rb = self.query(b, {"with": "alice@localhost", "start": start})
        self.assertEqual(rb.bodies()[-3:], ["m0", "m1", "m2"])

    def test_paging_forward_and_backward(self):
        a, c = self.client("alice", "pager"), self.client("carol")
        for i in range(5):
            self.chat(c, a, "p%d" % i)
        page1 = self.query(a, {"with": "carol@localhost"}, "<max>2</max>")
        self.assertEqual(page1.bodies(), ["p0", "p1"])
        self.assertFalse(page1.complete)
        page2 = self.query(a, {"with": "carol@localhost"},
                           "<max>2</max><after>%s</after>" % page1.last)
        self.assertEqual(page2.bodies(), ["p2", "p3"])
        page3 = self.query(a, {"with": "carol@localhost"},
                           "<max>2</max><after>%s</after>" % page2.last)
        self.assertEqual(page3.bodies(), ["p4"])
        self.assertTrue(page3.complete)
        newest = self.query(a, {"with": "carol@localhost"}, "<max>2</max><before/>")
        self.assertEqual(newest.bodies(), ["p3", "p4"])
        older = self.query(a, {"with": "carol@localhost"},
                           "<max>2</max><before>%s</before>" % newest.first)
        self.assertEqual(older.bodies(), ["p1", "p2"])
        by_ids = self.query(a, {"ids": [page1.first, page3.last]})
        self.assertEqual(by_ids.bodies(), ["p0", "p4"])
        after_id = self.query(a, {"with": "carol@localhost", "after-id": page2.last})
        self.assertEqual(after_id.bodies(), ["p4"])

    def test_unknown_id_is_item_not_found_and_bad_input_bad_request(self):
        a = self.client("alice", "errors")
        r = self.query(a, rsm="<after>no-such-id</after>")
        self.assertEqual(error_of(r)[1], "item-not-found", show(r))
        r = self.query(a, {"start": "yesterday"})
        self.assertEqual(error_of(r)[1], "bad-request", show(r))
        r = self.query(a, rsm="<max>many</max>")
        self.assertEqual(error_of(r)[1], "bad-request", show(r))

    def test_someone_elses_archive_is_not_there(self):
        a = self.client("alice", "nosy")
        r = self.query(a, to="bob@localhost")
        self.assertEqual(error_of(r)[1], "service-unavailable", show(r))

    def test_not_archived_no_store_groupchat_and_forged_ids(self):
        a, b = self.client("alice", "hints"), self.client("bob", "hints")
        self.chat(b, a, "keep-not", "<no-store xmlns='urn:xmpp:hints'/>")
        self.chat(b, a, "permanent-not", "<no-permanent-store xmlns='urn:xmpp:hints'/>")
        forged = self.chat(b, a, "forged", "<stanza-id xmlns='%s' by='alice@localhost' "
                           "id='forged-id'/>" % NS_SID)
        ids = [s.get("id") for s in forged.iter(q("stanza-id", NS_SID))]
        self.assertEqual(len(ids), 1)
        self.assertNotEqual(ids[0], "forged-id")
        r = self.query(a, {"with": "bob@localhost"})
        self.assertNotIn("keep-not", r.bodies())
        self.assertNotIn("permanent-not", r.bodies())
        self.assertIn("forged", r.bodies())

    def test_preferences(self):
        c, b = self.client("carol", "prefs"), self.client("bob", "prefs")
        r = c.iq(c.bare, "<prefs xmlns='%s' default='never'><always><jid>alice@localhost</jid>"
                 "</always><never/></prefs>" % NS_MAM, "set")
        self.assertEqual(r.get("type"), "result", show(r))
        got = c.iq(c.bare, "<prefs xmlns='%s'/>" % NS_MAM)
        p = got.find(q("prefs", NS_MAM))
        self.assertEqual(p.get("default"), "never")
        self.assertEqual([j.text for j in p.iter(q("jid", NS_MAM))], ["alice@localhost"])
        self.chat(b, c, "not-kept")
        a = self.client("alice", "prefs")
        self.chat(a, c, "kept")
        bodies = self.query(c).bodies()
        self.assertIn("kept", bodies)
        self.assertNotIn("not-kept", bodies)
        c.iq(c.bare, "<prefs xmlns='%s' default='always'/>" % NS_MAM, "set")

    def test_zz_retention_and_account_deletion(self):
        a, b = self.client("alice", "old"), self.client("bob", "old")
        self.chat(b, a, "soon-gone")
        self.assertIn("soon-gone", self.query(a).bodies())
        self.advance(8 * 86400)  # retention_days defaults to 7
        self.assertEqual(self.query(a).bodies(), [])
        self.chat(b, a, "erased-with-the-account")
        a.close()
        r = self.srv.run_ctl(["user", "delete", "alice@localhost"])
        self.assertEqual(r.exit_code, 0, r.err)
        db = sqlite3.connect(os.path.join(self.srv.data_dir, "haven.sqlite"))
        try:
            n = db.execute("SELECT COUNT(*) FROM mam_archive WHERE user = 'alice'").fetchone()
            self.assertEqual(n[0], 0)
            blob = b"".join(row[0] for row in db.execute("SELECT payload FROM mam_archive"))
            self.assertNotIn(b"erased-with", blob)
            self.assertNotIn(b"soon-gone", blob)
        finally:
            db.close()


class PeerSupportRule(MamCase):
    """With the peer-support model on, conversations with a member are not archived by
    default, on either side; staff among themselves are."""

    users = ("mia", "sam", "sue")
    roles = {"sam": "supporter", "sue": "supporter"}
    config = {"peersupport.enabled": True}

    def test_member_conversations_are_not_archived(self):
        sam, sue, mia = self.client("sam"), self.client("sue"), self.client("mia")
        self.chat(sam, mia, "hello from sam")  # opens the grant
        self.chat(mia, sam, "hello back")
        self.chat(sam, sue, "between staff")
        self.assertEqual(self.query(mia).bodies(), [])
        self.assertEqual(self.query(sam).bodies(), ["between staff"])
        self.assertEqual(self.query(sue).bodies(), ["between staff"])
        m = [e for e in mia.log if is_message(e) and body(e) == "hello from sam"][0]
        self.assertIsNone(m.find(q("stanza-id", NS_SID)), "a member's message got an id")


class PeerSupportRuleOptIn(PeerSupportRule):
    config = {"peersupport.enabled": True, "peersupport.archive_member_conversations": True}

    def test_member_conversations_are_not_archived(self):
        pass  # the opposite holds here

    def test_member_conversations_archived_when_the_admin_says_so(self):
        sam, mia = self.client("sam"), self.client("mia")
        self.chat(sam, mia, "kept for mia")
        self.assertEqual(self.query(mia).bodies(), ["kept for mia"])
        self.assertEqual(self.query(sam).bodies(), ["kept for mia"])


if __name__ == "__main__":
    unittest.main()
