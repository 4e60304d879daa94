"""haven_testlib: a real havend in a temp dir for Python e2e tests, plus raw-socket XMPP helpers.

Standard library only (slixmpp is optional, see ensure_slixmpp and slixmpp_client). The
TestServer mirrors tests/e2e/harness/server.hpp: free loopback ports, one dev certificate per
process, a generated config, havenctl for accounts, bounded start/stop. ctest provides HAVEND,
HAVENCTL and HAVEN_SOURCE_DIR; HAVEN_KEEP_TMP keeps temp dirs and HAVEN_TEST_VERBOSE prints
the server log at teardown.
"""

import atexit
import base64
import ctypes
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple, Optional

NS_STREAMS = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"


def _env_set(name: str) -> bool:
    return bool(os.environ.get(name))


_servers_created = False


def ensure_slixmpp() -> None:
    """Re-runs this script under the system python when the current one lacks slixmpp.

    Debian ships slixmpp as python3-slixmpp for /usr/bin/python3, while a pyenv or venv python
    earlier on PATH does not see it. Call this at the top of a test script, before importing
    slixmpp and before creating any TestServer (exec would skip their cleanup).
    """
    try:
        import slixmpp  # noqa: F401  (only probing)
        return
    except ImportError:
        pass
    system = "/usr/bin/python3"
    if os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system):
        if _servers_created:
            raise ImportError("slixmpp missing in %s; call haven_testlib.ensure_slixmpp() at the "
                              "top of the script so it can switch to %s" % (sys.executable,
                                                                            system))
        os.execv(system, [system] + sys.argv)
    raise ImportError("slixmpp is not installed (apt-get install python3-slixmpp)")


# --- config helpers --------------------------------------------------------------------------

def toml_value(value) -> str:
    """A Python value as a TOML literal: str, bool, int, float or a list of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        out = ['"']
        for ch in value:
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append("\\u%04x" % ord(ch))
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    raise TypeError("no TOML form for %r" % (value,))


class RawToml(str):
    """A value written into the config verbatim (inline tables and the like)."""


def free_loopback_port() -> int:
    """A free loopback port (bind port 0, read, close); another process may still take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


_cert_dir: Optional[str] = None


def dev_cert() -> tuple:
    """(cert, key) paths of a dev certificate for localhost, minted once per process."""
    global _cert_dir
    if _cert_dir is None:
        d = tempfile.mkdtemp(prefix="haven-e2e-cert-")
        script = os.path.join(os.environ.get("HAVEN_SOURCE_DIR", ""), "certs", "make-dev-cert.sh")
        if os.environ.get("HAVEN_SOURCE_DIR") and os.path.exists(script):
            cmd = ["bash", script, d, "localhost"]
        else:
            cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=localhost",
                   "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                   "-keyout", os.path.join(d, "localhost.key"),
                   "-out", os.path.join(d, "localhost.crt")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("minting the dev certificate failed: " + r.stderr + r.stdout)
        _cert_dir = d
        if not _env_set("HAVEN_KEEP_TMP"):
            atexit.register(shutil.rmtree, d, True)
    return os.path.join(_cert_dir, "localhost.crt"), os.path.join(_cert_dir, "localhost.key")


def _binary(var: str, name: str) -> str:
    if os.environ.get(var):
        return os.environ[var]
    src = os.environ.get("HAVEN_SOURCE_DIR")
    if src and os.path.exists(os.path.join(src, "build", name)):
        return os.path.join(src, "build", name)
    raise RuntimeError("%s is not set (ctest sets it; by hand: export %s=build/%s)"
                       % (var, var, name))


def _die_with_parent() -> None:
    # A test killed by ctest's timeout must not leave havend holding its ports.
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _status(returncode: int) -> int:
    # Same convention as the C++ harness and the shell: 128 + signal when killed.
    return 128 - returncode if returncode < 0 else returncode


class RunResult(NamedTuple):
    exit_code: int
    out: str
    err: str


# --- the server ------------------------------------------------------------------------------

