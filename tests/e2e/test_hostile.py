#!/usr/bin/env python3
"""E2E over raw sockets: what a hostile or broken peer can do to havend, and SASL details that
need byte-level control.

- RFC 6120 §11 restricted XML and the parser limits: each input ends that stream with the right
  stream error, the connection is closed, the server process lives on and a fresh pair of
  clients still logs in and exchanges a message.
- A slow reader (never reads while another client floods it) is dropped once its bounded send
  queue is full; the server keeps serving the others and its memory stays bounded.
- STARTTLS command injection (plaintext pipelined after <starttls/>) is ignored.
- SASL as an account prober sees it: an unknown user looks exactly like a wrong password,
  including the SCRAM salt and iteration count (RFC 5802 §9); exchanges opened in parallel on
  many connections get no more guesses than the per-account limit.
- SCRAM -PLUS channel binding (RFC 5802 §6, RFC 5929 tls-unique, RFC 9266 tls-exporter) and
  its downgrade protection; libstrophe 0.12 has no -PLUS, so these exchanges are written here.

Run by ctest (e2e.py.test_hostile); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_hostile.py -v
"""

import base64
import hashlib
import hmac
import os
import re
import select
import signal
import socket
import ssl
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import (NS_SASL, NS_TLS, RawStream, TestServer,  # noqa: E402
                           stream_header)

try:
    from OpenSSL import SSL as PyOpenSSL  # tls-exporter needs SSL_export_keying_material
except ImportError:  # pragma: no cover - optional
    PyOpenSSL = None

PASSWORD = "correct horse battery"
STREAM_ERROR_RX = r"<stream:error><([a-z-]+)"


def b64(data) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def stream_header_with(content_ns="jabber:client", stream_ns="http://etherx.jabber.org/streams",
                       domain="localhost", decl="<?xml version='1.0'?>") -> str:
    return ("%s<stream:stream to='%s' version='1.0' xmlns='%s' xmlns:stream='%s'>"
            % (decl, domain, content_ns, stream_ns))


