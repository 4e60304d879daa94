#!/usr/bin/env python3
"""E2E: content-free e-mail notices (modules/email_notices, issue 13) against a real SMTP
server (aiosmtpd, Debian python3-aiosmtpd) that the test starts on loopback.

Covers: setting an address and confirming it with the mailed code (English and German), a
wrong code, an expired code, the attempt limit, the notice itself (no sender, no content, no
room; To: the confirmed address only), at most one notice per period, none when the user comes
online first, none for an unconfirmed address, removal, a relay that is down and comes back
(the mail waits in the database across a restart of havend), and no address in the log.

Time moves with `havenctl clock advance` ([server] clock_control), never by sleeping. To check
that a notice was NOT sent, a "sentinel" mail (another account's confirmation code) is asked
for afterwards: mails go out one at a time in the order they became due, so a notice that had
been due would arrive before the sentinel.

Run by ctest (e2e.py.test_email_notices); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_email_notices.py -v
"""

import email
import email.policy
import itertools
import os
import queue
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import free_loopback_port  # noqa: E402
from muc_testlib import ServerCase, command_note  # noqa: E402

try:
    from aiosmtpd.controller import Controller
except ImportError:  # installed by scripts/install-deps.sh (python3-aiosmtpd)
    print("test_email_notices: python3-aiosmtpd is missing; run scripts/install-deps.sh",
          file=sys.stderr)
    raise

DELAY = 60
INTERVAL = 3600
SET, CONFIRM, REMOVE = ("urn:haven:email:set", "urn:haven:email:confirm",
                        "urn:haven:email:remove")
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hans")
SENTINELS = ["sentinel%d" % i for i in range(10)]


class Mailbox:
    """aiosmtpd handler: every mail that arrives, parsed, in a queue."""

    def __init__(self):
        self.mails = queue.Queue()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.put({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                        "subject": str(msg["Subject"]), "body": msg.get_content(),
                        "raw": envelope.content.decode("utf-8", "replace")})
        return "250 OK"