class TestServer:
    """One havend process and its temp dir. Use as a context manager or call close().

    config maps "section.key" to a Python value (see toml_value; RawToml for verbatim, None to
    drop a harness default), e.g. {"sasl.mechanisms": ["PLAIN"], "registration.enabled": True}.
    The section is everything before the last dot. extra_toml is appended verbatim and must not
    reopen a table the harness generates.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, config: Optional[dict] = None, extra_toml: str = "",
                 domain: str = "localhost", direct_tls: bool = True,
                 start_timeout: float = 10.0, stop_timeout: float = 10.0):
        global _servers_created
        _servers_created = True
        self.domain = domain
        self.extra_toml = extra_toml
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.config = dict(config or {})
        self.havend = _binary("HAVEND", "havend")
        self.havenctl = _binary("HAVENCTL", "havenctl")
        self.cert_path, self.key_path = dev_cert()
        self.dir = tempfile.mkdtemp(prefix="haven-e2e-")
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.config_path = os.path.join(self.dir, "haven.toml")
        self.log_path = os.path.join(self.dir, "havend.log")
        self.c2s_port = free_loopback_port()
        self.direct_tls_port = 0
        while direct_tls and self.direct_tls_port in (0, self.c2s_port):
            self.direct_tls_port = free_loopback_port()
        self.proc: Optional[subprocess.Popen] = None
        self.last_exit_status: Optional[int] = None
        self._starts = 0
        self._closed = False
        self.write_config()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # config ---------------------------------------------------------------------------------

    def write_config(self) -> None:
        # Core keys spelled out so a changed server default cannot change what tests exercise.
        # Module options are left out except peersupport.enabled (see below); tests that rely
        # on another module option set it via config.
        entries = [
            ("server", "domain", self.domain),
            ("server", "data_dir", self.data_dir),
            ("tls", "cert", self.cert_path),
            ("tls", "key", self.key_path),
            ("c2s", "address", "127.0.0.1"),
            ("c2s", "port", self.c2s_port),
            ("c2s", "direct_tls_port", self.direct_tls_port),
            ("c2s", "require_encryption", True),
            ("sasl", "scram_iterations", 4096),
            ("limits", "max_stanza_bytes", 262144),
            ("limits", "max_stanza_bytes_unauthenticated", 8192),
            ("limits", "unauthenticated_timeout_s", 30),
            ("registration", "enabled", False),
            ("log", "level", "debug"),
            # Standard-protocol tests run against a plain XMPP server; peer-support tests set
            # "peersupport.enabled": True.
            ("peersupport", "enabled", False),
        ]
        for dotted, value in self.config.items():
            section, _, key = dotted.rpartition(".")
            if not section or not key:
                raise ValueError("config key %r must be section.key" % dotted)
            for i, (s, k, _) in enumerate(entries):
                if (s, k) == (section, key):
                    entries[i] = (s, k, value)
                    break
            else:
                entries.append((section, key, value))
        lines = ["# Written by the e2e harness (tests/e2e/haven_testlib.py)."]
        sections = []
        for s, _, v in entries:
            if v is not None and s not in sections:
                sections.append(s)
        for section in sections:
            lines.append("\n[%s]" % section)
            for s, k, v in entries:
                if s == section and v is not None:
                    lines.append("%s = %s" % (k, v if isinstance(v, RawToml) else toml_value(v)))
        if self.extra_toml:
            lines.append("\n" + self.extra_toml)
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def set_config(self, key: str, value) -> None:
        """Sets one option and rewrites the config (takes effect on the next start)."""
        self.config[key] = value
        self.write_config()

    def jid(self, local: str) -> str:
        return "%s@%s" % (local, self.domain)

    # helper binaries ------------------------------------------------------------------------

    def run_ctl(self, args, stdin: str = "", timeout: float = 60.0) -> RunResult:
        r = subprocess.run([self.havenctl, "--config", self.config_path] + list(args),
                           input=stdin, capture_output=True, text=True, timeout=timeout)
        return RunResult(_status(r.returncode), r.stdout, r.stderr)

    def check_config(self) -> RunResult:
        r = subprocess.run([self.havend, "--config", self.config_path, "--check-config"],
                           capture_output=True, text=True, timeout=60)
        return RunResult(_status(r.returncode), r.stdout, r.stderr)

    def add_user(self, local: str, password: str, role: str = "member") -> None:
        # No trailing newline: line readers and read-everything readers agree on the password.
        r = self.run_ctl(["user", "add", self.jid(local), "--role", role, "--password-stdin"],
                         stdin=password)
        if r.exit_code != 0:
            raise RuntimeError("havenctl user add %s exited %d: %s%s"
                               % (self.jid(local), r.exit_code, r.err, r.out))

    # process --------------------------------------------------------------------------------

    def start(self) -> None:
        """Spawns havend and waits until its listeners accept connections."""
        if self.running():
            raise RuntimeError("havend is already running")
        self._starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"--- harness: havend start #%d ---\n" % self._starts)
            log.flush()
            self.proc = subprocess.Popen([self.havend, "--config", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         close_fds=True, preexec_fn=_die_with_parent)
        self.last_exit_status = None
        ports = [p for p in (self.c2s_port, self.direct_tls_port) if p]
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self.running():
                raise RuntimeError("havend exited with status %s during startup; log tail:\n%s"
                                   % (self.last_exit_status, self.log_tail()))
            if all(_port_accepts(p) for p in ports):
                return
            if time.monotonic() >= deadline:
                tail = self.log_tail()
                self.kill9()
                raise RuntimeError("havend did not accept connections on 127.0.0.1:%d within "
                                   "%.1f s; log tail:\n%s" % (self.c2s_port, self.start_timeout,
                                                              tail))
            time.sleep(0.02)

    def running(self) -> bool:
        if self.proc is None:
            return False
        rc = self.proc.poll()
        if rc is None:
            return True
        self.last_exit_status = _status(rc)
        self.proc = None
        return False

    def wait_exit(self, timeout: float) -> Optional[int]:
        """Waits for the process to exit on its own; its status, or None on timeout."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        self.running()
        return self.last_exit_status

    def stop(self) -> int:
        """SIGTERM, wait stop_timeout, then SIGKILL. Exit status (128 + signal when killed),
        or -1 when nothing was running."""
        if self.proc is None:
            return -1
        if not self.running():
            return self.last_exit_status
        self.proc.send_signal(signal.SIGTERM)
        status = self.wait_exit(self.stop_timeout)
        if status is None:
            sys.stderr.write("[harness] havend ignored SIGTERM; sending SIGKILL\n")
            self.kill9()
            status = self.last_exit_status
        return status

    def kill9(self) -> None:
        if self.running():
            self.proc.kill()
            self.proc.wait()
            self.running()

    def restart(self) -> int:
        status = self.stop()
        self.start()
        return status

    def log_contents(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, timeout: float = 10.0) -> bool:
        """True once `text` appears in the log (polled every 50 ms, bounded by timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_contents():
                return True
            time.sleep(0.05)
        return text in self.log_contents()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_contents().rstrip("\n").split("\n")[-lines:])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc is not None:
            status = self.stop()
            if status != 0:
                sys.stderr.write("[harness] havend exited with status %s at teardown; log tail:"
                                 "\n%s\n" % (status, self.log_tail()))
        if _env_set("HAVEN_TEST_VERBOSE"):
            sys.stderr.write("[harness] havend log (%s):\n%s\n"
                             % (self.log_path, self.log_contents()))
        if _env_set("HAVEN_KEEP_TMP"):
            sys.stderr.write("[harness] kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# --- raw sockets -----------------------------------------------------------------------------

def stream_header(domain: str = "localhost") -> str:
    return ("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' "
            "xmlns:stream='%s'>" % (domain, NS_STREAMS))


def _no_verify_context() -> ssl.SSLContext:
    # Hostile-input tests care about the server's parser, not its certificate.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class RawStream:
    """Bytes to and from a server socket, with optional TLS. Reads are bounded by timeouts;
    whatever has arrived but was not consumed stays in .pending (bytes)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0,
                 direct_tls: bool = False, server_name: str = "localhost"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.pending = b""
        self.closed = False
        if direct_tls:
            self.tls_handshake(server_name, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def tls(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def tls_handshake(self, server_name: str = "localhost", timeout: float = 5.0) -> None:
        self.sock.settimeout(timeout)
        self.sock = _no_verify_context().wrap_socket(self.sock, server_hostname=server_name)

    def send(self, data, timeout: float = 5.0) -> bool:
        """Sends everything; False once the peer is gone."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            self.closed = True
            return False

    def _read_some(self, deadline: float) -> bool:
        """Appends one read to pending; False on timeout or close."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (OSError, ssl.SSLError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        self.pending += data
        return True

    def read_until(self, marker, timeout: float = 5.0) -> Optional[str]:
        """Everything up to and including marker (consumed), or None on timeout/close."""
        if isinstance(marker, str):
            marker = marker.encode("utf-8")
        deadline = time.monotonic() + timeout
        while True:
            i = self.pending.find(marker)
            if i >= 0:
                out, self.pending = self.pending[:i + len(marker)], self.pending[i + len(marker):]
                return out.decode("utf-8", errors="replace")
            if self.closed or not self._read_some(deadline):
                return None

    def read_match(self, pattern: str, timeout: float = 5.0) -> Optional[re.Match]:
        """First match of a regex (DOTALL) over the pending text, consumed through its end;
        None on timeout/close."""
        rx = re.compile(pattern.encode("utf-8"), re.DOTALL)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.pending)
            if m:
                self.pending = self.pending[m.end():]
                return re.match(pattern, m.group(0).decode("utf-8", errors="replace"), re.DOTALL)
            if self.closed or not self._read_some(deadline):
                return None

    def read_any(self, timeout: float = 5.0) -> Optional[str]:
        """Whatever is pending or arrives next (consumed), or None on timeout/close."""
        if not self.pending and not self._read_some(time.monotonic() + timeout):
            return None
        out, self.pending = self.pending, b""
        return out.decode("utf-8", errors="replace")

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """True once the peer closed or reset the connection; data read meanwhile is kept."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            if not self._read_some(deadline) and not self.closed:
                return False
        return True

    # XMPP conveniences ----------------------------------------------------------------------

    def open_stream(self, domain: str = "localhost", timeout: float = 5.0) -> Optional[str]:
        """Sends a stream header; returns the text up to </stream:features>."""
        if not self.send(stream_header(domain), timeout):
            return None
        return self.read_until("</stream:features>", timeout)

    def starttls(self, domain: str = "localhost", timeout: float = 5.0) -> Optional[str]:
        """STARTTLS (RFC 6120 §5), then a new stream; returns the new features."""
        if not self.send("<starttls xmlns='%s'/>" % NS_TLS, timeout):
            return None
        if self.read_until("<proceed", timeout) is None or self.read_until(">", timeout) is None:
            return None
        self.pending = b""  # RFC 6120 §5.4.3.3: nothing more arrives in the clear
        self.tls_handshake(domain, timeout)
        return self.open_stream(domain, timeout)

    def sasl_plain(self, local: str, password: str, timeout: float = 5.0) -> bool:
        """SASL PLAIN (RFC 4616); True on <success/>. Does not restart the stream."""
        token = base64.b64encode(("\0%s\0%s" % (local, password)).encode("utf-8")).decode()
        if not self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token),
                         timeout):
            return False
        m = self.read_match(r"<(success|failure)\b[^>]*/>|<(success|failure)\b.*?</\2>",
                            timeout)
        return m is not None and (m.group(1) or m.group(2)) == "success"

    def bind(self, resource: Optional[str] = None, timeout: float = 5.0) -> Optional[str]:
        """Resource binding (RFC 6120 §7); returns the full JID."""
        res = "<resource>%s</resource>" % resource if resource else ""
        if not self.send("<iq type='set' id='bind-1'><bind xmlns='%s'>%s</bind></iq>"
                         % (NS_BIND, res), timeout):
            return None
        reply = self.read_until("</iq>", timeout)
        m = re.search(r"<jid>([^<]+)</jid>", reply or "")
        return m.group(1) if m else None

    def login(self, local: str, password: str, domain: str = "localhost",
              resource: Optional[str] = None, timeout: float = 5.0) -> Optional[str]:
        """STARTTLS (unless already TLS), SASL PLAIN, bind; returns the full JID or None."""
        if self.open_stream(domain, timeout) is None:
            return None
        if not self.tls and self.starttls(domain, timeout) is None:
            return None
        if not self.sasl_plain(local, password, timeout):
            return None
        if self.open_stream(domain, timeout) is None:
            return None
        return self.bind(resource, timeout)


# --- slixmpp ---------------------------------------------------------------------------------

def slixmpp_client(server: TestServer, local: str, password: str,
                   resource: Optional[str] = None, direct_tls: bool = False,
                   sasl_mech: Optional[str] = None):
    """A slixmpp ClientXMPP for local@domain that trusts the test server's dev certificate.

    Connect it with client.connect(address, use_ssl=...) using slixmpp_address(server,
    direct_tls), or simply call connect_slixmpp(). sasl_mech forces one SASL mechanism
    (e.g. "SCRAM-SHA-256"); by default slixmpp tries the server's list in its own order.
    """
    ensure_slixmpp()  # raises (never execs) here when a TestServer already exists
    import slixmpp

    jid = server.jid(local) + ("/" + resource if resource else "")
    client = slixmpp.ClientXMPP(jid, password, sasl_mech=sasl_mech)
    # Verify against the dev cert instead of switching verification off: a broken TLS setup
    # in havend should fail these tests.
    client.ssl_context = ssl.create_default_context(cafile=server.cert_path)
    client.haven_direct_tls = direct_tls
    return client


def slixmpp_address(server: TestServer, direct_tls: bool = False) -> tuple:
    return ("127.0.0.1", server.direct_tls_port if direct_tls else server.c2s_port)


def connect_slixmpp(client, server: TestServer, timeout: float = 10.0) -> bool:
    """Connects and waits (running the asyncio loop) for session_start; False on failure."""
    import asyncio

    loop = client.loop
    started = loop.create_future()

    def done(result):
        if not started.done():
            started.set_result(result)

    client.add_event_handler("session_start", lambda _: done(True))
    # "failed_auth" fires per mechanism and slixmpp goes on to the next; only this one is final.
    client.add_event_handler("failed_all_auth", lambda _: done(False))
    client.add_event_handler("connection_failed", lambda _: done(False))
    client.add_event_handler("disconnected", lambda _: done(False))
    direct = getattr(client, "haven_direct_tls", False)
    client.connect(slixmpp_address(server, direct), use_ssl=direct, force_starttls=not direct)
    try:
        return loop.run_until_complete(asyncio.wait_for(started, timeout))
    except asyncio.TimeoutError:
        return False
