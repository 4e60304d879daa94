#!/usr/bin/env python3
"""E2E over real sockets: memory and storage amplification (issue 10, point 2).

The attack from the issue: a stanza binds a prefix to a 7,000-character namespace URI once and
then holds thousands of empty elements in it (<x xmlns:p='urn:x:aaaa...'><p:a/><p:a/>...</x>).
Each element used to keep its own copy of the URI and was serialised with its own declaration:
one 187 KB message cost havend 231 MB (refused by the policy) to 944 MB (stored offline, as a
210 MB row the recipient could then never download). The variants checked here:

- before authentication: 100 connections each hold an unfinished stanza of this shape;
- after authentication: 20 logged-in connections each hold an unfinished stanza of 4,000
  elements, and a member's messages refused by the peer-support policy;
- an offline recipient: messages stored, then delivered when the recipient logs in;
- 30,000 elements in one stanza: over [limits] max_stanza_elements, a policy-violation.

Each measures the server's peak resident memory (VmHWM in /proc/PID/status) against bounds
stated below, the size of what was stored, and that the recipient still logs in and receives
everything. On the code before the fix every bound is exceeded many times over.

Run by ctest (e2e.py.test_amplification); by hand: HAVEND=build/havend
HAVENCTL=build/havenctl /usr/bin/python3 tests/e2e/test_amplification.py -v
"""

import os
import re
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import RawStream, TestServer, stream_header  # noqa: E402

