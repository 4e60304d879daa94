// E2E: RFC 6120 §5 STARTTLS, XEP-0368 direct TLS, §6 SASL (each mechanism), §7 resource binding,
// and the login throttle, against a real havend. The -PLUS mechanisms need channel binding,
// which libstrophe 0.12 lacks; tests/e2e/test_hostile.py drives them over raw sockets.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view ns_sasl = "urn:ietf:params:xml:ns:xmpp-sasl";

std::string base64(std::string_view in) {
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += table[v & 63];
    }
    if (i + 1 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

// Reads one complete <success/> or <failure>...</failure> element; "" on timeout or close.
std::string read_sasl_outcome(RawConnection& raw) {
    std::string got;
    while (true) {
        const auto part = raw.read_until(">", 5s);
        if (!part) {
            return {};
        }
        got += *part;
        const auto s = got.find("<success");
        const auto f = got.find("<failure");
        if (s != std::string::npos) {
            if (got.find("/>", s) != std::string::npos ||
                got.find("</success>", s) != std::string::npos) {
                return got.substr(s);
            }
        } else if (f != std::string::npos) {
            const auto head_end = got.find('>', f);
            if ((head_end != std::string::npos && got[head_end - 1] == '/') ||
                got.find("</failure>", f) != std::string::npos) {
                return got.substr(f);
            }
        }
    }
}

// One SASL PLAIN attempt on a fresh STARTTLS connection: the server's <success/> or <failure/>
// element as it was sent, or "" when the exchange broke down.
std::string plain_attempt(const TestServer& server, std::string_view local,
                          std::string_view password) {
    RawConnection raw;
    if (!raw.connect(server.c2s_port()) || !raw.open_stream() || !raw.negotiate_starttls()) {
        return {};
    }
    std::string token = std::string(1, '\0') + std::string(local) + '\0' + std::string(password);
    if (!raw.send("<auth xmlns='" + std::string(ns_sasl) + "' mechanism='PLAIN'>" + base64(token) +
                  "</auth>")) {
        return {};
    }
    return read_sasl_outcome(raw);
}

bool is_message_to_self(const Stanza& s, std::string_view body) {
    return s.name() == "message" && s.child_text("body") == body;
}

// Proves a session is bound and routed: a message to its own full JID comes back. This needs no
// module (full-JID delivery is core routing), unlike a ping or presence.
bool echo_works(TestClient& c, std::string_view body) {
    if (!c.send("<message to='" + c.bound_jid() + "' type='chat'><body>" + std::string(body) +
                "</body></message>")) {
        return false;
    }
    return c.wait_for([&](const Stanza& s) { return is_message_to_self(s, body); }).has_value();
}

std::string resource_of(const std::string& full) {
    const auto slash = full.find('/');
    return slash == std::string::npos ? std::string() : full.substr(slash + 1);
}

}  // namespace

TEST_CASE("RFC 6120 §6 / XEP-0368: each SASL mechanism logs in over STARTTLS and direct TLS") {
    // Offering exactly one mechanism forces the client onto it (libstrophe otherwise picks the
    // strongest it knows).
    for (const char* mech : {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}) {
        CAPTURE(mech);
        TestServer server({.config = {{"sasl.mechanisms", toml_array({mech})}}});
        server.add_user("alice", "correct horse");
        server.start();
        for (const bool direct : {false, true}) {
            CAPTURE(direct);
            TestClient c(server, {.direct_tls = direct, .resource = "r1"});
            REQUIRE_MESSAGE(c.connect(server.jid("alice"), "correct horse"),
                            c.failure() << "\nserver log:\n"
                                        << server.log_tail());
            CHECK(c.secured());
            CHECK(c.bound_jid() == server.jid("alice") + "/r1");
            CHECK(echo_works(c, std::string("hello via ") + mech));
            c.disconnect();
        }
        CHECK(server.stop() == 0);
    }
}

TEST_CASE("RFC 6120 §6: a wrong password fails with each mechanism, and the session never binds") {
    for (const char* mech : {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}) {
        CAPTURE(mech);
        TestServer server({.config = {{"sasl.mechanisms", toml_array({mech})}}});
        server.add_user("alice", "correct horse");
        server.start();
        TestClient c(server);
        CHECK_FALSE(c.connect(server.jid("alice"), "wrong horse"));
        CHECK_FALSE(c.connected());
        CHECK(c.bound_jid().empty());
        // And the right password still works afterwards (one failure is below every limit).
        TestClient ok(server);
        CHECK_MESSAGE(ok.connect(server.jid("alice"), "correct horse"), ok.failure());
    }
}

