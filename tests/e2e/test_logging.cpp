// Issue #2 "Logs never contain message bodies or passwords, nor IP addresses unless the config
// turns that on": checked on a real havend at debug level.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;

namespace {
void exchange(TestServer& server) {
    TestClient alice(server, {.resource = "a"});
    TestClient bob(server, {.resource = "b"});
    REQUIRE(alice.connect(server.jid("alice"), "Secret-Pass-4711"));
    REQUIRE(bob.connect(server.jid("bob"), "Other-Pass-0815"));
    REQUIRE(bob.send("<presence/>"));
    // A wrong password too: failed logins must not log what was tried.
    TestClient wrong(server);
    CHECK_FALSE(wrong.connect(server.jid("alice"), "Guessed-Pass-1234"));
    alice.send("<message to='" + server.jid("bob") +
               "' type='chat'><body>very-private-body-text</body></message>");
    REQUIRE(bob.wait_for([](const Stanza& s) { return s.child_text("body") == "very-private-body-text"; }));
    // Offline storage path as well.
    bob.disconnect();
    alice.send("<message to='" + server.jid("bob") +
               "' type='chat'><body>stored-offline-body</body></message>");
    REQUIRE(alice.iq_roundtrip("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>"));
}
}  // namespace

TEST_CASE("issue 2: debug logs hold no bodies, passwords or addresses") {
    TestServer server;
    server.add_user("alice", "Secret-Pass-4711");
    server.add_user("bob", "Other-Pass-0815");
    server.start();
    exchange(server);
    REQUIRE(server.stop() == 0);
    auto log = server.log_contents();
    CHECK(log.find("authenticated alice") != std::string::npos);  // the log is really there
    for (auto secret : {"very-private-body-text", "stored-offline-body", "Secret-Pass-4711",
                        "Other-Pass-0815", "Guessed-Pass-1234", "127.0.0.1"}) {
        CAPTURE(secret);
        CHECK(log.find(secret) == std::string::npos);
    }
}

TEST_CASE("issue 2: [log] addresses = true puts client addresses in the log") {
    TestServer server({.config = {{"log.addresses", "true"}}});
    server.add_user("alice", "Secret-Pass-4711");
    server.add_user("bob", "Other-Pass-0815");
    server.start();
    exchange(server);
    REQUIRE(server.stop() == 0);
    auto log = server.log_contents();
    CHECK(log.find("127.0.0.1") != std::string::npos);
    CHECK(log.find("very-private-body-text") == std::string::npos);
}

TEST_CASE("issue 11: logins are not logged at info unless [log] login_events = true") {
    for (bool events : {false, true}) {
        CAPTURE(events);
        TestServer server({.config = {{"log.level", "\"info\""},
                                      {"log.login_events", events ? "true" : "false"}}});
        server.add_user("alice", "Secret-Pass-4711");
        server.add_user("bob", "Other-Pass-0815");
        server.start();
        exchange(server);
        REQUIRE(server.stop() == 0);
        auto log = server.log_contents();
        CHECK(log.find("havend serving") != std::string::npos);  // the info log is really there
        CHECK((log.find("authenticated alice") != std::string::npos) == events);
    }
}
