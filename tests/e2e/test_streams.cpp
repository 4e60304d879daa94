// E2E: RFC 6120 stream handling in a real havend: addressing checks (§8.1.2.1, §8.3.3), whitespace
// keepalives (§4.6.1), the closing handshake (§4.4), the login deadline, --check-config and a
// clean SIGTERM shutdown (§4.9.3.22 system-shutdown).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string base64(std::string_view in) {
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned v = 0;
    int bits = 0;
    for (const char c : in) {
        v = (v << 8) | static_cast<unsigned char>(c);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += table[(v >> bits) & 63];
        }
    }
    if (bits > 0) {
        out += table[(v << (6 - bits)) & 63];
    }
    while (out.size() % 4 != 0) {
        out += '=';
    }
    return out;
}

// STARTTLS, SASL PLAIN, stream restart and bind on a raw connection; the bound JID or "".
std::string raw_login(RawConnection& raw, const TestServer& server, std::string_view local,
                      std::string_view password, std::string_view resource) {
    if (!raw.connect(server.c2s_port()) || !raw.open_stream() || !raw.negotiate_starttls()) {
        return {};
    }
    const std::string token =
        std::string(1, '\0') + std::string(local) + '\0' + std::string(password);
    if (!raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                  base64(token) + "</auth>")) {
        return {};
    }
    const auto outcome = raw.read_until("xmpp-sasl'");
    if (!outcome || outcome->find("<success") == std::string::npos || !raw.read_until(">") ||
        !raw.open_stream()) {
        return {};
    }
    if (!raw.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<resource>" +
                  std::string(resource) + "</resource></bind></iq>")) {
        return {};
    }
    const auto reply = raw.read_until("</iq>");
    if (!reply) {
        return {};
    }
    const auto a = reply->find("<jid>");
    const auto b = reply->find("</jid>");
    return a == std::string::npos || b == std::string::npos ? std::string()
                                                            : reply->substr(a + 5, b - a - 5);
}

bool echo_works(TestClient& c, const std::string& body) {
    if (!c.send("<message to='" + c.bound_jid() + "' type='chat'><body>" + body +
                "</body></message>")) {
        return false;
    }
    return c
        .wait_for(
            [&](const Stanza& s) { return s.name() == "message" && s.child_text("body") == body; })
        .has_value();
}

std::string stream_error_of(const std::string& xml) {
    const auto at = xml.find("<stream:error>");
    if (at == std::string::npos) {
        return {};
    }
    const auto start = at + std::string_view("<stream:error>").size();
    if (start >= xml.size() || xml[start] != '<') {
        return {};
    }
    const auto end = xml.find_first_of(" />", start + 1);
    return xml.substr(start + 1, end - start - 1);
}

std::size_t line_count(const std::string& s) {
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')) +
           (!s.empty() && s.back() != '\n' ? 1 : 0);
}

}  // namespace

TEST_CASE("RFC 6120 §8.1.2.1: a spoofed 'from' ends the stream with <invalid-from/>") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.add_user("bob", "battery staple");
    server.start();

    TestClient alice(server, {.resource = "a"});
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "correct horse"), alice.failure());

    // Its own bare JID is an allowed 'from'; the server stamps the full JID.
    REQUIRE(alice.send("<message from='" + server.jid("alice") + "' to='" + alice.bound_jid() +
                       "' type='chat'><body>own bare</body></message>"));
    const auto own = alice.wait_for([](const Stanza& s) {
        return s.name() == "message" && s.child_text("body") == "own bare";
    });
    REQUIRE(own);
    CHECK(own->from() == alice.bound_jid());

    TestClient bob(server, {.resource = "b"});
    REQUIRE_MESSAGE(bob.connect(server.jid("bob"), "battery staple"), bob.failure());
    // send() may already report the closed stream: the reply is what counts.
    alice.send("<message from='" + server.jid("carol") + "/x' to='" + bob.bound_jid() +
               "' type='chat'><body>spoofed</body></message>");
    CHECK(alice.wait_disconnected(5s));
    REQUIRE(alice.stream_error());
    CHECK(alice.stream_error()->condition == "invalid-from");
    // Nothing was delivered under the forged name.
    CHECK(bob.expect_none([](const Stanza& s) { return s.child_text("body") == "spoofed"; }));
}