PASSWORD = "correct horse battery"
URI = "urn:x:" + "a" * 7000
MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    with open("/proc/%d/status" % pid, encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s in /proc/%d/status" % (field, pid))


def payload(elements: int) -> str:
    return "<x xmlns:p='%s'>%s</x>" % (URI, "<p:a/>" * elements)


def message(to: str, elements: int, body: str = "hi") -> str:
    return "<message to='%s' type='chat'><body>%s</body>%s</message>" % (to, body,
                                                                        payload(elements))


def data_dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


class Amplification(unittest.TestCase):
    def start(self, peersupport: bool, users, extra=None):
        config = {"peersupport.enabled": peersupport, "log.level": "info"}
        config.update(extra or {})
        self.server = TestServer(config)
        self.addCleanup(self.server.close)
        for local in users:
            self.server.add_user(local, PASSWORD, "member")
        self.server.start()
        return self.server

    def login(self, local: str, resource: str = None) -> RawStream:
        s = RawStream(self.server.c2s_port)
        self.addCleanup(s.close)
        self.assertIsNotNone(s.login(local, PASSWORD, resource=resource), "login " + local)
        return s

    def peak_growth_mib(self, baseline_kib: int) -> float:
        return (status_kib(self.server.proc.pid, "VmHWM") - baseline_kib) / 1024

    def baseline(self) -> int:
        return status_kib(self.server.proc.pid, "VmRSS")

    def assert_alive(self):
        """A fresh login and a ping on it: the server still works."""
        s = self.login("carol")
        self.assertTrue(s.send("<iq type='get' id='alive'><ping xmlns='urn:xmpp:ping'/></iq>"))
        self.assertIsNotNone(s.read_match(r"<iq[^>]*id='alive'", timeout=10))

    def test_pre_auth_unfinished_stanzas(self):
        # 100 connections, each in the middle of a pre-auth stanza (8 KiB cap, 128 elements):
        # 7 KB of URI plus 120 elements. Each element used to copy the URI (840 KB per
        # connection, 84 MB in all); bound: 25 MiB of growth in all.
        self.start(False, ["carol"], {"limits.max_unauthenticated_per_address": 200})
        base = self.baseline()
        chunk = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' xmlns:p='%s'>%s" % (
            URI, "<p:a/>" * 120)
        self.assertLess(len(chunk), 8192)
        streams = []
        for _ in range(100):
            s = RawStream(self.server.c2s_port)
            self.addCleanup(s.close)
            self.assertIsNotNone(s.open_stream())
            self.assertTrue(s.send(chunk))
            streams.append(s)
        # The server has read every chunk once a ping on a new stream is answered.
        self.assert_alive()
        growth = self.peak_growth_mib(base)
        print("pre-auth: peak growth %.1f MiB for 100 unfinished stanzas" % growth)
        self.assertLess(growth, 25)

    def test_post_auth_unfinished_and_refused(self):
        # Peer-support on: member to member is refused by the policy.
        users = ["alice", "bob", "carol"] + ["m%d" % i for i in range(20)]
        self.start(True, users)
        refused_by = self.login("alice")
        self.login("bob")
        holders = [self.login("m%d" % i) for i in range(20)]
        base = self.baseline()
        # 20 connections each hold an unfinished stanza of 4,000 elements (24 KB + 7 KB URI).
        # Before: 4,000 x 7 KB = 28 MB each, 560 MB in all. Bound: 40 MiB of growth.
        for s in holders:
            self.assertTrue(s.send("<message to='bob@localhost'><x xmlns:p='%s'>%s"
                                   % (URI, "<p:a/>" * 4000)))
        # 10 complete messages refused by the policy, each answered with an error.
        for i in range(10):
            self.assertTrue(refused_by.send(message("bob@localhost", 4000, "r%d" % i)))
        for i in range(10):
            self.assertIsNotNone(refused_by.read_match(r"<message[^>]*type='error'", timeout=10),
                                 "refusal %d" % i)
        self.assert_alive()
        growth = self.peak_growth_mib(base)
        print("post-auth: peak growth %.1f MiB (20 unfinished, 10 refused)" % growth)
        self.assertLess(growth, 40)

    def test_offline_recipient_still_logs_in(self):
        self.start(False, ["alice", "bob", "carol"])
        sender = self.login("alice")
        base = self.baseline()
        size_before = data_dir_bytes(self.server.data_dir)
        stanza = message("bob@localhost", 4000)
        for i in range(5):
            self.assertTrue(sender.send(message("bob@localhost", 4000, "m%d" % i)))
        # An IQ round trip after the messages: they have all been handled.
        self.assertTrue(sender.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"))
        self.assertIsNotNone(sender.read_match(r"<iq[^>]*id='p1'", timeout=20))
        growth = self.peak_growth_mib(base)
        stored = data_dir_bytes(self.server.data_dir) - size_before
        print("offline: peak growth %.1f MiB, %d bytes stored for 5 x %d-byte messages"
              % (growth, stored, len(stanza)))
        # Before: each row was 28 MB (a declaration per element). Bound: twice the wire size
        # (sealed, with delay stamps) plus SQLite's page slack.
        self.assertLess(stored, 5 * 2 * len(stanza) + 2 * MIB)
        self.assertLess(growth, 30)
        # The recipient logs in and receives all five, whole.
        bob = RawStream(self.server.c2s_port)
        self.addCleanup(bob.close)
        self.assertIsNotNone(bob.login("bob", PASSWORD))
        self.assertTrue(bob.send("<presence/>"))
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 5 and time.monotonic() < deadline:
            m = bob.read_match(r"<message\b.*?</message>", timeout=max(0.1,
                                                                     deadline - time.monotonic()))
            if m is None:
                break
            # Cut out of the stream, the fragment has no default namespace declared.
            el = ET.fromstring(m.group(0))
            body = el.find("body")
            x = el.find("x")
            self.assertIsNotNone(x, m.group(0)[:300])
            self.assertEqual(len(list(x)), 4000)
            self.assertTrue(all(c.tag == "{%s}a" % URI for c in x))
            got.append(body.text)
        self.assertEqual(got, ["m%d" % i for i in range(5)])

    def test_too_many_elements_is_policy_violation(self):
        # The 187 KB stanza from the issue: 30,000 elements, over max_stanza_elements (4096).
        self.start(False, ["alice", "bob", "carol"])
        s = self.login("alice")
        base = self.baseline()
        stanza = message("bob@localhost", 30000)
        self.assertGreater(len(stanza), 180000)
        s.send(stanza)
        self.assertIsNotNone(s.read_match(r"<policy-violation\b", timeout=10),
                             "the client reads the stream error")
        self.assert_alive()
        growth = self.peak_growth_mib(base)
        print("30,000 elements: peak growth %.1f MiB" % growth)
        self.assertLess(growth, 20)


if __name__ == "__main__":
    unittest.main()
