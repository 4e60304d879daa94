"""What the MUC end-to-end tests share (test_muc.py, test_muc_peersupport.py, test_groups.py):
names, stanza predicates over xml.etree.ElementTree, a raw-stream Client that queues parsed
stanzas, and what a join brought (Joined)."""

import itertools
import socket
import unittest
import ssl
import time
import xml.etree.ElementTree as ET
from typing import Callable, List, Optional
from xml.sax.saxutils import escape, quoteattr

from haven_testlib import RawStream, TestServer

PASSWORD = "correct horse battery"
DOMAIN = "localhost"
SERVICE = "groups." + DOMAIN
TIMEOUT = 5.0

NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = NS_MUC + "#user"
NS_ADMIN = NS_MUC + "#admin"
NS_OWNER = NS_MUC + "#owner"
NS_ROOMCONFIG = NS_MUC + "#roomconfig"
NS_ROOMINFO = NS_MUC + "#roominfo"
NS_DATA = "jabber:x:data"
NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_DELAY = "urn:xmpp:delay"
NS_OCCUPANT_ID = "urn:xmpp:occupant-id:0"
NS_PING = "urn:xmpp:ping"
NS_XML = "http://www.w3.org/XML/1998/namespace"
NS_VCARD = "vcard-temp"
NS_VERSION = "jabber:iq:version"
XML_LANG = "{%s}lang" % NS_XML

_seq = itertools.count(1)


def jid(local: str) -> str:
    return "%s@%s" % (local, DOMAIN)


def bare(j: Optional[str]) -> str:
    return (j or "").split("/", 1)[0]


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def q(tag: str, ns: str) -> str:
    return "{%s}%s" % (ns, tag)


def show(el: Optional[ET.Element]) -> str:
    if el is None:
        return "(none)"
    return ET.tostring(el, encoding="unicode")


def kind(el: ET.Element) -> str:
    return local_name(el.tag)


def is_presence(el, frm: Optional[str] = None, type_: Optional[str] = "*") -> bool:
    """A presence (from frm, if given). type_: '*' any, None available, or a type."""
    if kind(el) != "presence":
        return False
    if frm is not None and el.get("from") != frm:
        return False
    return type_ == "*" or el.get("type") == type_


def is_message(el, frm: Optional[str] = None, type_: Optional[str] = "*") -> bool:
    if kind(el) != "message":
        return False
    if frm is not None and el.get("from") != frm:
        return False
    return type_ == "*" or el.get("type") == type_


def body(el) -> Optional[str]:
    b = el.find(q("body", NS_CLIENT))
    return None if b is None else (b.text or "")


def has_body(el, text: str) -> bool:
    return body(el) == text


def is_subject_message(el) -> bool:
    return (is_message(el, type_="groupchat") and el.find(q("subject", NS_CLIENT)) is not None
            and el.find(q("body", NS_CLIENT)) is None)


def subject_text(el) -> str:
    return el.find(q("subject", NS_CLIENT)).text or ""


def muc_x(el) -> Optional[ET.Element]:
    xs = el.findall(q("x", NS_USER))
    if len(xs) > 1:
        raise AssertionError("more than one muc#user <x/> (XEP-0045 §7.2.3): " + show(el))
    return xs[0] if xs else None


def codes(el) -> set:
    x = muc_x(el)
    if x is None:
        return set()
    return {int(s.get("code")) for s in x.findall(q("status", NS_USER))}


def item(el) -> ET.Element:
    x = muc_x(el)
    it = None if x is None else x.find(q("item", NS_USER))
    if it is None:
        raise AssertionError("no muc#user <item/> in " + show(el))
    return it


def occupant_ids(el) -> List[str]:
    return [o.get("id") for o in el.findall(q("occupant-id", NS_OCCUPANT_ID))]


def error_of(el) -> tuple:
    """(type, condition) of a stanza error; (None, None) when el is no error."""
    e = el.find(q("error", NS_CLIENT))
    if e is None:
        return None, None
    for child in e:
        if child.tag.startswith("{%s}" % NS_STANZAS) and local_name(child.tag) != "text":
            return e.get("type"), local_name(child.tag)
    return e.get("type"), None


def delay_of(el) -> Optional[ET.Element]:
    return el.find(q("delay", NS_DELAY))


def field_name(key: str) -> str:
    return key if "#" in key or key == "FORM_TYPE" else "muc#roomconfig_" + key


