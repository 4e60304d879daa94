#!/usr/bin/env python3
"""E2E: havenctl's admin actions take effect at once on a running havend (issue 11).

havenctl reaches the running server over its control socket (a Unix socket, mode 0600, in
data_dir) and returns only when the change has taken effect, so each test observes the effect
on an online client right after havenctl returned, with no sleep in between; the server's own
two-second database poll would be too late for most of them (a role change used to be refused
for up to two seconds, a deleted user stayed online). Also: the socket's mode, a second havend
on the same data refused, hostile input on the socket, and the database fallback when no
server runs.

Run by ctest (e2e.py.test_control_socket); by hand: HAVEND=build/havend HAVENCTL=build/havenctl
/usr/bin/python3 tests/e2e/test_control_socket.py -v
"""

import os
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from haven_testlib import RawStream, TestServer  # noqa: E402

PASSWORD = "correct horse battery"


class ControlSocketCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TestServer({"peersupport.enabled": True})
        for local in ("alice", "ben", "carol", "dora", "eve"):
            cls.srv.add_user(local, PASSWORD)
        cls.srv.add_user("sam", PASSWORD, role="supporter")
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def hint(self) -> str:
        return "\nserver log tail:\n" + self.srv.log_tail()

    def login(self, local: str, resource: str = "r", password: str = PASSWORD) -> RawStream:
        rs = RawStream(self.srv.direct_tls_port, direct_tls=True)
        self.assertIsNotNone(rs.login(local, password, resource=resource, timeout=10),
                             "login of %s failed%s" % (local, self.hint()))
        # An interested resource (RFC 6121 §2.1.6): roster pushes come only after a get.
        self.assertTrue(rs.send("<iq type='get' id='roster-1'><query xmlns='jabber:iq:roster'/>"
                                "</iq>"))
        self.assertIsNotNone(rs.read_match(r"<iq[^>]*id='roster-1'", timeout=5))
        self.assertTrue(rs.send("<presence/>"))
        return rs

    def ctl(self, *args, stdin: str = ""):
        start = time.monotonic()
        r = self.srv.run_ctl(list(args), stdin=stdin)
        return r, time.monotonic() - start

    def socket_path(self) -> str:
        return os.path.join(self.srv.data_dir, "control.sock")

    def raw_request(self, data: bytes, timeout: float = 5.0) -> bytes:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.socket_path())
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except (ConnectionResetError, BrokenPipeError):
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()


class AdminActionsAtOnce(ControlSocketCase):
    def test_role_change_applies_before_havenctl_returns(self):
        alice = self.login("alice")
        ben = self.login("ben")
        try:
            r, took = self.ctl("user", "role", "ben@localhost", "supporter")
            self.assertEqual(r.exit_code, 0, r.err)
            self.assertIn("ben@localhost is now supporter", r.out)
            self.assertLess(took, 5)
            # At once: ben, a supporter now, opens a conversation with alice.
            self.assertTrue(ben.send("<message to='alice@localhost' type='chat' id='m1'>"
                                     "<body>hello from ben</body></message>"))
            self.assertIsNotNone(alice.read_until("hello from ben", 5),
                                 "the new supporter was refused" + self.hint())
            self.assertNotIn("type='error'", ben.pending.decode("utf-8", "replace"))
            # Demotion: the grant it opened ends, alice's roster loses ben at once.
            r, _ = self.ctl("user", "role", "ben@localhost", "member")
            self.assertEqual(r.exit_code, 0, r.err)
            self.assertIsNotNone(
                alice.read_match(r"<item[^>]*jid='ben@localhost'[^>]*subscription='remove'"
                                 r"|<item[^>]*subscription='remove'[^>]*jid='ben@localhost'",
                                 timeout=1),
                "no roster removal after the demotion" + self.hint())
        finally:
            alice.close()
            ben.close()

    def test_new_supporter_account_works_at_once(self):
        r, _ = self.ctl("user", "add", "fin@localhost", "--role", "supporter",
                        "--password-stdin", stdin=PASSWORD)
        self.assertEqual(r.exit_code, 0, r.err)
        self.assertIn("created fin@localhost (supporter)", r.out)
        dora = self.login("dora")
        fin = self.login("fin")
        try:
            self.assertTrue(fin.send("<message to='dora@localhost' type='chat' id='f1'>"
                                     "<body>hello from fin</body></message>"))
            self.assertIsNotNone(dora.read_until("hello from fin", 5), self.hint())
        finally:
            dora.close()
            fin.close()
        r, _ = self.ctl("user", "add", "fin@localhost", "--password-stdin", stdin=PASSWORD)
        self.assertEqual(r.exit_code, 1)
        self.assertIn("account exists", r.err)

    def test_grant_end_reaches_both_clients_before_return(self):
        sam = self.login("sam")
        carol = self.login("carol")
        try:
            self.assertTrue(sam.send("<message to='carol@localhost' type='chat' id='g1'>"
                                     "<body>hi carol</body></message>"))
            self.assertIsNotNone(carol.read_until("hi carol", 5), self.hint())
            r, _ = self.ctl("grant", "end", "sam@localhost", "carol@localhost")
            self.assertEqual(r.exit_code, 0, r.err)
            self.assertIn("ended the conversation grant", r.out)
            # Already sent when havenctl returned: a short read finds it (the poll would take
            # up to two seconds).
            self.assertIsNotNone(
                carol.read_match(r"<item[^>]*subscription='remove'", timeout=0.5),
                "no roster removal pushed to the member" + self.hint())
            r, _ = self.ctl("grant", "end", "sam@localhost", "carol@localhost")
            self.assertEqual(r.exit_code, 1)
            self.assertIn("no such grant", r.err)
        finally:
            sam.close()
            carol.close()

    def test_delete_closes_the_sessions(self):
        self.srv.add_user("gus", PASSWORD)  # through the control socket: the server runs
        gus = self.login("gus")
        try:
            r, _ = self.ctl("user", "delete", "gus@localhost")
            self.assertEqual(r.exit_code, 0, r.err)
            self.assertIn("deleted gus@localhost", r.out)
            self.assertIsNotNone(gus.read_until("<not-authorized", 1),
                                 "the deleted user's stream is still open" + self.hint())
            self.assertTrue(gus.wait_closed(5))
        finally:
            gus.close()
        again = RawStream(self.srv.direct_tls_port, direct_tls=True)
        try:
            self.assertIsNone(again.login("gus", PASSWORD, timeout=5))
        finally:
            again.close()

    def test_password_change_closes_every_session(self):
        one = self.login("eve", "one")
        two = self.login("eve", "two")
        try:
            r, _ = self.ctl("user", "passwd", "eve@localhost", "--password-stdin",
                            stdin="a new secret")
            self.assertEqual(r.exit_code, 0, r.err)
            self.assertIn("password changed for eve@localhost; 2 session(s) closed", r.out)
            for rs in (one, two):
                self.assertIsNotNone(rs.read_until("<reset", 1), self.hint())
                self.assertTrue(rs.wait_closed(5))
        finally:
            one.close()
            two.close()
        old = RawStream(self.srv.direct_tls_port, direct_tls=True)
        try:
            self.assertIsNone(old.login("eve", PASSWORD, timeout=5))
        finally:
            old.close()
        self.login("eve", "three", password="a new secret").close()


