#!/usr/bin/env python3
"""E2E: storage never stalls the event loop, and per-user stores are bounded in bytes (issue 10).

- Issue 10 §6: a second process holds an exclusive (write) lock on havend's WAL database for
  3 s while 50 clients exchange messages and one of them writes to an offline account. The p99
  delivery latency between online clients stays below 50 ms, no sender gets an error, and every
  message sent to the offline account during the lock is delivered once, in order, at its next
  login (and not again at the login after that).
- Issue 10 §2: offline storage has a byte quota per recipient. A sender whose messages no
  longer fit gets <service-unavailable/> (XEP-0160 §2, as for the count quota); the recipient
  still logs in and receives exactly what was stored. A message that serialises to more than
  [limits] max_stanza_bytes is never stored.

Run by ctest (e2e.py.test_storage_lock); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_storage_lock.py -v
"""

import contextlib
import os
import re
import select
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import RawStream, RawToml, TestServer  # noqa: E402

PASSWORD = "correct horse battery"
CLIENTS = 50  # 25 senders, 25 receivers
LOCK_SECONDS = 3.0
MESSAGE_RX = re.compile(rb"<message\b[^>]*>.*?</message>", re.DOTALL)
ERROR_RX = re.compile(rb"type=['\"]error['\"]")

# Holds the write lock from a second process, like havenctl, a backup or the sqlite3 CLI would.
LOCKER = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


@contextlib.contextmanager
def held_lock(test: unittest.TestCase, srv: TestServer, seconds: str):
    """A second process holding the write lock on srv's database for `seconds` (LOCKER);
    yields it once it holds the lock, and never leaves it running."""
    path = os.path.join(srv.data_dir, "haven.sqlite")
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, path, seconds],
                              stdout=subprocess.PIPE, text=True)
    try:
        r, _, _ = select.select([locker.stdout], [], [], 10)
        test.assertTrue(r and locker.stdout.readline().strip() == "locked")
        yield locker
    finally:
        if locker.poll() is None:
            locker.kill()
            locker.wait(5)
        locker.stdout.close()


def read_available(rs: RawStream) -> None:
    """Appends whatever the socket (and the TLS layer) has ready to rs.pending, not blocking."""
    for _ in range(64):  # bounded: at most 64 reads of 64 KiB per call
        if not rs.tls or rs.sock.pending() == 0:
            r, _, _ = select.select([rs.sock], [], [], 0)
            if not r:
                return
        if not rs._read_some(time.monotonic() + 0.05):
            return


def take_messages(rs: RawStream) -> list:
    """Complete <message/> stanzas from rs.pending (consumed), as bytes."""
    out = []
    while True:
        m = MESSAGE_RX.search(rs.pending)
        if not m:
            return out
        out.append(m.group(0))
        rs.pending = rs.pending[m.end():]