class EmailNotices(ServerCase):
    users = USERS + tuple(SENTINELS)

    @classmethod
    def setUpClass(cls):
        cls.smtp_port = free_loopback_port()
        cls.mailbox = Mailbox()
        cls.smtp = None
        cls.start_smtp()
        cls.config = {
            "server.clock_control": True,
            "email_notices.enabled": True,
            "email_notices.smtp_url": "smtp://127.0.0.1:%d" % cls.smtp_port,
            "email_notices.smtp_tls": "none",
            "email_notices.from": "notices@localhost",
            "email_notices.delay_s": DELAY,
            "email_notices.min_interval_s": INTERVAL,
        }
        try:
            super().setUpClass()
        except Exception:
            cls.stop_smtp()
            raise
        cls.sentinels = iter(SENTINELS)
        cls.advanced = 0

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.stop_smtp()

    @classmethod
    def start_smtp(cls):
        cls.smtp = Controller(cls.mailbox, hostname="127.0.0.1", port=cls.smtp_port)
        cls.smtp.start()

    @classmethod
    def stop_smtp(cls):
        if cls.smtp is not None:
            cls.smtp.stop()
            cls.smtp = None

    # helpers ----------------------------------------------------------------------------------

    def advance(self, seconds):
        r = self.srv.run_ctl(["clock", "advance", str(seconds)])
        self.assertEqual(r.exit_code, 0, r.err)
        type(self).advanced += seconds

    def mail(self, timeout=10.0):
        try:
            return self.mailbox.mails.get(timeout=timeout)
        except queue.Empty:
            self.fail("no mail within %.0f s; log tail:\n%s" % (timeout, self.srv.log_tail()))

    def mail_to(self, address, timeout=10.0):
        """The next mail to `address`; mails to others (other tests' notices) are skipped."""
        while True:
            m = self.mail(timeout)
            if m["to"] == [address]:
                return m

    def no_mail_before_sentinel(self):
        """Asks for one more mail (another account's code) and returns what arrived before
        it: mails leave one by one in the order they became due."""
        who = next(self.sentinels)
        c = self.client(who)
        address = "%s@example.net" % who
        c.command("localhost", SET, {"address": address})
        before = []
        while True:
            m = self.mail()
            if m["to"] == [address]:
                return before
            before.append(m)

    def set_address(self, c, address, lang=""):
        r = c.command("localhost", SET, {"address": address}, lang=lang)
        self.assertEqual(r.get("type"), "result", r)
        return command_note(r)

    def code_from(self, mail):
        m = re.search(r"\b(\d{6})\b", mail["body"])
        self.assertIsNotNone(m, mail["body"])
        return m.group(1)

    def confirm(self, c, code, lang=""):
        return command_note(c.command("localhost", CONFIRM, {"code": code}, lang=lang))

    def confirmed(self, local, address):
        """local has a confirmed address (and is offline afterwards)."""
        c = self.client(local, "setup")
        self.set_address(c, address)
        m = self.mail()
        self.assertEqual(m["to"], [address])
        self.assertIn("Confirmed", self.confirm(c, self.code_from(m)))
        c.close()

    def message_from_bob(self, to, text):
        b = self.client("bob", "desk%d" % next(_seq))
        b.send("<message type='chat' to='%s@localhost'><body>%s</body></message>" % (to, text))
        b.iq("localhost", "<ping xmlns='urn:xmpp:ping'/>")  # handled before the answer

    # tests ------------------------------------------------------------------------------------

    def test_confirmation_with_the_mailed_code(self):
        c = self.client("alice")
        note = self.set_address(c, "alice@example.org")
        self.assertIn("alice@example.org", note)
        m = self.mail()
        self.assertEqual(m["to"], ["alice@example.org"])
        self.assertEqual(m["from"], "notices@localhost")
        self.assertIn("confirmation code", m["subject"])
        code = self.code_from(m)
        wrong = "%06d" % ((int(code) + 1) % 1000000)
        self.assertIn("not right", self.confirm(c, wrong))
        self.assertIn("Confirmed", self.confirm(c, code))
        self.assertIn("no code to confirm", self.confirm(c, code))  # used once only

    def test_german_texts_follow_xml_lang(self):
        c = self.client("dave")
        note = self.set_address(c, "dave@example.org", lang="de")
        self.assertIn("Code ist unterwegs", note)
        m = self.mail()
        self.assertIn("Bestätigungscode", m["subject"])
        self.assertIn("dein Code ist", m["body"])
        self.assertIn("Bestätigt", self.confirm(c, self.code_from(m), lang="de"))

    def test_expired_code_and_attempt_limit(self):
        c = self.client("erin")
        self.set_address(c, "erin@example.org")
        code = self.code_from(self.mail())
        self.advance(1801)  # [email_notices] code_ttl_s defaults to 30 minutes
        self.assertIn("no longer valid", self.confirm(c, code))
        self.set_address(c, "erin@example.org")
        code = self.code_from(self.mail())
        wrong = "%06d" % ((int(code) + 7) % 1000000)
        for _ in range(5):  # code_attempts
            self.confirm(c, wrong)
        self.assertIn("no longer valid", self.confirm(c, code))

    def test_bad_address_is_refused(self):
        c = self.client("erin", "laptop")
        for bad in ("no-at-sign", "a@b", "x@example.org\r\nBcc: victim@example.org",
                    "two@@example.org"):
            self.assertIn("not an e-mail address", self.set_address(c, bad))

    def test_notice_without_sender_or_content_and_once_per_period(self):
        self.confirmed("carol", "carol@example.org")
        self.message_from_bob("carol", "a very secret text")
        self.advance(DELAY + 1)
        m = self.mail_to("carol@example.org")
        self.assertEqual(m["subject"], "New messages on localhost")
        for leak in ("secret", "bob", "desk", "carol@localhost"):
            self.assertNotIn(leak, m["raw"])
            self.assertNotIn(leak, m["body"])
        # More messages in the same period: no second mail.
        self.message_from_bob("carol", "another one")
        self.advance(DELAY + 1)
        self.assertEqual(self.no_mail_before_sentinel(), [])
        # After the period, the next waiting message gets a notice again.
        self.advance(INTERVAL)
        self.mail_to("carol@example.org")

    def test_no_notice_when_the_user_comes_online_first(self):
        self.confirmed("frank", "frank@example.org")
        self.message_from_bob("frank", "hello")
        self.client("frank", "laptop").close()  # logs in, gets the offline message, leaves
        self.advance(DELAY + 1)
        self.assertEqual(self.no_mail_before_sentinel(), [])

    def test_unconfirmed_and_removed_addresses_get_nothing(self):
        g = self.client("gina")
        self.set_address(g, "gina@example.org")
        self.mail()  # the code, never entered
        g.close()
        self.confirmed("hans", "hans@example.org")
        h = self.client("hans", "laptop")
        self.assertIn("removed", command_note(h.command("localhost", REMOVE)))
        h.close()
        self.message_from_bob("gina", "hi")
        self.message_from_bob("hans", "hi")
        self.advance(DELAY + 1)
        self.assertEqual(self.no_mail_before_sentinel(), [])

    def test_relay_down_then_back_across_a_restart(self):
        self.confirmed("alice", "alice2@example.org")
        self.stop_smtp()
        try:
            self.message_from_bob("alice", "while the relay is down")
            self.advance(DELAY + 1)
            self.assertTrue(self.srv.wait_log("relay failed", 10), self.srv.log_tail())
            self.assertEqual(self.srv.restart(), 0)
        finally:
            self.start_smtp()
        # The clock's offset is gone with the old process: move it past the stored retry time.
        offset, type(self).advanced = type(self).advanced, 0
        self.advance(offset + 120)
        m = self.mail_to("alice2@example.org", timeout=20)
        self.assertEqual(m["subject"], "New messages on localhost")

    def test_zz_no_address_in_the_log(self):
        log = self.srv.log_contents()
        self.assertNotIn("@example.org", log)
        self.assertNotIn("@example.net", log)


_seq = itertools.count(1)

if __name__ == "__main__":
    unittest.main()