def vm_rss_kib(pid: int) -> int:
    with open("/proc/%d/status" % pid, encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def base_config(**extra) -> dict:
    config = {
        "limits.max_stanza_bytes": 65536,
        "limits.max_stanza_bytes_unauthenticated": 8192,
        "limits.max_depth": 32,
        "limits.max_send_queue_bytes": 65536,
        # Probing tests fail on purpose; keep the address budget out of their way.
        "sasl.max_failures_per_address": 1000,
        "sasl.max_failures_per_account": 1000,
    }
    config.update(extra)
    return config


class ServerCase(unittest.TestCase):
    """One havend per test class; alice and bob are supporters so that the peer-support
    policy (when compiled in) lets them write to each other."""

    config: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer(config=cls.config or base_config())
        for local in ("alice", "bob", "carol"):
            cls.srv.add_user(local, PASSWORD, role="supporter")
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def log_hint(self) -> str:
        return "\nserver log tail:\n" + self.srv.log_tail()

    def login(self, local="alice", resource=None, direct_tls=False) -> RawStream:
        port = self.srv.direct_tls_port if direct_tls else self.srv.c2s_port
        rs = RawStream(port, direct_tls=direct_tls)
        jid = rs.login(local, PASSWORD, resource=resource or uuid.uuid4().hex[:8])
        self.assertIsNotNone(jid, "login as %s failed%s" % (local, self.log_hint()))
        rs.jid = jid
        return rs

    def plain_login_works(self, local: str = "bob") -> bool:
        """A fresh stream, STARTTLS and SASL PLAIN with the right password: True on success."""
        rs = RawStream(self.srv.c2s_port)
        try:
            self.assertIsNotNone(rs.open_stream())
            self.assertIsNotNone(rs.starttls())
            return rs.sasl_plain(local, PASSWORD)
        finally:
            rs.close()

    def foreign_binding_attempt(self, local: str = "bob"):
        """SCRAM-SHA-256-PLUS with tls-unique data that is not the connection's: refused."""
        rs = TlsUniqueStream(self.srv.c2s_port)
        try:
            self.assertIsNotNone(rs.open_stream())
            self.assertIsNotNone(rs.starttls())
            s = Scram(rs, "SCRAM-SHA-256-PLUS", local, PASSWORD, cb_type="tls-unique",
                      cb_data=b"\x00" * 12)
            self.assertFalse(s.run())
            self.assertIn("<not-authorized", s.outcome_xml)
        finally:
            rs.close()

    def assert_alive(self):
        """The process runs, and a fresh pair of clients logs in and exchanges a message."""
        self.assertTrue(self.srv.running(), "havend died" + self.log_hint())
        token = uuid.uuid4().hex
        a = self.login("alice")
        b = self.login("bob")
        try:
            self.assertTrue(a.send("<message to='%s' type='chat' id='live'><body>%s</body>"
                                   "</message>" % (b.jid, token)))
            got = b.read_until(token, timeout=5)
            self.assertIsNotNone(got, "message not delivered" + self.log_hint())
        finally:
            a.close()
            b.close()

    def expect_stream_error(self, rs: RawStream, condition: str, timeout: float = 5.0):
        m = rs.read_match(STREAM_ERROR_RX, timeout=timeout)
        self.assertIsNotNone(m, "no stream error (expected %s); got %r%s"
                             % (condition, rs.pending[:300], self.log_hint()))
        self.assertEqual(m.group(1), condition)
        self.assertIsNotNone(rs.read_until("</stream:stream>", timeout=timeout),
                             "stream not closed after the error")
        self.assertTrue(rs.wait_closed(timeout), "connection left open after the stream error")


# --- RFC 6120 §11: restricted XML and parser limits ------------------------------------------

class RestrictedXml(ServerCase):
    config = base_config()

    def hostile(self, stage: str, payload, condition: str):
        """Sends payload at a stage of the stream and expects `condition`.

        stage: "header" (payload replaces the stream header), "clear" (after the stream header,
        before TLS), "tls" (after STARTTLS, before auth) or "bound" (after login and bind).
        """
        if stage == "bound":
            rs = self.login("carol")
        else:
            rs = RawStream(self.srv.c2s_port)
            if stage in ("clear", "tls"):
                self.assertIsNotNone(rs.open_stream())
            if stage == "tls":
                self.assertIsNotNone(rs.starttls())
        try:
            rs.send(payload)  # the server may close while we are still writing
            self.expect_stream_error(rs, condition)
        finally:
            rs.close()
        self.assert_alive()

    def test_doctype(self):
        self.hostile("header", "<?xml version='1.0'?><!DOCTYPE stream:stream>" + stream_header(),
                     "restricted-xml")

    def test_billion_laughs(self):
        entities = "<!ENTITY lol 'lol'>" + "".join(
            "<!ENTITY lol%d '%s'>" % (i, ("&lol%s;" % ("" if i == 1 else i - 1)) * 10)
            for i in range(1, 10))
        t0 = time.monotonic()
        self.hostile("header", "<?xml version='1.0'?><!DOCTYPE lolz [%s]>%s<message>&lol9;"
                     "</message>" % (entities, stream_header()), "restricted-xml")
        self.assertLess(time.monotonic() - t0, 10)

    def test_entity_declaration_alone(self):
        self.hostile("header", "<!DOCTYPE x [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"
                     + stream_header(), "restricted-xml")

    def test_processing_instruction(self):
        self.hostile("clear", "<?evil data?>", "restricted-xml")
        self.hostile("bound", "<message to='localhost'><?evil data?></message>", "restricted-xml")

    def test_comment(self):
        self.hostile("clear", "<!-- hello -->", "restricted-xml")
        self.hostile("tls", "<!-- hello -->", "restricted-xml")
        self.hostile("bound", "<message to='localhost'><body>x<!-- c --></body></message>",
                     "restricted-xml")

    def test_undefined_entity_reference(self):
        self.hostile("bound", "<message to='localhost'><body>&xxe;</body></message>",
                     "not-well-formed")

    def test_oversize_before_auth(self):
        # Over [limits] max_stanza_bytes_unauthenticated (8192): a complete stanza...
        self.hostile("tls", "<iq type='get' id='x'><query xmlns='jabber:iq:version'>%s</query>"
                     "</iq>" % ("a" * 9000), "policy-violation")
        # ...and one that never closes, which must be caught without waiting for its end.
        self.hostile("clear", "<message><body>" + "a" * 20000, "policy-violation")

    def test_oversize_after_auth(self):
        # Under [limits] max_stanza_bytes (65536) is fine after auth...
        rs = self.login("carol")
        try:
            token = uuid.uuid4().hex
            body = token + "b" * 60000
            self.assertTrue(rs.send("<message to='%s'><body>%s</body></message>"
                                    % (rs.jid, body)))
            self.assertIsNotNone(rs.read_until(token, timeout=5),
                                 "a 60 kB stanza should pass" + self.log_hint())
        finally:
            rs.close()
        # ...over it is not, complete or not.
        self.hostile("bound", "<message to='localhost'><body>%s</body></message>"
                     % ("c" * 70000), "policy-violation")
        self.hostile("bound", "<message to='localhost'><body>" + "c" * 200000,
                     "policy-violation")

    def test_nesting_depth_bomb(self):
        self.hostile("tls", "<a>" * 100, "policy-violation")
        self.hostile("bound", "<message to='localhost'>" + "<x>" * 10000, "policy-violation")

    def test_malformed_utf8(self):
        for bad in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"):
            with self.subTest(bytes=bad):
                self.hostile("bound", b"<message to='localhost'><body>" + bad +
                             b"</body></message>", "not-well-formed")
        self.hostile("tls", b"<iq type='get' id='\xfe'/>", "not-well-formed")

    def test_wrong_stream_namespace(self):
        self.hostile("header", stream_header_with(stream_ns="urn:example:not-streams"),
                     "invalid-namespace")
        self.hostile("header", stream_header_with(content_ns="jabber:server"),
                     "invalid-namespace")

    def test_unsupported_encoding(self):
        self.hostile("header", stream_header_with(
            decl="<?xml version='1.0' encoding='ISO-8859-1'?>"), "unsupported-encoding")

    def test_not_xml_at_all(self):
        self.hostile("header", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "not-well-formed")
        self.hostile("bound", "hello, is this XMPP?", "not-well-formed")


# --- issue 10 point 3: the stream error arrives, after every restart, whatever follows it ----

# Sent after the offending bytes: a client that keeps writing must still read the error (the
# server shuts down its side and discards input for a while instead of closing with unread
# data, which would make the kernel reset the connection and destroy the error in flight).
TRAILER = "x" * 900_000


class StreamErrorsArrive(ServerCase):
    config = base_config()

    def stream_at(self, stage: str) -> RawStream:
        """A stream at a stage: "clear" / "tls" (a stream header sent and answered), "bound"
        (logged in), or "restart-tls" / "restart-sasl": just after STARTTLS or SASL success, when
        the client must open a new stream and the server has sent nothing on it yet."""
        if stage == "bound":
            return self.login("carol")
        rs = RawStream(self.srv.c2s_port)
        self.assertIsNotNone(rs.open_stream())
        if stage == "clear":
            return rs
        if stage == "tls":
            self.assertIsNotNone(rs.starttls())
            return rs
        self.assertTrue(rs.send("<starttls xmlns='%s'/>" % NS_TLS))
        self.assertIsNotNone(rs.read_until("<proceed", 5))
        self.assertIsNotNone(rs.read_until(">", 5))
        rs.pending = b""
        rs.tls_handshake()
        if stage == "restart-sasl":
            self.assertIsNotNone(rs.open_stream())
            self.assertTrue(rs.sasl_plain("carol", PASSWORD))
        return rs

    def check(self, stage: str, payload: str, condition: str):
        with self.subTest(stage=stage, condition=condition, payload=payload[:40]):
            rs = self.stream_at(stage)
            try:
                rs.pending = b""
                rs.send(payload + TRAILER, timeout=15)
                m = rs.read_match(r"<stream:stream\b[^>]*>|<stream:error>", timeout=10)
                self.assertIsNotNone(m, "nothing arrived%s" % self.log_hint())
                if stage.startswith("restart"):
                    # RFC 6120 §4.9.1.1: the server opens its side of the new stream first.
                    self.assertTrue(m.group(0).startswith("<stream:stream"),
                                    "error without a stream header: %r" % m.group(0))
                else:
                    rs.pending = m.group(0).encode() + rs.pending
                self.expect_stream_error(rs, condition, timeout=10)
            finally:
                rs.close()

    def test_oversize_deep_and_restricted_after_every_restart(self):
        big = "<message to='localhost'><body>" + "a" * 300_000
        for stage in ("clear", "tls", "bound"):
            self.check(stage, big, "policy-violation")
            self.check(stage, "<message to='localhost'>" + "<x>" * 100, "policy-violation")
            self.check(stage, "<!-- a comment -->", "restricted-xml")
            self.check(stage, "<message to='localhost'></iq>", "not-well-formed")
        header = ("<stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' ")
        for stage in ("restart-tls", "restart-sasl"):
            self.check(stage, "<!-- a comment -->", "restricted-xml")
            self.check(stage, "hello?", "not-well-formed")
            self.check(stage, header + "x='" + "a" * 300_000, "policy-violation")
            self.check(stage, "<message to='localhost'/>", "invalid-namespace")
        self.assert_alive()


# --- issue 10 point 7: TLS versions, suites and tickets ----------------------------------------

class TlsPolicy(ServerCase):
    config = base_config()

    def handshake(self, ctx: ssl.SSLContext):
        """The negotiated (version, cipher name) on the direct TLS port, or None if refused."""
        raw = socket.create_connection(("127.0.0.1", self.srv.direct_tls_port), timeout=5)
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.version(), tls.cipher()[0], tls
        except (ssl.SSLError, OSError):
            return None
        finally:
            raw.close()

    @staticmethod
    def client(version, ciphers=None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = version
        ctx.maximum_version = version
        if ciphers:
            ctx.set_ciphers(ciphers)
        return ctx

    def test_versions_and_suites(self):
        r = self.handshake(self.client(ssl.TLSVersion.TLSv1_3))
        self.assertIsNotNone(r)
        self.assertEqual(r[0], "TLSv1.3")
        # TLS 1.3 is preferred when the client offers both.
        ctx = self.client(ssl.TLSVersion.TLSv1_3)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.assertEqual(self.handshake(ctx)[0], "TLSv1.3")
        # TLS 1.2 with forward-secret AEAD suites works...
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            with self.subTest(suite=suite):
                r = self.handshake(self.client(ssl.TLSVersion.TLSv1_2, suite))
                self.assertIsNotNone(r, suite)
                self.assertEqual(r[:2], ("TLSv1.2", suite))
        # ...CBC and SHA-1 suites do not, even with ECDHE.
        for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256",
                      "ECDHE-ECDSA-AES256-SHA384"):
            with self.subTest(suite=suite):
                self.assertIsNone(self.handshake(self.client(ssl.TLSVersion.TLSv1_2, suite)))
        # TLS 1.1 and 1.0 are refused.
        for old in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
            with self.subTest(version=old):
                self.assertIsNone(self.handshake(self.client(old, "DEFAULT:@SECLEVEL=0")))

    def test_no_session_tickets(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version):
                raw = socket.create_connection(("127.0.0.1", self.srv.direct_tls_port),
                                               timeout=5)
                ctx = self.client(version)
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(stream_header().encode())
                    tls.recv(4096)  # TLS 1.3 tickets would arrive after the handshake
                    session = tls.session
                    self.assertTrue(session is None or not session.has_ticket,
                                    "the server issued a session ticket")
        self.assert_alive()


# --- slow reader: bounded send queue ---------------------------------------------------------

class SlowReader(ServerCase):
    config = base_config()

    def test_slow_reader_is_dropped_and_memory_stays_bounded(self):
        pid = self.srv.proc.pid
        slow = self.login("bob", resource="slow")
        # A small receive buffer fills sooner; the server's own socket buffer still holds a
        # few MB (net.ipv4.tcp_wmem), which the flood below dwarfs.
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        flooder = self.login("alice", resource="flood")
        time.sleep(0.2)  # let allocations from the logins settle before the baseline
        rss_before = vm_rss_kib(pid)

        body = "x" * 4000
        batch = "".join("<message to='%s' type='chat'><body>%s</body></message>"
                        % (slow.jid, body) for _ in range(50))
        limit = 40 * 1024 * 1024  # far more than kernel buffers plus the 64 KiB queue
        sent = 0
        dropped = False
        deadline = time.monotonic() + 120
        while sent < limit and time.monotonic() < deadline:
            self.assertTrue(flooder.send(batch, timeout=10), "flooder lost" + self.log_hint())
            sent += len(batch)
            flooder.read_any(timeout=0.001)  # errors coming back: keep it drained
            if "send queue full" in self.srv.log_contents():
                dropped = True
                break
        self.assertTrue(dropped, "server never dropped the slow reader after %d bytes%s"
                        % (sent, self.log_hint()))

        # The slow client can still read what was queued, then <policy-violation/>, then EOF
        # (bounded: the server waits a few seconds at most for it to read that far).
        received = 0
        tail = ""
        deadline = time.monotonic() + 20
        while not slow.closed and time.monotonic() < deadline:
            chunk = slow.read_any(timeout=2)
            if chunk is None and not slow.closed:
                break
            received += len(chunk or "")
            tail = (tail + (chunk or ""))[-4096:]
        self.assertTrue(slow.closed, "slow reader still connected")
        slow.close()
        # At most what was sent, plus the stream error and closing tag (the drop may come
        # when nearly everything had already gone out: the memory bound below is the point).
        self.assertLessEqual(received, sent + 8192)
        self.assertIn("<policy-violation", tail)
        self.assertTrue(tail.endswith("</stream:stream>"), tail[-200:])

        # Keep flooding the vanished resource: whatever happens to those messages (offline
        # storage, errors) must not pile up in memory either.
        for _ in range(40):
            self.assertTrue(flooder.send(batch, timeout=10), "flooder lost" + self.log_hint())
            sent += len(batch)
            while flooder.read_any(timeout=0.001):
                pass
        rss_after = vm_rss_kib(pid)
        # The queue is 64 KiB; allow generous slack for allocator behaviour, far less than the
        # megabytes an unbounded queue would have taken. (Not under ASan: its quarantine keeps
        # freed memory resident on purpose; scripts/sanitize.sh sets HAVEN_SANITIZED.)
        if not os.environ.get("HAVEN_SANITIZED"):
            self.assertLess(rss_after - rss_before, 16 * 1024,
                            "RSS grew from %d to %d KiB" % (rss_before, rss_after))
        if os.environ.get("HAVEN_TEST_VERBOSE"):
            sys.stderr.write("[slow reader] sent %d, slow got %d, RSS %d -> %d KiB\n"
                             % (sent, received, rss_before, rss_after))

        # The flooder is still served, and so is everyone else.
        token = uuid.uuid4().hex
        flooder.read_any(timeout=0.2)
        self.assertTrue(flooder.send("<message to='%s'><body>%s</body></message>"
                                     % (flooder.jid, token)))
        self.assertIsNotNone(flooder.read_until(token, timeout=10),
                             "flooder no longer served" + self.log_hint())
        flooder.close()
        if not os.environ.get("HAVEN_SANITIZED"):
            self.assertLess(vm_rss_kib(pid) - rss_before, 16 * 1024)
        self.assert_alive()


# --- STARTTLS injection ----------------------------------------------------------------------

class StarttlsInjection(ServerCase):
    config = base_config()

    def test_plaintext_after_starttls_is_ignored(self):
        # RFC 6120 §5.4.3.3 and CVE-2011-0411: bytes pipelined after <starttls/> in the clear
        # must not be processed, neither now nor as if they had arrived over TLS.
        rs = RawStream(self.srv.c2s_port)
        try:
            self.assertIsNotNone(rs.open_stream())
            injected = (stream_header() +
                        "<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                        % (NS_SASL, b64("\0alice\0" + PASSWORD)) +
                        "<iq type='set' id='inj'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                        "<resource>injected</resource></bind></iq>")
            self.assertTrue(rs.send("<starttls xmlns='%s'/>" % NS_TLS + injected))
            self.assertIsNotNone(rs.read_until("<proceed", timeout=5))
            self.assertIsNotNone(rs.read_until(">", timeout=5))
            self.assertEqual(rs.pending, b"", "server sent more in the clear after <proceed/>")
            rs.tls_handshake()
            features = rs.open_stream()
            self.assertIsNotNone(features, "no features over TLS" + self.log_hint())
            # A fresh, unauthenticated stream: SASL on offer, no bind, no SASL outcome.
            self.assertIn("<mechanisms", features)
            self.assertNotIn("xmpp-bind", features)
            self.assertNotIn("<success", features)
            self.assertNotIn("<failure", features)
            self.assertEqual(features.count("<stream:stream"), 1)
            # Nothing else arrives for the injected stanzas.
            self.assertIsNone(rs.read_any(timeout=0.5))
            # And the stream works as a normal one.
            self.assertTrue(rs.sasl_plain("alice", PASSWORD))
            self.assertIsNotNone(rs.open_stream())
            self.assertTrue(rs.bind("mine").endswith("/mine"))
        finally:
            rs.close()
        self.assertNotIn("/injected", self.srv.log_contents())
        self.assert_alive()


# --- SASL over raw sockets -------------------------------------------------------------------

def parse_attrs(msg: str) -> dict:
    return dict(item.split("=", 1) for item in msg.split(","))


SASL_OUTCOME_RX = r"<(challenge|success|failure)\b[^>]*?(?:/>|>(.*?)</\1>)"


class Scram:
    """A SCRAM client (RFC 5802 / RFC 7677) speaking over a RawStream, with control over the
    gs2 header and channel-binding data, and a record of every message."""

    def __init__(self, rs: RawStream, mech: str, user: str, password: str,
                 cb_type: str = None, cb_data: bytes = b"", flag: str = "n"):
        self.rs = rs
        self.mech = mech
        self.hash = "sha256" if mech.startswith("SCRAM-SHA-256") else "sha1"
        self.user = user
        self.password = password
        self.gs2 = ("p=%s,," % cb_type) if cb_type else (flag + ",,")
        self.cb_data = cb_data
        self.server_first = None
        self.outcome = None       # "success" / "failure"
        self.outcome_xml = None   # the whole <success/> or <failure/> element
        self.server_verified = False

    def _read(self):
        m = self.rs.read_match(SASL_OUTCOME_RX, timeout=5)
        if m is None:
            raise AssertionError("no SASL answer; pending %r" % self.rs.pending[:200])
        return m.group(1), (m.group(2) or ""), m.group(0)

    def first(self) -> str:
        """Sends the client-first message; the answer's kind ("challenge" or an outcome)."""
        self.cnonce = b64(os.urandom(18))
        self.first_bare = "n=%s,r=%s" % (self.user, self.cnonce)
        self.rs.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                     % (NS_SASL, self.mech, b64(self.gs2 + self.first_bare)))
        kind, text, xml = self._read()
        if kind != "challenge":
            self.outcome, self.outcome_xml = kind, xml
        else:
            self.server_first = base64.b64decode(text).decode("utf-8")
        return kind

    def final(self) -> bool:
        """Sends the client-final message (with a proof from self.password); True on success
        with a server signature that verified."""
        attrs = parse_attrs(self.server_first)
        assert attrs["r"].startswith(self.cnonce), "server nonce does not extend ours"
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac(self.hash, self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        stored_key = hashlib.new(self.hash, client_key).digest()
        final_wo_proof = "c=%s,r=%s" % (b64(self.gs2.encode() + self.cb_data), attrs["r"])
        auth_message = ",".join((self.first_bare, self.server_first, final_wo_proof)).encode()
        signature = hmac.new(stored_key, auth_message, self.hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.rs.send("<response xmlns='%s'>%s</response>"
                     % (NS_SASL, b64(final_wo_proof + ",p=" + b64(proof))))
        kind, text, xml = self._read()
        self.outcome, self.outcome_xml = kind, xml
        if kind == "success":
            server_key = hmac.new(salted, b"Server Key", self.hash).digest()
            expected = "v=" + b64(hmac.new(server_key, auth_message, self.hash).digest())
            self.server_verified = base64.b64decode(text).decode() == expected
        return kind == "success"

    def run(self) -> bool:
        return self.first() == "challenge" and self.final()


class TlsUniqueStream(RawStream):
    """A RawStream whose TLS is capped at 1.2, where tls-unique (RFC 5929) is defined."""

    def tls_handshake(self, server_name="localhost", timeout=5.0):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.sock.settimeout(timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name)

    def channel_binding(self) -> bytes:
        return self.sock.get_channel_binding("tls-unique")


class _PyOpenSSLSocket:
    """Just enough of a socket over pyOpenSSL for RawStream: Python's ssl module cannot export
    keying material, which RFC 9266 tls-exporter needs."""

    def __init__(self, sock, server_name, timeout):
        ctx = PyOpenSSL.Context(PyOpenSSL.TLS_CLIENT_METHOD)
        ctx.set_min_proto_version(PyOpenSSL.TLS1_3_VERSION)
        ctx.set_verify(PyOpenSSL.VERIFY_NONE, lambda *args: True)
        self.raw = sock
        self.raw.setblocking(False)
        self.timeout = timeout
        self.conn = PyOpenSSL.Connection(ctx, sock)
        self.conn.set_tlsext_host_name(server_name.encode())
        self.conn.set_connect_state()
        self._retry(self.conn.do_handshake)

    def _retry(self, fn, *args):
        deadline = time.monotonic() + (self.timeout or 5)
        while True:
            try:
                return fn(*args)
            except PyOpenSSL.WantReadError:
                want = ([self.raw], [])
            except PyOpenSSL.WantWriteError:
                want = ([], [self.raw])
            left = deadline - time.monotonic()
            if left <= 0 or not any(select.select(want[0], want[1], [], left)[:2]):
                raise socket.timeout("TLS timeout")

    def settimeout(self, t):
        self.timeout = t

    def sendall(self, data):
        view = memoryview(data)
        while view:
            n = self._retry(self.conn.send, view.tobytes())
            view = view[n:]

    def recv(self, n):
        try:
            return self._retry(self.conn.recv, n)
        except (PyOpenSSL.ZeroReturnError, PyOpenSSL.SysCallError):
            return b""

    def close(self):
        self.raw.close()

    def exporter(self) -> bytes:
        return self.conn.export_keying_material(b"EXPORTER-Channel-Binding", 32)


class SaslDetails(ServerCase):
    config = base_config()

    def tls_stream(self, direct=False) -> RawStream:
        port = self.srv.direct_tls_port if direct else self.srv.c2s_port
        rs = RawStream(port, direct_tls=direct)
        if direct:
            features = rs.open_stream()
        else:
            self.assertIsNotNone(rs.open_stream())
            features = rs.starttls()
        self.assertIsNotNone(features)
        rs.features = features
        return rs

    def scram(self, mech, user, password, **kw) -> Scram:
        rs = self.tls_stream()
        try:
            s = Scram(rs, mech, user, password, **kw)
            s.run()
            return s
        finally:
            rs.close()

    def test_unknown_user_is_indistinguishable_in_scram(self):
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            with self.subTest(mech=mech):
                known_wrong = self.scram(mech, "alice", "wrong password")
                known_again = self.scram(mech, "alice", "wrong password")
                unknown = self.scram(mech, "nobody-at-all", "wrong password")
                unknown_again = self.scram(mech, "nobody-at-all", "wrong password")
                other_unknown = self.scram(mech, "someone-else", "wrong password")
                for s in (known_wrong, unknown, unknown_again, other_unknown):
                    self.assertIsNotNone(s.server_first, "no challenge for %s" % s.user)
                k, u = parse_attrs(known_wrong.server_first), parse_attrs(unknown.server_first)
                # Same shape: same attributes, same iteration count, same salt length.
                self.assertEqual(sorted(k), sorted(u))
                self.assertEqual(k["i"], u["i"])
                self.assertEqual(len(base64.b64decode(k["s"])), len(base64.b64decode(u["s"])))
                # Stable salts: a real record keeps its salt, and so does a fake one...
                self.assertEqual(k["s"], parse_attrs(known_again.server_first)["s"])
                self.assertEqual(u["s"], parse_attrs(unknown_again.server_first)["s"])
                # ...and fake ones differ per name, like real ones.
                self.assertNotEqual(u["s"], parse_attrs(other_unknown.server_first)["s"])
                # The same failure, byte for byte.
                self.assertEqual(known_wrong.outcome, "failure")
                self.assertEqual(unknown.outcome_xml, known_wrong.outcome_xml)
                self.assertIn("<not-authorized", unknown.outcome_xml)
        # The real password still works (the failures above are under every limit).
        ok = self.scram("SCRAM-SHA-256", "alice", PASSWORD)
        self.assertEqual(ok.outcome, "success")
        self.assertTrue(ok.server_verified, "server signature (v=) did not verify")

    def test_scram_plain_mechanisms_verify_both_ways(self):
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            with self.subTest(mech=mech):
                s = self.scram(mech, "bob", PASSWORD)
                self.assertEqual(s.outcome, "success", s.outcome_xml)
                self.assertTrue(s.server_verified)

    def test_plus_with_tls_unique_over_tls12(self):
        for direct in (False, True):
            port = self.srv.direct_tls_port if direct else self.srv.c2s_port
            for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
                with self.subTest(mech=mech, direct=direct):
                    rs = TlsUniqueStream(port, direct_tls=direct)
                    try:
                        if direct:
                            features = rs.open_stream()
                        else:
                            self.assertIsNotNone(rs.open_stream())
                            features = rs.starttls()
                        self.assertEqual(rs.sock.version(), "TLSv1.2")
                        # XEP-0440 advertises the binding type of this connection.
                        self.assertIn("<channel-binding type='tls-unique'", features)
                        self.assertIn(">%s<" % mech, features)
                        s = Scram(rs, mech, "bob", PASSWORD, cb_type="tls-unique",
                                  cb_data=rs.channel_binding())
                        self.assertTrue(s.run(), s.outcome_xml)
                        self.assertTrue(s.server_verified)
                        self.assertIsNotNone(rs.open_stream())
                        self.assertTrue(rs.bind().startswith("bob@localhost/"))
                    finally:
                        rs.close()

    def test_plus_rejects_foreign_binding_data(self):
        # A man in the middle terminating TLS has different binding data (RFC 5802 §6).
        self.foreign_binding_attempt()

    @unittest.skipIf(PyOpenSSL is None, "pyOpenSSL is needed for tls-exporter")
    def test_plus_with_tls_exporter_over_tls13(self):
        for direct in (False, True):
            for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
                with self.subTest(mech=mech, direct=direct):
                    port = self.srv.direct_tls_port if direct else self.srv.c2s_port
                    rs = RawStream(port)
                    try:
                        if not direct:
                            self.assertIsNotNone(rs.open_stream())
                            self.assertTrue(rs.send("<starttls xmlns='%s'/>" % NS_TLS))
                            self.assertIsNotNone(rs.read_until("<proceed"))
                            self.assertIsNotNone(rs.read_until(">"))
                            rs.pending = b""
                        rs.sock = _PyOpenSSLSocket(rs.sock, "localhost", 5)
                        features = rs.open_stream()
                        self.assertIsNotNone(features)
                        self.assertIn("<channel-binding type='tls-exporter'", features)
                        s = Scram(rs, mech, "bob", PASSWORD, cb_type="tls-exporter",
                                  cb_data=rs.sock.exporter())
                        self.assertTrue(s.run(), s.outcome_xml)
                        self.assertTrue(s.server_verified)
                    finally:
                        rs.close()

    def test_plus_with_a_binding_type_the_connection_lacks(self):
        # tls-unique is undefined for TLS 1.3 (RFC 9266 §3); the server offers tls-exporter.
        rs = self.tls_stream()
        try:
            self.assertEqual(rs.sock.version(), "TLSv1.3")
            s = Scram(rs, "SCRAM-SHA-256-PLUS", "bob", PASSWORD, cb_type="tls-unique",
                      cb_data=rs.sock.get_channel_binding("tls-unique") or b"x")
            self.assertFalse(s.run())
            self.assertEqual(s.outcome, "failure")
        finally:
            rs.close()

    def test_y_flag_is_refused_when_plus_was_offered(self):
        # RFC 5802 §6: "y" means the client could bind but believes the server cannot. The
        # server offered -PLUS, so someone stripped it: fail, even with the right password.
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            with self.subTest(mech=mech):
                s = self.scram(mech, "bob", PASSWORD, flag="y")
                self.assertEqual(s.outcome, "failure")
                self.assertIn("<not-authorized", s.outcome_xml)

    def test_binding_flag_p_on_the_plain_mechanism_is_malformed(self):
        s = self.scram("SCRAM-SHA-256", "bob", PASSWORD, cb_type="tls-exporter")
        self.assertEqual(s.outcome, "failure")
        self.assertIsNone(s.server_first)


class ParallelGuessing(ServerCase):
    # The per-account limit must hold for attempts opened side by side on many connections,
    # not only for one after the other.
    config = base_config(**{"sasl.max_failures_per_account": 3})

    def condition(self, outcome_xml: str) -> str:
        m = re.search(r"<failure[^>]*><([a-z-]+)", outcome_xml or "")
        return m.group(1) if m else "success" if "<success" in (outcome_xml or "") else "?"

    def test_parallel_scram_exchanges_get_no_extra_guesses(self):
        streams, exchanges = [], []
        try:
            for i in range(8):
                rs = RawStream(self.srv.c2s_port)
                self.assertIsNotNone(rs.open_stream())
                self.assertIsNotNone(rs.starttls())
                streams.append(rs)
                # The last one knows the password: it must not get in either once the
                # others have used up the limit.
                exchanges.append(Scram(rs, "SCRAM-SHA-256", "alice",
                                       PASSWORD if i == 7 else "guess %d" % i))
            # Every exchange is opened before any of them fails...
            for x in exchanges:
                self.assertEqual(x.first(), "challenge")
            # ...then the proofs arrive one after the other.
            outcomes = []
            for x in exchanges:
                x.final()
                outcomes.append(self.condition(x.outcome_xml))
        finally:
            for rs in streams:
                rs.close()
        self.assertEqual(outcomes, ["not-authorized"] * 3 + ["temporary-auth-failure"] * 5)

    def test_parallel_plain_attempts_get_no_extra_guesses(self):
        streams = []
        try:
            for i in range(8):
                rs = RawStream(self.srv.c2s_port)
                self.assertIsNotNone(rs.open_stream())
                self.assertIsNotNone(rs.starttls())
                streams.append(rs)
            # All sent before any answer: the password checks run in parallel off the loop.
            for i, rs in enumerate(streams):
                rs.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                        % (NS_SASL, b64("\0bob\0guess %d" % i)))
            outcomes = []
            for rs in streams:
                m = rs.read_match(SASL_OUTCOME_RX, timeout=10)
                self.assertIsNotNone(m)
                outcomes.append(self.condition(m.group(0)))
        finally:
            for rs in streams:
                rs.close()
        self.assertEqual(sorted(outcomes),
                         ["not-authorized"] * 3 + ["temporary-auth-failure"] * 5)
        # And the right password is refused now as well.
        self.assertFalse(self.plain_login_works("bob"))


# --- issue 10 point 5: caps before login, one password check per stream ------------------------

def refused_at_once(port: int) -> bool:
    """True if the server closes a new connection without sending anything."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(stream_header().encode())
        s.settimeout(2)
        try:
            return s.recv(4096) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
    finally:
        s.close()


class PreAuthCaps(ServerCase):
    config = base_config(**{"limits.max_unauthenticated_per_address": 5,
                            "limits.max_tls_handshakes_per_address": 2})

    def test_unauthenticated_connections_per_address(self):
        logged_in = self.login("alice")  # holds no "unauthenticated" slot any more
        holders = []
        try:
            for _ in range(5):
                rs = RawStream(self.srv.c2s_port)
                self.assertIsNotNone(rs.open_stream())
                holders.append(rs)
            start = time.monotonic()
            self.assertTrue(refused_at_once(self.srv.c2s_port))
            self.assertTrue(refused_at_once(self.srv.direct_tls_port))
            self.assertLess(time.monotonic() - start, 2)
            # The logged-in stream is untouched.
            self.assertTrue(logged_in.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/>"
                                           "</iq>"))
            self.assertIsNotNone(logged_in.read_match(r"<iq[^>]*id='p'", timeout=5))
            # One slot frees up, one more connection gets in.
            holders.pop().close()
            deadline = time.monotonic() + 5
            rs = None
            while time.monotonic() < deadline:
                rs = RawStream(self.srv.c2s_port)
                if rs.open_stream(timeout=2) is not None:
                    break
                rs.close()
                rs = None
                time.sleep(0.05)
            self.assertIsNotNone(rs, "no slot after one holder left")
            holders.append(rs)
        finally:
            for rs in holders:
                rs.close()
            logged_in.close()
        self.assertIn("connections refused over the [limits] caps", self.srv.log_contents())
        self.assert_alive()

    def test_tls_handshakes_in_progress(self):
        # Two direct-TLS connections that never send a ClientHello hold both handshake slots.
        stalled = [socket.create_connection(("127.0.0.1", self.srv.direct_tls_port), timeout=5)
                   for _ in range(2)]
        try:
            time.sleep(0.2)
            self.assertTrue(refused_at_once(self.srv.direct_tls_port))
            # STARTTLS is refused with <failure/> while they wait.
            rs = RawStream(self.srv.c2s_port)
            try:
                self.assertIsNotNone(rs.open_stream())
                self.assertTrue(rs.send("<starttls xmlns='%s'/>" % NS_TLS))
                self.assertIsNotNone(rs.read_until("<failure xmlns='%s'/>" % NS_TLS, 5))
                self.assertTrue(rs.wait_closed(5))
            finally:
                rs.close()
        finally:
            for s in stalled:
                s.close()
        self.assert_alive()


class PreAuthCapsReload(ServerCase):
    """An admin under a connection flood lowers the caps with SIGHUP, no restart."""
    config = base_config(**{"limits.max_unauthenticated_per_address": 6})

    def test_lowered_cap_applies_after_sighup(self):
        holders = []
        try:
            for _ in range(3):
                rs = RawStream(self.srv.c2s_port)
                self.assertIsNotNone(rs.open_stream())
                holders.append(rs)
            self.srv.set_config("limits.max_unauthenticated_per_address", 3)
            self.srv.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while "SIGHUP: reloading" not in self.srv.log_contents():
                self.assertLess(time.monotonic(), deadline, "no reload" + self.log_hint())
                time.sleep(0.05)
            # Three held, cap now three: the fourth is closed at accept, which with the old
            # cap of six it would not have been.
            self.assertTrue(refused_at_once(self.srv.c2s_port))
            # The connections admitted under the old cap are untouched.
            self.assertFalse(holders[0].wait_closed(0.3))
            self.assertIsNotNone(holders[0].starttls())
        finally:
            for rs in holders:
                rs.close()
        self.assert_alive()


class SaslBounds(ServerCase):
    config = base_config(**{"sasl.max_failures_per_address": 10,
                            "sasl.max_failures_per_account": 1000})

    def test_pipelined_auth_abort_pairs_count_and_queue_nothing(self):
        rs = RawStream(self.srv.c2s_port)
        try:
            self.assertIsNotNone(rs.open_stream())
            self.assertIsNotNone(rs.starttls())
            pair = ("<auth xmlns='%s' mechanism='PLAIN'>%s</auth><abort xmlns='%s'/>"
                    % (NS_SASL, b64("\0bob\0" + PASSWORD), NS_SASL))
            self.assertTrue(rs.send(pair * 30))
            outcomes = []
            for _ in range(30):
                m = rs.read_match(SASL_OUTCOME_RX, timeout=10)
                if m is None:
                    break
                outcomes.append(m.group(0))
            # Each pair ends with <aborted/> (RFC 6120 §6.4.4); an <auth/> behind a check that
            # still runs waits for it instead of queueing another one on the hashing pool.
            self.assertEqual(len(outcomes), 30, outcomes[-3:])
            self.assertTrue(all("<aborted/>" in o for o in outcomes), outcomes)
            self.assertIsNone(rs.read_match(SASL_OUTCOME_RX, timeout=0.5))
        finally:
            rs.close()
        # The aborted and refused attempts counted: the right password is throttled now.
        self.assertFalse(self.plain_login_works("bob"))


class SaslMismatchesDoNotCount(ServerCase):
    config = base_config(**{"sasl.max_failures_per_address": 3,
                            "sasl.max_failures_per_account": 3})

    def test_channel_binding_mismatches_never_lock_out(self):
        # Ten -PLUS exchanges whose binding data does not match: the proof is never checked,
        # so they are no password guesses (an old client falling back must not lock itself out).
        for _ in range(10):
            self.foreign_binding_attempt()
        self.assertTrue(self.plain_login_works("bob"), "locked out by mismatches")


class SaslWithoutPlus(ServerCase):
    # Without -PLUS on offer a client answering "y" did nothing wrong.
    config = base_config(**{"sasl.mechanisms": ["SCRAM-SHA-256", "SCRAM-SHA-1"]})

    def test_y_flag_is_accepted_when_plus_was_not_offered(self):
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
            with self.subTest(mech=mech):
                rs = RawStream(self.srv.c2s_port)
                try:
                    self.assertIsNotNone(rs.open_stream())
                    features = rs.starttls()
                    self.assertNotIn("-PLUS", features)
                    self.assertNotIn(">PLAIN<", features)
                    s = Scram(rs, mech, "bob", PASSWORD, flag="y")
                    self.assertTrue(s.run(), s.outcome_xml)
                    self.assertTrue(s.server_verified)
                finally:
                    rs.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