def config_form(fields: dict) -> str:
    """A submitted muc#roomconfig form; keys without '#' get the muc#roomconfig_ prefix,
    booleans become 1/0, lists give several <value/>."""
    if not fields:
        return "<x xmlns='%s' type='submit'/>" % NS_DATA
    out = ["<field var='FORM_TYPE'><value>%s</value></field>" % NS_ROOMCONFIG]
    for key, value in fields.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        rendered = []
        for v in values:
            if isinstance(v, bool):
                v = "1" if v else "0"
            rendered.append("<value>%s</value>" % escape(str(v)))
        out.append("<field var=%s>%s</field>" % (quoteattr(field_name(key)), "".join(rendered)))
    return "<x xmlns='%s' type='submit'>%s</x>" % (NS_DATA, "".join(out))


def form_fields(x: ET.Element) -> dict:
    """var -> {'type', 'values', 'options'} of a jabber:x:data form."""
    out = {}
    for f in x.findall(q("field", NS_DATA)):
        out[f.get("var")] = {
            "type": f.get("type"),
            "values": [v.text or "" for v in f.findall(q("value", NS_DATA))],
            "options": [o.findtext(q("value", NS_DATA)) for o in f.findall(q("option", NS_DATA))],
        }
    return out


def truthy(values: List[str]) -> bool:
    if len(values) != 1 or values[0] not in ("0", "1", "true", "false"):
        raise AssertionError("not a boolean field value: %r" % (values,))
    return values[0] in ("1", "true")


def command_note(r: ET.Element) -> str:
    """The note of an ad-hoc command's answer ('' if none)."""
    cmd = r.find(q("command", NS_COMMANDS))
    return "" if cmd is None else (cmd.findtext(q("note", NS_COMMANDS)) or "")