TEST_CASE("RFC 6120 §6.4.5 / RFC 5802 §9: an unknown user fails exactly like a wrong password") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();
    const std::string wrong = plain_attempt(server, "alice", "wrong horse");
    const std::string unknown = plain_attempt(server, "nobody-here", "wrong horse");
    REQUIRE_FALSE(wrong.empty());
    CHECK(wrong.find("<not-authorized") != std::string::npos);
    // Byte for byte: no different condition, text or attribute for a missing account.
    CHECK(unknown == wrong);
    // libstrophe sees the same outcome through SCRAM (the SCRAM message shapes are compared in
    // test_hostile.py).
    TestClient c(server);
    CHECK_FALSE(c.connect(server.jid("nobody-here"), "whatever"));
}

TEST_CASE("RFC 6120 §5.3.1 / §6: PLAIN is never offered or accepted before TLS") {
    // With encryption optional the mechanisms are listed in the clear, but without PLAIN.
    TestServer server({.config = {{"c2s.require_encryption", "false"}}});
    server.add_user("alice", "correct horse");
    server.start();

    RawConnection raw;
    REQUIRE(raw.connect(server.c2s_port()));
    const auto clear = raw.open_stream();
    REQUIRE(clear);
    CHECK(clear->find("<mechanisms") != std::string::npos);
    CHECK(clear->find("SCRAM-SHA-256") != std::string::npos);
    CHECK(clear->find(">PLAIN<") == std::string::npos);
    CHECK(clear->find("-PLUS") == std::string::npos);  // nothing to bind to without TLS
    // Asking for it anyway is refused like any mechanism not on offer (RFC 6120 §6.4.5).
    const std::string token = base64(std::string("\0alice\0correct horse", 20));
    REQUIRE(raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + token +
                     "</auth>"));
    const std::string outcome = read_sasl_outcome(raw);
    CHECK(outcome.find("<invalid-mechanism") != std::string::npos);
    CHECK(outcome.find("<success") == std::string::npos);

    // After STARTTLS it is offered, along with the -PLUS variants.
    RawConnection tls;
    REQUIRE(tls.connect(server.c2s_port()));
    REQUIRE(tls.open_stream());
    const auto secure = tls.negotiate_starttls();
    REQUIRE(secure);
    CHECK(secure->find(">PLAIN<") != std::string::npos);
    CHECK(secure->find(">SCRAM-SHA-256-PLUS<") != std::string::npos);
    CHECK(secure->find("<starttls") == std::string::npos);

    // A plaintext SCRAM login works when encryption is optional.
    TestClient c(server, {.mandatory_tls = false, .disable_tls = true});
    CHECK_MESSAGE(c.connect(server.jid("alice"), "correct horse"), c.failure());
    CHECK_FALSE(c.secured());
}

TEST_CASE("RFC 6120 §5.3.1: require_encryption refuses authentication before STARTTLS") {
    TestServer server;  // the harness default is require_encryption = true
    server.add_user("alice", "correct horse");
    server.start();

    RawConnection raw;
    REQUIRE(raw.connect(server.c2s_port()));
    const auto features = raw.open_stream();
    REQUIRE(features);
    CHECK(features->find("<required/>") != std::string::npos);
    CHECK(features->find("<mechanisms") == std::string::npos);
    // A SCRAM attempt in the clear ends the stream with <policy-violation/>.
    REQUIRE(raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" +
                     base64("n,,n=alice,r=abcdefgh") + "</auth>"));
    const auto err = raw.read_until("</stream:stream>");
    REQUIRE(err);
    CHECK(err->find("<policy-violation") != std::string::npos);
    CHECK(err->find("<challenge") == std::string::npos);
    CHECK(raw.wait_closed());

    // libstrophe with TLS disabled cannot log in either.
    TestClient c(server, {.mandatory_tls = false, .disable_tls = true});
    CHECK_FALSE(c.connect(server.jid("alice"), "correct horse"));
}

TEST_CASE("Login throttle: failures per account lock that account, even for the right password") {
    TestServer server({.config = {{"sasl.max_failures_per_account", "3"},
                                  {"sasl.max_failures_per_address", "1000"}}});
    server.add_user("alice", "correct horse");
    server.add_user("bob", "battery staple");
    server.start();

    for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        const auto r = plain_attempt(server, "alice", "guess " + std::to_string(i));
        CHECK(r.find("<not-authorized") != std::string::npos);
    }
    // Locked: the right password is refused too, as a temporary failure.
    const auto locked = plain_attempt(server, "alice", "correct horse");
    CHECK(locked.find("<temporary-auth-failure") != std::string::npos);
    CHECK(locked.find("<success") == std::string::npos);
    // Through SCRAM as well (the check runs before any exchange).
    TestClient scram(server);
    CHECK_FALSE(scram.connect(server.jid("alice"), "correct horse"));
    // Another account from the same address is unaffected.
    TestClient bob(server);
    CHECK_MESSAGE(bob.connect(server.jid("bob"), "battery staple"), bob.failure());
}

