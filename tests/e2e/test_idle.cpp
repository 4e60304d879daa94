// Idle connections: after [c2s] hibernate_after_s without input a session frees its XML parser
// and TLS cipher state, and its next input (or output) rebuilds them without the client noticing.
// Also the TLS record takeover ([tls] compact_connections) on and off, over STARTTLS and direct TLS.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;

namespace {

std::size_t count(const std::string& text, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

// Waits (bounded) until the log holds `n` occurrences of `needle`.
bool wait_for_log(const TestServer& server, std::string_view needle, std::size_t n,
                  std::chrono::milliseconds timeout = 6s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (count(server.log_contents(), needle) >= n) {
            return true;
        }
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

bool chat(TestClient& from, TestClient& to, const std::string& to_jid, const std::string& body) {
    if (!from.send("<message to='" + to_jid + "' type='chat'><body>" + body +
                   "</body></message>")) {
        return false;
    }
    auto got = to.wait_for(
        [&](const Stanza& s) { return s.name() == "message" && s.child_text("body") == body; });
    return got.has_value();
}

// Starts the server with alice and bob and logs them in (alice over STARTTLS, bob over direct
// TLS, as the callers set up their clients).
void log_in_pair(TestServer& server, TestClient& alice, TestClient& bob) {
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.start();
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    REQUIRE_MESSAGE(bob.connect(server.jid("bob"), "bob-secret"), bob.failure());
}

}  // namespace

TEST_CASE("Idle sessions release their parser and TLS state, then carry on unchanged") {
    TestServer server({.config = {{"c2s.hibernate_after_s", "1"}}});
    TestClient alice(server, {.resource = "a"});
    TestClient bob(server, {.direct_tls = true, .resource = "b"});
    log_in_pair(server, alice, bob);
    // libstrophe negotiates TLS 1.3, so both connections run on Haven's record layer.
    CHECK(count(server.log_contents(), "TLS established (records by Haven)") == 2);
    REQUIRE(bob.send("<presence/>"));
    REQUIRE(bob.iq_roundtrip("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>"));

    // Both sessions go idle within one or two periods.
    REQUIRE_MESSAGE(wait_for_log(server, "idle, released parser and buffers", 2),
                    server.log_tail());

    // Woken by input (alice) and by output (bob, whose cipher contexts were dropped too).
    CHECK(chat(alice, bob, server.jid("bob") + "/b", "after a nap"));
    CHECK(chat(bob, alice, server.jid("alice") + "/a", "me too"));

    SUBCASE("a stanza half received when the period ends keeps its parser") {
        const auto before = count(server.log_contents(), "idle, released");
        REQUIRE(alice.send("<message to='" + server.jid("bob") +
                           "/b' type='chat'><body>split across a"));
        REQUIRE(wait_for_log(server, "buffers (stanza in progress)", 1));
        REQUIRE(alice.send(" quiet period</body></message>"));
        auto got = bob.wait_for([](const Stanza& s) {
            return s.child_text("body") == "split across a quiet period";
        });
        CHECK(got.has_value());
        CHECK(count(server.log_contents(), "idle, released") > before);
    }
    SUBCASE("many naps in a row") {
        for (int i = 0; i < 3; ++i) {
            const auto naps = count(server.log_contents(), "idle, released parser and buffers");
            REQUIRE(wait_for_log(server, "idle, released parser and buffers", naps + 2));
            CHECK(chat(alice, bob, server.jid("bob") + "/b", "nap " + std::to_string(i)));
            CHECK(chat(bob, alice, server.jid("alice") + "/a", "reply " + std::to_string(i)));
        }
    }
    SUBCASE("the stream still closes cleanly after a nap") {
        alice.disconnect();
        CHECK(bob.expect_none([](const Stanza& s) { return s.name() == "message"; }, 200ms));
        CHECK(server.log_contents().find("TLS record") == std::string::npos);
    }
}

TEST_CASE("With [tls] compact_connections = false OpenSSL keeps the records, and naps still work") {
    TestServer server(
        {.config = {{"c2s.hibernate_after_s", "1"}, {"tls.compact_connections", "false"}}});
    TestClient alice(server, {.resource = "a"});
    TestClient bob(server, {.direct_tls = true, .resource = "b"});
    log_in_pair(server, alice, bob);
    CHECK(alice.secured());
    const auto log = server.log_contents();
    CHECK(count(log, "TLS established") == 2);
    CHECK(count(log, "records by Haven") == 0);

    CHECK(chat(alice, bob, server.jid("bob") + "/b", "plain OpenSSL"));
    REQUIRE(wait_for_log(server, "idle, released parser and buffers", 2));
    CHECK(chat(alice, bob, server.jid("bob") + "/b", "after a nap"));
    CHECK(chat(bob, alice, server.jid("alice") + "/a", "and back"));
}

TEST_CASE("hibernate_after_s = 0 never releases anything") {
    TestServer server({.config = {{"c2s.hibernate_after_s", "0"}}});
    server.add_user("alice", "alice-secret");
    server.start();
    TestClient alice(server);
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    alice.pump(1500ms);
    CHECK(count(server.log_contents(), "idle, released") == 0);
    CHECK(alice.iq_roundtrip("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>").has_value());
}