TEST_CASE("RFC 6120 §8.3.3.8: a stanza to a malformed JID gets <jid-malformed/>") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();
    TestClient alice(server);
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "correct horse"), alice.failure());

    for (const char* to : {"@localhost", "alice@localhost/", "a@b@c", "alice@local host"}) {
        CAPTURE(to);
        const std::string id = alice.next_id();
        REQUIRE(alice.send(std::string("<message to='") + to + "' id='" + id +
                           "' type='chat'><body>x</body></message>"));
        const auto err = alice.wait_for([&](const Stanza& s) { return s.id() == id; });
        REQUIRE(err);
        CHECK(err->type() == "error");
        const auto e = err->child("error");
        REQUIRE(e);
        CHECK(e->child("jid-malformed", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    }
    const auto iq = alice.iq_roundtrip(
        "<iq type='get' to='@localhost'><query xmlns='jabber:iq:version'/></iq>");
    REQUIRE(iq);
    CHECK(iq->type() == "error");
    const auto iq_error = iq->child("error");
    REQUIRE(iq_error);
    CHECK(iq_error->child("jid-malformed", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    // A stanza error, not a stream error: the session goes on.
    CHECK(echo_works(alice, "still bound"));
}

TEST_CASE("RFC 6120 §4.6.1: whitespace keepalives between stanzas are tolerated") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();
    TestClient alice(server);
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "correct horse"), alice.failure());
    for (const char* ws : {" ", "\n", "\r\n", "\t  \n"}) {
        REQUIRE(alice.send(ws));
        alice.pump(50ms);
    }
    CHECK(alice.connected());
    CHECK(echo_works(alice, "after keepalives"));

    // Also before authentication, on a raw stream.
    RawConnection raw;
    REQUIRE(raw.connect(server.c2s_port()));
    REQUIRE(raw.open_stream());
    REQUIRE(raw.send("\n \n"));
    const auto features = raw.negotiate_starttls();
    CHECK(features.has_value());
}

TEST_CASE("RFC 6120 §4.4: the server answers the client's </stream:stream> and closes") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();
    RawConnection raw;
    REQUIRE(raw_login(raw, server, "alice", "correct horse", "r") == server.jid("alice") + "/r");
    REQUIRE(raw.send("</stream:stream>"));
    const auto tail = raw.read_until("</stream:stream>");
    REQUIRE(tail);
    CHECK(tail->find("<stream:error>") == std::string::npos);
    CHECK(raw.wait_closed(5s));

    // The resource is gone: a new login with it is not a conflict for anyone.
    TestClient again(server, {.resource = "r"});
    CHECK_MESSAGE(again.connect(server.jid("alice"), "correct horse"), again.failure());
}

TEST_CASE("Login deadline: an unauthenticated stream gets <connection-timeout/>") {
    TestServer server({.config = {{"limits.unauthenticated_timeout_s", "2"}}});
    server.add_user("alice", "correct horse");
    server.start();

    SUBCASE("stream opened, never authenticates") {
        RawConnection raw;
        REQUIRE(raw.connect(server.c2s_port()));
        REQUIRE(raw.open_stream());
        const auto t0 = Clock::now();
        const auto err = raw.read_until("</stream:stream>", 8s);
        REQUIRE(err);
        CHECK(stream_error_of(*err) == "connection-timeout");
        CHECK(Clock::now() - t0 >= 1s);
        CHECK(raw.wait_closed(3s));
    }
    SUBCASE("silent connection: the server opens a stream to carry the error") {
        RawConnection raw;
        REQUIRE(raw.connect(server.c2s_port()));
        const auto err = raw.read_until("</stream:stream>", 8s);
        REQUIRE(err);
        CHECK(err->find("<stream:stream") != std::string::npos);
        CHECK(stream_error_of(*err) == "connection-timeout");
        CHECK(raw.wait_closed(3s));
    }
    SUBCASE("after STARTTLS, still not logged in") {
        RawConnection raw;
        REQUIRE(raw.connect(server.c2s_port()));
        REQUIRE(raw.open_stream());
        REQUIRE(raw.negotiate_starttls());
        const auto err = raw.read_until("</stream:stream>", 8s);
        REQUIRE(err);
        CHECK(stream_error_of(*err) == "connection-timeout");
        CHECK(raw.wait_closed(3s));
    }
    SUBCASE("direct TLS port, no ClientHello ever: the connection is dropped") {
        RawConnection raw;
        REQUIRE(raw.connect(server.direct_tls_port()));
        // At the deadline itself: nothing can be flushed into a TLS session that never started.
        CHECK(raw.wait_closed(5s));
    }
    SUBCASE("<proceed/> received, no ClientHello ever: the connection is dropped") {
        RawConnection raw;
        REQUIRE(raw.connect(server.c2s_port()));
        REQUIRE(raw.open_stream());
        REQUIRE(raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
        REQUIRE(raw.read_until("<proceed"));
        CHECK(raw.wait_closed(5s));
    }
    SUBCASE("authenticated but never bound") {
        RawConnection raw;
        REQUIRE(raw.connect(server.c2s_port()));
        REQUIRE(raw.open_stream());
        REQUIRE(raw.negotiate_starttls());
        REQUIRE(raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                         base64(std::string("\0alice\0correct horse", 20)) + "</auth>"));
        REQUIRE(raw.read_until("<success"));
        REQUIRE(raw.read_until(">"));
        const auto features = raw.open_stream();
        REQUIRE(features);
        CHECK(features->find("xmpp-bind") != std::string::npos);
        const auto err = raw.read_until("</stream:stream>", 8s);
        REQUIRE(err);
        CHECK(stream_error_of(*err) == "connection-timeout");
    }
    SUBCASE("a bound session is not subject to it") {
        TestClient alice(server);
        REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "correct horse"), alice.failure());
        alice.pump(3s);
        CHECK(alice.connected());
        CHECK(echo_works(alice, "past the deadline"));
    }
    CHECK(server.running());
}