class SocketItself(ControlSocketCase):
    def test_mode_and_owner(self):
        st = os.stat(self.socket_path())
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.geteuid())

    def test_hostile_requests(self):
        self.assertEqual(self.raw_request(b"user frobnicate x\n\n"),
                         b"error unknown command: user frobnicate\n")
        self.assertEqual(self.raw_request(b"user delete\n\n"),
                         b"error wrong number of arguments for user delete\n")
        self.assertTrue(self.raw_request(b"user delete nobody\n\n").startswith(b"error no such"))
        # More than 4 KiB without a complete request: dropped without an answer.
        self.assertEqual(self.raw_request(b"x" * 20000), b"")
        # A request that never ends: the server hangs up after its deadline, not never.
        start = time.monotonic()
        self.assertEqual(self.raw_request(b"user ", timeout=15), b"")
        self.assertLess(time.monotonic() - start, 14)
        # The server still serves clients and commands.
        self.login("alice", "after").close()
        r, _ = self.ctl("user", "role", "dora@localhost", "member")
        self.assertEqual(r.exit_code, 0, r.err)
        # Passwords are never logged; commands are logged by their verb only.
        log = self.srv.log_contents()
        self.assertNotIn("a new secret", log)
        self.assertIn("control: user role", log)
        self.assertNotIn("dora@localhost is now", log)

    def test_second_server_on_the_same_data_is_refused(self):
        second = subprocess.run([self.srv.havend, "--config", self.srv.config_path],
                                capture_output=True, text=True, timeout=30)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn("another havend is running", second.stderr)
        self.assertTrue(self.srv.running())
        self.assertTrue(os.path.exists(self.socket_path()), "the second one removed the socket")


class FallbackWithoutServer(unittest.TestCase):
    def test_database_when_no_server_runs_and_stale_socket(self):
        srv = TestServer({"peersupport.enabled": True})
        try:
            srv.add_user("hal", PASSWORD)
            srv.start()
            path = os.path.join(srv.data_dir, "control.sock")
            self.assertTrue(os.path.exists(path))
            srv.kill9()  # leaves the socket file behind, like a crash
            self.assertTrue(os.path.exists(path))
            r = srv.run_ctl(["user", "role", "hal@localhost", "supporter"])
            self.assertEqual(r.exit_code, 0, r.err)
            self.assertIn("hal@localhost is now supporter", r.out)
            srv.start()  # replaces the stale socket
            r = srv.run_ctl(["user", "list"])
            self.assertIn("hal@localhost supporter", r.out)
            r = srv.run_ctl(["user", "role", "hal@localhost", "member"])
            self.assertEqual(r.exit_code, 0, r.err)
            self.assertIn("control: user role", srv.log_contents())
            srv.stop()
            self.assertFalse(os.path.exists(path), "a clean stop removes the socket")
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