def collect(rs: RawStream, want: int, timeout: float) -> list:
    """Reads messages until `want` arrived or `timeout` passed."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        r, _, _ = select.select([rs.sock], [], [], 0.05)
        if r or (rs.tls and rs.sock.pending()):
            if not rs._read_some(time.monotonic() + 0.05) and rs.closed:
                break
        got += take_messages(rs)
    return got


def percentile(values, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def offline_rows(srv: TestServer, local: str) -> list:
    db = sqlite3.connect(os.path.join(srv.data_dir, "haven.sqlite"), timeout=5)
    try:
        return [r[0] for r in db.execute(
            "SELECT length(payload) FROM offline WHERE user = ? ORDER BY id", (local,))]
    finally:
        db.close()


class StorageLockTest(unittest.TestCase):
    """Issue 10 §6: a locked database never stalls routing and loses no offline message."""

    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer({"log.level": "info"})
        for i in range(CLIENTS):
            cls.srv.add_user("u%02d" % i, PASSWORD)
        cls.srv.add_user("away", PASSWORD)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def login(self, local: str, resource: str) -> RawStream:
        rs = RawStream(self.srv.direct_tls_port, direct_tls=True)
        jid = rs.login(local, PASSWORD, resource=resource, timeout=10)
        self.assertIsNotNone(jid, "login of %s failed" % local)
        self.assertTrue(rs.send("<presence/>"))
        return rs

    def start_locker(self) -> subprocess.Popen:
        path = os.path.join(self.srv.data_dir, "haven.sqlite")
        proc = subprocess.Popen([sys.executable, "-c", LOCKER, path, str(LOCK_SECONDS)],
                                stdout=subprocess.PIPE, text=True)
        r, _, _ = select.select([proc.stdout], [], [], 10)
        self.assertTrue(r and proc.stdout.readline().strip() == "locked",
                        "the second process could not take the write lock")
        return proc

    def test_locked_database_no_stall_nothing_lost(self):
        clients = [self.login("u%02d" % i, "r") for i in range(CLIENTS)]
        try:
            self.run_traffic(clients)
        finally:
            for rs in clients:
                rs.close()

    def run_traffic(self, clients):
        senders, receivers = clients[:CLIENTS // 2], clients[CLIENTS // 2:]
        time.sleep(0.2)  # bounded settle; presence broadcasts are drained below
        for rs in clients:
            read_available(rs)
            rs.pending = b""

        sent = {}       # message id -> monotonic send time
        latencies = []  # seconds, online messages delivered
        errors = []     # error stanzas any sender received
        offline_bodies = []
        locker = None
        start = time.monotonic()
        lock_started = None
        tick = 0
        # Phases: 0.5 s unlocked, LOCK_SECONDS locked, 0.5 s after; one round every 20 ms.
        while tick < 2000:
            now = time.monotonic()
            if locker is None and now - start >= 0.5:
                locker = self.start_locker()
                lock_started = time.monotonic()
            if locker is not None and locker.poll() is not None and \
                    time.monotonic() - lock_started >= LOCK_SECONDS + 0.5:
                break
            if time.monotonic() - start > 30:
                self.fail("traffic phase did not end within 30 s")
            for i, rs in enumerate(senders):
                mid = "m-%d-%d" % (i, tick)
                to = "u%02d@localhost/r" % (i + CLIENTS // 2)
                sent[mid] = time.monotonic()
                rs.send("<message to='%s' type='chat' id='%s'><body>%d</body></message>"
                        % (to, mid, tick))
            # While the lock is held, one sender writes to the offline account every 100 ms.
            if locker is not None and locker.poll() is None and tick % 5 == 0:
                body = "offline-%03d" % len(offline_bodies)
                offline_bodies.append(body)
                senders[0].send("<message to='away@localhost' type='chat' id='%s'>"
                                "<body>%s</body></message>" % (body, body))
            tick += 1
            round_end = time.monotonic() + 0.02
            while True:
                for rs in receivers:
                    read_available(rs)
                    for msg in take_messages(rs):
                        m = re.search(rb"id=['\"](m-\d+-\d+)['\"]", msg)
                        if m and m.group(1).decode() in sent:
                            latencies.append(time.monotonic() - sent.pop(m.group(1).decode()))
                for rs in senders:
                    read_available(rs)
                    errors += [m for m in take_messages(rs) if ERROR_RX.search(m)]
                    rs.pending = b""
                if time.monotonic() >= round_end:
                    break
                time.sleep(0.002)
        self.assertIsNotNone(locker)
        self.assertEqual(locker.wait(10), 0)
        locker.stdout.close()
        # Stragglers: everything still in flight arrives within 5 s.
        deadline = time.monotonic() + 5
        while sent and time.monotonic() < deadline:
            for rs in receivers:
                read_available(rs)
                for msg in take_messages(rs):
                    m = re.search(rb"id=['\"](m-\d+-\d+)['\"]", msg)
                    if m and m.group(1).decode() in sent:
                        latencies.append(time.monotonic() - sent.pop(m.group(1).decode()))
            time.sleep(0.01)

        p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
        worst = max(latencies) * 1000
        print("\n%d online messages: p50 %.2f ms, p99 %.2f ms, max %.1f ms; %d offline"
              % (len(latencies), p50, p99, worst, len(offline_bodies)), file=sys.stderr)
        self.assertEqual(len(sent), 0, "%d online messages never arrived" % len(sent))
        self.assertGreater(len(offline_bodies), 10)
        self.assertEqual(errors, [], "a sender got an error while the database was locked")
        self.assertLess(p99, 50.0, "p99 delivery latency %.1f ms while the database was "
                        "locked (max %.1f ms)" % (p99, worst))

        # The offline account logs in: everything sent during the lock, once, in order.
        away = self.login("away", "phone")
        try:
            got = collect(away, len(offline_bodies) + 1, timeout=10)
        finally:
            away.close()
        bodies = [re.search(rb"<body>([^<]*)</body>", m).group(1).decode() for m in got]
        self.assertEqual(bodies, offline_bodies)
        # Exactly once: the next login gets nothing more, and nothing is left in the store.
        again = self.login("away", "laptop")
        try:
            self.assertEqual(collect(again, 1, timeout=1.0), [])
        finally:
            again.close()
        self.assertEqual(offline_rows(self.srv, "away"), [])


class ShutdownWithQueuedWritesTest(unittest.TestCase):
    """Issue 10 §6: SIGTERM while offline messages wait in memory for a held lock: havend waits
    (bounded) for the lock to go, writes them, exits cleanly; after a restart the recipient
    gets them all, in order."""

    def test_sigterm_flushes_queued_offline_messages(self):
        with TestServer() as srv:
            srv.add_user("sam", PASSWORD)
            srv.add_user("away", PASSWORD)
            srv.start()
            rs = RawStream(srv.direct_tls_port, direct_tls=True)
            self.assertIsNotNone(rs.login("sam", PASSWORD, resource="r", timeout=10))
            with held_lock(self, srv, "2.5") as locker:
                bodies = ["queued-%d" % n for n in range(5)]
                for body in bodies:
                    rs.send("<message to='away@localhost' type='chat' id='%s'><body>%s</body>"
                            "</message>" % (body, body))
                rs.send("<iq type='get' id='sync' to='localhost'>"
                        "<ping xmlns='urn:xmpp:ping'/></iq>")
                text = rs.read_until("id='sync'", timeout=5)
                self.assertIsNotNone(text)
                self.assertNotIn("type='error'", text)
                rs.close()
                self.assertEqual(offline_rows(srv, "away"), [])  # still only in memory
                start = time.monotonic()
                status = srv.stop()  # the lock goes ~2 s later; havend waits at most 5 s
                took = time.monotonic() - start
                self.assertEqual(locker.wait(10), 0)
            self.assertEqual(status, 0)
            self.assertLess(took, 9.0)
            self.assertIn("queued offline messages written at shutdown", srv.log_contents())
            self.assertEqual(len(offline_rows(srv, "away")), len(bodies))
            srv.start()
            away = RawStream(srv.direct_tls_port, direct_tls=True)
            self.assertIsNotNone(away.login("away", PASSWORD, resource="p", timeout=10))
            away.send("<presence/>")
            got = collect(away, len(bodies) + 1, timeout=5)
            away.close()
            self.assertEqual([re.search(rb"<body>([^<]*)</body>", m).group(1).decode()
                              for m in got], bodies)


class LockedIqSetTest(unittest.TestCase):
    """Issue 10 §6: an IQ set that must write answers a temporary error (type wait) within a
    few ms while another process holds the lock, instead of stalling ~2 s; it works again once
    the lock is gone."""

    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer()
        cls.srv.add_user("dora", PASSWORD)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def iq(self, rs: RawStream, iq_id: str, payload: str) -> tuple:
        start = time.monotonic()
        self.assertTrue(rs.send("<iq type='set' id='%s'>%s</iq>" % (iq_id, payload)))
        m = rs.read_match(r"<iq\b[^>]*id='%s'[^>]*(?:/>|>.*?</iq>)" % iq_id, timeout=10)
        self.assertIsNotNone(m, "no answer to %s" % iq_id)
        return m.group(0), time.monotonic() - start

    def test_iq_sets_during_lock_answer_wait(self):
        rs = RawStream(self.srv.direct_tls_port, direct_tls=True)
        self.assertIsNotNone(rs.login("dora", PASSWORD, resource="r", timeout=10))
        sets = {
            "vcard": "<vCard xmlns='vcard-temp'><FN>Dora</FN></vCard>",
            "roster": "<query xmlns='jabber:iq:roster'><item jid='eve@localhost'/></query>",
            "private": "<query xmlns='jabber:iq:private'><n xmlns='urn:x:notes'>hi</n></query>",
            "block": "<block xmlns='urn:xmpp:blocking'><item jid='mallory@localhost'/></block>",
        }
        with held_lock(self, self.srv, "2") as locker:
            for name, payload in sets.items():
                reply, took = self.iq(rs, "locked-" + name, payload)
                self.assertIn("type='error'", reply, name)
                self.assertRegex(reply, r"<error type='wait'><resource-constraint", name)
                self.assertLess(took, 0.5, "%s waited %.2f s for the lock" % (name, took))
            self.assertEqual(locker.wait(10), 0)
        for name, payload in sets.items():
            reply, _ = self.iq(rs, "free-" + name, payload)
            self.assertIn("type='result'", reply, name)
        rs.close()


class LockedFunctionalAddressTest(unittest.TestCase):
    """Issue 10 §6 for the functional addresses' own table: while another process holds the
    lock, a new inquiry (which must be written) answers a temporary error (type wait), not
    internal-server-error, and a follow-up to an existing inquiry (whose activity time is only
    best-effort) still reaches the staff."""

    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer({
            "peersupport.enabled": True,
            "functional_addresses.addresses": RawToml(
                '[{jid = "beratung@localhost", name = "Beratung", staff = ["sam@localhost"]}]'),
        })
        cls.srv.add_user("alice", PASSWORD)
        cls.srv.add_user("carla", PASSWORD)
        cls.srv.add_user("sam", PASSWORD, role="supporter")
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def login(self, local: str) -> RawStream:
        rs = RawStream(self.srv.direct_tls_port, direct_tls=True)
        self.assertIsNotNone(rs.login(local, PASSWORD, resource="r", timeout=10))
        self.assertTrue(rs.send("<presence/>"))
        return rs

    def say(self, rs: RawStream, msg_id: str, body: str) -> None:
        self.assertTrue(rs.send("<message to='beratung@localhost' type='chat' id='%s'>"
                                "<body>%s</body></message>" % (msg_id, body)))

    def test_inquiries_during_lock(self):
        sam = self.login("sam")
        alice = self.login("alice")
        carla = self.login("carla")
        try:
            self.say(alice, "a1", "first from alice")
            self.assertIsNotNone(sam.read_until("first from alice", 10), self.srv.log_tail())
            with held_lock(self, self.srv, "2") as locker:
                # A new inquiry cannot be recorded: retry later, within milliseconds.
                start = time.monotonic()
                self.say(carla, "c1", "first from carla")
                m = carla.read_match(r"<message\b[^>]*id='c1'[^>]*type='error'.*?</message>"
                                     r"|<message\b[^>]*type='error'[^>]*id='c1'.*?</message>",
                                     timeout=5)
                self.assertIsNotNone(m, "no error for the new inquiry" + self.srv.log_tail())
                self.assertRegex(m.group(0), r"<error type='wait'><resource-constraint")
                self.assertLess(time.monotonic() - start, 0.5)
                # An existing inquiry goes on: the follow-up reaches the staff, no error.
                self.say(alice, "a2", "second from alice")
                self.assertIsNotNone(sam.read_until("second from alice", 1),
                                     "follow-up not delivered during the lock" + self.srv.log_tail())
                self.assertEqual(locker.wait(10), 0)
            self.assertNotIn("type='error'", alice.pending.decode("utf-8", "replace"))
            # After the lock, carla's retry opens her inquiry.
            self.say(carla, "c2", "carla again")
            self.assertIsNotNone(sam.read_until("carla again", 10), self.srv.log_tail())
            self.assertNotIn("internal-server-error", self.srv.log_contents())
        finally:
            for rs in (sam, alice, carla):
                rs.close()


class StoreByteQuotaTest(unittest.TestCase):
    """Issue 10 §2: private XML storage has a byte quota besides its item count."""

    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer({"private.quota_bytes": 8192, "private.max_bytes": 4096})
        cls.srv.add_user("fred", PASSWORD)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_private_total_bytes(self):
        rs = RawStream(self.srv.direct_tls_port, direct_tls=True)
        self.assertIsNotNone(rs.login("fred", PASSWORD, resource="r", timeout=10))
        answers = []
        for n in range(4):  # 4 x 3 KB fragments: the third no longer fits in 8 KiB
            rs.send("<iq type='set' id='p%d'><query xmlns='jabber:iq:private'>"
                    "<n%d xmlns='urn:x:n%d'>%s</n%d></query></iq>" % (n, n, n, "z" * 3000, n))
            m = rs.read_match(r"<iq\b[^>]*id='p%d'[^>]*(?:/>|>.*?</iq>)" % n, timeout=10)
            self.assertIsNotNone(m)
            answers.append(m.group(0))
        self.assertIn("type='result'", answers[0])
        self.assertIn("type='result'", answers[1])
        for a in answers[2:]:
            self.assertIn("not-acceptable", a)
        # Replacing a stored fragment with a smaller one still works.
        rs.send("<iq type='set' id='small'><query xmlns='jabber:iq:private'>"
                "<n0 xmlns='urn:x:n0'>short</n0></query></iq>")
        m = rs.read_match(r"<iq\b[^>]*id='small'[^>]*(?:/>|>.*?</iq>)", timeout=10)
        self.assertIsNotNone(m)
        self.assertIn("type='result'", m.group(0))
        rs.close()


class OfflineByteQuotaTest(unittest.TestCase):
    """Issue 10 §2: offline storage is bounded in bytes per recipient, not only in messages."""

    QUOTA_BYTES = 8192

    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer({"offline.quota": 100, "offline.quota_bytes": cls.QUOTA_BYTES,
                              "limits.max_stanza_bytes": 65536})
        for local in ("alice", "bob", "carol"):
            cls.srv.add_user(local, PASSWORD)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def login(self, local: str, resource: str) -> RawStream:
        rs = RawStream(self.srv.direct_tls_port, direct_tls=True)
        self.assertIsNotNone(rs.login(local, PASSWORD, resource=resource, timeout=10))
        return rs

    def test_full_by_bytes_bounces_and_recipient_gets_what_was_stored(self):
        alice = self.login("alice", "a")
        stored, bounced = [], []
        try:
            for n in range(20):  # 20 x 1.5 KB: the 8 KiB quota is full after ~5
                body = "%02d-" % n + "x" * 1500
                alice.send("<message to='bob@localhost' type='chat' id='q%d'><body>%s</body>"
                           "</message>" % (n, body))
                # A ping after each message: its result means the message was handled.
                alice.send("<iq type='get' id='p%d' to='localhost'><ping xmlns='urn:xmpp:ping'/>"
                           "</iq>" % n)
                text = alice.read_until("id='p%d'" % n, timeout=5)
                self.assertIsNotNone(text, "no answer to ping %d" % n)
                if re.search(r"<message[^>]*id='q%d'[^>]*type='error'|"
                             r"<message[^>]*type='error'[^>]*id='q%d'" % (n, n), text):
                    self.assertIn("service-unavailable", text)
                    bounced.append(n)
                else:
                    stored.append(n)
        finally:
            alice.close()
        self.assertGreaterEqual(len(stored), 3)
        self.assertGreaterEqual(len(bounced), 10)
        self.assertEqual(stored, list(range(len(stored))), "a later message was stored after a "
                         "bounce although nothing was freed")
        self.assertLessEqual(sum(offline_rows(self.srv, "bob")), self.QUOTA_BYTES)

        bob = self.login("bob", "b")
        try:
            self.assertTrue(bob.send("<presence/>"))
            got = collect(bob, len(stored) + 1, timeout=5)
        finally:
            bob.close()
        ids = [re.search(rb"id=['\"](q\d+)['\"]", m).group(1).decode() for m in got]
        self.assertEqual(ids, ["q%d" % n for n in stored])
        self.assertEqual(offline_rows(self.srv, "bob"), [])

    def test_stored_row_never_exceeds_max_stanza_bytes(self):
        # Issue 10 §2: a namespace prefix declared once and used by thousands of elements. Once
        # serialised it must either fit in max_stanza_bytes or be refused, never stored bigger.
        uri = "urn:x:" + "a" * 7000
        payload = "<x xmlns:p='%s'>%s</x>" % (uri, "<p:a/>" * 3000)
        alice = self.login("alice", "big")
        try:
            alice.send("<message to='carol@localhost' type='chat' id='big'><body>hi</body>%s"
                       "</message>" % payload)
            alice.send("<iq type='get' id='pbig' to='localhost'><ping xmlns='urn:xmpp:ping'/>"
                       "</iq>")
            text = alice.read_until("id='pbig'", timeout=10)
            self.assertIsNotNone(text)
        finally:
            alice.close()
        rows = offline_rows(self.srv, "carol")
        if "type='error'" in text and "id='big'" in text:
            # Refused: too large for a stored row, or (here, with an 8 KiB quota) for the
            # recipient's byte quota, whichever is checked first. Nothing was stored.
            self.assertRegex(text, "policy-violation|service-unavailable")
            self.assertEqual(rows, [])
        else:
            self.assertEqual(len(rows), 1)
            self.assertLessEqual(rows[0], 65536 + 100)  # + the sealing overhead
        carol = self.login("carol", "c")  # the recipient still logs in
        try:
            self.assertTrue(carol.send("<presence/>"))
            self.assertEqual(len(collect(carol, len(rows), timeout=5)), len(rows))
        finally:
            carol.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