TEST_CASE("havend --check-config: 0 on a good file, one line naming the bad key otherwise") {
    TestServer server;
    const auto good = server.check_config();
    CHECK_MESSAGE(good.exit_code == 0, good.err);

    server.set_config("c2s.port", "70000");
    auto bad = server.check_config();
    CHECK(bad.exit_code != 0);
    CHECK(line_count(bad.err) == 1);
    CHECK(bad.err.find("port") != std::string::npos);
    CHECK(bad.err.find("[c2s]") != std::string::npos);
    // And the real start refuses the same file.
    CHECK_THROWS(server.start());

    server.set_config("c2s.port", std::to_string(server.c2s_port()));
    server.set_config("c2s.no_such_option", "1");
    bad = server.check_config();
    CHECK(bad.exit_code != 0);
    CHECK(line_count(bad.err) == 1);
    CHECK(bad.err.find("no_such_option") != std::string::npos);

    server.set_config("c2s.no_such_option", "");
    server.set_config("limits.max_depth", "\"deep\"");
    bad = server.check_config();
    CHECK(bad.exit_code != 0);
    CHECK(line_count(bad.err) == 1);
    CHECK(bad.err.find("max_depth") != std::string::npos);

    server.set_config("limits.max_depth", "");
    const auto fixed = server.check_config();
    CHECK_MESSAGE(fixed.exit_code == 0, fixed.err);
}

TEST_CASE("RFC 6120 §4.9.3.22: SIGTERM closes every stream with <system-shutdown/> and exits 0") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();

    TestClient bound(server);
    REQUIRE_MESSAGE(bound.connect(server.jid("alice"), "correct horse"), bound.failure());
    RawConnection negotiating;  // TLS up, not logged in
    REQUIRE(negotiating.connect(server.c2s_port()));
    REQUIRE(negotiating.open_stream());
    REQUIRE(negotiating.negotiate_starttls());
    RawConnection plain;  // stream open in the clear
    REQUIRE(plain.connect(server.c2s_port()));
    REQUIRE(plain.open_stream());

    const auto t0 = Clock::now();
    CHECK(server.stop() == 0);
    CHECK(Clock::now() - t0 < 5s);

    CHECK(bound.wait_disconnected(5s));
    REQUIRE(bound.stream_error());
    CHECK(bound.stream_error()->condition == "system-shutdown");
    for (RawConnection* raw : {&negotiating, &plain}) {
        const auto tail = raw->read_until("</stream:stream>", 5s);
        REQUIRE(tail);
        CHECK(stream_error_of(*tail) == "system-shutdown");
        CHECK(raw->wait_closed(5s));
    }
}

TEST_CASE("RFC 6120 §4.9.3.23 / §7.1: stanzas out of place end the stream") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();

    SUBCASE("an unknown top-level element after bind: <unsupported-stanza-type/>") {
        TestClient alice(server);
        REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "correct horse"), alice.failure());
        // send() may already report the closed stream: the reply is what counts.
        alice.send("<thing xmlns='jabber:client'/>");
        CHECK(alice.wait_disconnected(5s));
        REQUIRE(alice.stream_error());
        CHECK(alice.stream_error()->condition == "unsupported-stanza-type");
    }
    SUBCASE("a message before authentication: <not-authorized/>") {
        RawConnection raw;
        REQUIRE(raw.connect(server.c2s_port()));
        REQUIRE(raw.open_stream());
        REQUIRE(raw.negotiate_starttls());
        REQUIRE(raw.send("<message to='alice@localhost'><body>hi</body></message>"));
        const auto err = raw.read_until("</stream:stream>");
        REQUIRE(err);
        CHECK(stream_error_of(*err) == "not-authorized");
    }
    SUBCASE("a header for another domain: <host-unknown/>") {
        RawConnection raw;
        REQUIRE(raw.connect(server.c2s_port()));
        REQUIRE(
            raw.send("<?xml version='1.0'?><stream:stream to='example.org' version='1.0' "
                     "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"));
        const auto err = raw.read_until("</stream:stream>");
        REQUIRE(err);
        CHECK(stream_error_of(*err) == "host-unknown");
    }
    CHECK(server.running());
}