TEST_CASE("Login throttle: failures per address lock every account from that address") {
    TestServer server({.config = {{"sasl.max_failures_per_account", "1000"},
                                  {"sasl.max_failures_per_address", "3"}}});
    server.add_user("carol", "correct horse");
    server.start();

    // Spread over several names (one of them real), as a password sprayer would.
    for (const char* who : {"nobody1", "carol", "nobody2"}) {
        CAPTURE(who);
        CHECK(plain_attempt(server, who, "spray").find("<not-authorized") != std::string::npos);
    }
    const auto locked = plain_attempt(server, "carol", "correct horse");
    CHECK(locked.find("<temporary-auth-failure") != std::string::npos);
    TestClient c(server);
    CHECK_FALSE(c.connect(server.jid("carol"), "correct horse"));
}

TEST_CASE("RFC 6120 §7.7.2.2: a second login with the same resource replaces the first") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();

    TestClient first(server, {.resource = "desk"});
    REQUIRE_MESSAGE(first.connect(server.jid("alice"), "correct horse"), first.failure());
    REQUIRE(echo_works(first, "before"));

    TestClient second(server, {.resource = "desk"});
    REQUIRE_MESSAGE(second.connect(server.jid("alice"), "correct horse"), second.failure());
    CHECK(second.bound_jid() == server.jid("alice") + "/desk");

    // The first stream ends with <conflict/>.
    CHECK(first.wait_disconnected(5s));
    REQUIRE(first.stream_error());
    CHECK(first.stream_error()->condition == "conflict");
    // The second one is the live session for that full JID.
    CHECK(echo_works(second, "after"));
}

TEST_CASE("RFC 6120 §7.6: the server generates a resource when the client asks for none") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();

    TestClient a(server);
    TestClient b(server);
    REQUIRE_MESSAGE(a.connect(server.jid("alice"), "correct horse"), a.failure());
    REQUIRE_MESSAGE(b.connect(server.jid("alice"), "correct horse"), b.failure());
    CHECK(a.bound_jid().starts_with(server.jid("alice") + "/"));
    CHECK_FALSE(resource_of(a.bound_jid()).empty());
    CHECK_FALSE(resource_of(b.bound_jid()).empty());
    // Distinct, so the second login did not replace the first.
    CHECK(a.bound_jid() != b.bound_jid());
    CHECK(echo_works(a, "still here"));
    CHECK(a.connected());

    // The same over a raw stream: <bind/> without <resource/>.
    RawConnection raw;
    REQUIRE(raw.connect(server.c2s_port()));
    REQUIRE(raw.open_stream());
    REQUIRE(raw.negotiate_starttls());
    REQUIRE(raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                     base64(std::string("\0alice\0correct horse", 20)) + "</auth>"));
    REQUIRE(read_sasl_outcome(raw).starts_with("<success"));
    const auto features = raw.open_stream();
    REQUIRE(features);
    CHECK(features->find("urn:ietf:params:xml:ns:xmpp-bind") != std::string::npos);
    REQUIRE(
        raw.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"));
    const auto reply = raw.read_until("</iq>");
    REQUIRE(reply);
    CHECK(reply->find("type='result'") != std::string::npos);
    CHECK(reply->find("<jid>" + server.jid("alice") + "/") != std::string::npos);
}

TEST_CASE("RFC 6120 §6.4.2: <abort/> while PLAIN is being checked wins over the check") {
    TestServer server;
    server.add_user("alice", "correct horse");
    server.start();

    RawConnection raw;
    REQUIRE(raw.connect(server.c2s_port()));
    REQUIRE(raw.open_stream());
    REQUIRE(raw.negotiate_starttls());
    // Right password, then an abort in the same packet: the password check runs off the event
    // loop, so the abort is handled first and the later result must be dropped.
    REQUIRE(raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                     base64(std::string("\0alice\0correct horse", 20)) +
                     "</auth><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"));
    const std::string outcome = read_sasl_outcome(raw);
    CHECK(outcome.find("<aborted") != std::string::npos);
    CHECK_FALSE(raw.read_until("<success", 1500ms));
    // Still unauthenticated: binding is refused, and a fresh attempt works.
    REQUIRE(raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                     base64(std::string("\0alice\0correct horse", 20)) + "</auth>"));
    CHECK(read_sasl_outcome(raw).starts_with("<success"));
}