def utc_stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Client:
    """A logged-in raw stream that parses what arrives into stanzas (ElementTree) and keeps
    them in arrival order until a test takes them: expect() removes only the stanza it
    matched, so waiting for one thing never loses another. .log keeps every stanza that
    arrived, taken or not (for "never saw X" checks)."""

    def __init__(self, srv: TestServer, local: str, resource: str, presence: bool = True,
                 bind: bool = True):
        """bind=False stops after SASL and the stream restart (.features holds the offered
        features), for a test that resumes a session (XEP-0198) or binds itself."""
        self.srv = srv
        self.local = local
        self.bare = jid(local)
        self.rs = RawStream(srv.c2s_port, timeout=10)
        self.features = None
        if bind:
            self.jid = self.rs.login(local, PASSWORD, resource=resource, timeout=10)
        else:
            self.jid = None
            if (self.rs.open_stream(timeout=10) is not None
                    and self.rs.starttls(timeout=10) is not None
                    and self.rs.sasl_plain(local, PASSWORD, timeout=10)):
                self.features = self.rs.open_stream(timeout=10)
            presence = False
        if self.jid is None and self.features is None:
            self.rs.close()
            raise AssertionError("login of %s failed; log tail:\n%s" % (local, srv.log_tail()))
        self.queue: List[ET.Element] = []
        self.log: List[ET.Element] = []
        self.closed = False
        self.depth = 0
        self.root = None
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.parser.feed("<stream:stream xmlns='jabber:client' "
                         "xmlns:stream='http://etherx.jabber.org/streams'>")
        self._drain_events()
        leftover, self.rs.pending = self.rs.pending, b""
        if leftover:
            self._feed(leftover)
        if presence:
            # Available: bare-JID messages (invitations) reach this resource.
            self.send("<presence/>")

    def __repr__(self):
        return "<Client %s>" % self.jid

    def close(self) -> None:
        self.rs.close()

    def send(self, xml: str) -> None:
        if not self.rs.send(xml):
            raise AssertionError("%s: the server closed the stream" % self.jid)

    # reading ----------------------------------------------------------------------------------

    def _drain_events(self) -> None:
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.root.remove(el)
                    self._received(el)
                elif self.depth == 0:
                    self.closed = True

    def _received(self, el: ET.Element) -> None:
        # Answer pings (a self-ping the room forwards to us, XEP-0410 §3.2; server keepalives).
        if (kind(el) == "iq" and el.get("type") == "get"
                and el.find(q("ping", NS_PING)) is not None):
            self.rs.send("<iq type='result' id=%s to=%s/>"
                         % (quoteattr(el.get("id", "")), quoteattr(el.get("from", ""))))
        self.queue.append(el)
        self.log.append(el)

    def _feed(self, data: bytes) -> None:
        self.parser.feed(data)
        self._drain_events()

    def _pump(self, deadline: float) -> bool:
        """One read from the socket into the queue; False on timeout or close."""
        if self.closed:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.rs.sock.settimeout(left)
        try:
            data = self.rs.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (OSError, ssl.SSLError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        self._feed(data)
        return True

    def expect(self, pred: Callable[[ET.Element], bool], what: str,
               timeout: float = TIMEOUT) -> ET.Element:
        """The first queued or arriving stanza for which pred holds, removed from the queue."""
        deadline = time.monotonic() + timeout
        while True:
            for i, el in enumerate(self.queue):
                if pred(el):
                    del self.queue[i]
                    return el
            if not self._pump(deadline):
                raise AssertionError(
                    "%s: no %s within %.1f s%s\nreceived, unmatched:\n%s\nlog tail:\n%s"
                    % (self.jid, what, timeout, " (stream closed)" if self.closed else "",
                       "\n".join(show(e) for e in self.queue[-15:]), self.srv.log_tail(25)))

    def pending(self, pred: Callable[[ET.Element], bool]) -> List[ET.Element]:
        return [el for el in self.queue if pred(el)]

    # requests ---------------------------------------------------------------------------------

    def iq(self, to: str, payload: str, type_: str = "get", attrs: str = "") -> ET.Element:
        """Sends an IQ (with extra attributes, e.g. xml:lang) and returns its answer."""
        iq_id = "iq%d" % next(_seq)
        self.send("<iq type='%s' id='%s' to=%s%s>%s</iq>"
                  % (type_, iq_id, quoteattr(to), attrs, payload))
        return self.expect(lambda e: kind(e) == "iq" and e.get("id") == iq_id
                           and e.get("type") in ("result", "error"),
                           "answer to IQ %s %s" % (iq_id, payload[:80]))

    def command(self, to: str, node: str, fields: Optional[dict] = None,
                lang: str = "") -> ET.Element:
        """Runs an XEP-0050 ad-hoc command: execute, then (with fields) submit its form.
        Returns the last answer."""
        attrs = " xml:lang=%s" % quoteattr(lang) if lang else ""
        r = self.iq(to, "<command xmlns='%s' node=%s action='execute'/>"
                    % (NS_COMMANDS, quoteattr(node)), "set", attrs)
        if fields is None or r.get("type") != "result":
            return r
        cmd = r.find(q("command", NS_COMMANDS))
        xml_fields = "".join("<field var=%s><value>%s</value></field>"
                             % (quoteattr(k), escape(v)) for k, v in fields.items())
        return self.iq(to, "<command xmlns='%s' node=%s sessionid=%s><x xmlns='%s' "
                       "type='submit'>%s</x></command>"
                       % (NS_COMMANDS, quoteattr(node), quoteattr(cmd.get("sessionid") or ""),
                          NS_DATA, xml_fields), "set", attrs)

    def sync(self) -> None:
        """A round trip through the MUC service: whatever the service queued for this
        stream before has arrived afterwards."""
        r = self.iq(SERVICE, "<query xmlns='%s'/>" % NS_INFO)
        if r.get("type") != "result":
            raise AssertionError("disco#info to %s failed: %s" % (SERVICE, show(r)))


class Joined:
    """What a join brought, in arrival order: occupants' presences, self-presence, history,
    subject."""

    def __init__(self, room: str, nick: str, stanzas: List[ET.Element]):
        self.room = room
        self.nick = nick
        self.stanzas = stanzas
        me = room + "/" + nick
        selfs = [i for i, el in enumerate(stanzas)
                 if is_presence(el, me, None) and 110 in codes(el)]
        if len(selfs) != 1:
            raise AssertionError("expected one self-presence from %s, got %d:\n%s"
                                 % (me, len(selfs), "\n".join(show(e) for e in stanzas)))
        self.self_index = selfs[0]
        self.self_presence = stanzas[self.self_index]
        self.occupants = [el for el in stanzas
                          if is_presence(el, None, None) and el.get("from") != me]
        self.history = [el for el in stanzas if is_message(el) and delay_of(el) is not None
                        and not is_subject_message(el)]
        # None only when a creation (201) brought no subject; join() waits for it otherwise.
        self.subject = stanzas[-1] if is_subject_message(stanzas[-1]) else None

    def presence_of(self, nick: str) -> ET.Element:
        want = self.room + "/" + nick
        for el in self.occupants:
            if el.get("from") == want:
                return el
        raise AssertionError("no presence of %s among %s" % (want, [show(e) for e in
                                                                     self.occupants]))


class ServerCase(unittest.TestCase):
    """One havend per test class with the accounts `users` (roles from `roles`, default
    member) and `config` on top of `base_config`; fresh Clients per test (self.client), all
    closed after it."""

    users: tuple = ()
    roles: dict = {}
    base_config: dict = {}
    config: dict = {}

    @classmethod
    def setUpClass(cls):
        config = dict(cls.base_config)
        config.update(cls.config)
        cls.srv = TestServer(config=config)
        try:
            for u in cls.users:
                cls.srv.add_user(u, PASSWORD, role=cls.roles.get(u, "member"))
            cls.srv.start()
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def setUp(self):
        self.clients: List[Client] = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def client(self, local: str, resource: str = "phone", **kw) -> Client:
        c = Client(self.srv, local, resource, **kw)
        self.clients.append(c)
        return c
