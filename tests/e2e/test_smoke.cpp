// Smoke test: two users log in over STARTTLS and exchange a chat message through a real havend.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;

TEST_CASE(
    "RFC 6121 §8.5.2.1.1: chat to a bare JID reaches the available resource, from the "
    "sender's full JID") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.start();

    TestClient alice(server, {.resource = "phone"});
    TestClient bob(server, {.resource = "laptop"});
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    REQUIRE_MESSAGE(bob.connect(server.jid("bob"), "bob-secret"), bob.failure());
    CHECK(alice.secured());
    CHECK(bob.secured());
    CHECK(alice.bound_jid().starts_with(server.jid("alice") + "/"));

    // Only available resources receive messages to the bare JID, so bob sends initial
    // presence. Each stream is processed in order, so once the server has answered bob's IQ it
    // has also handled the presence before it: no sleep needed. Any answer will do.
    REQUIRE(bob.send("<presence/>"));
    REQUIRE(bob.iq_roundtrip("<iq type='get' to='" + server.domain() +
                             "'><ping xmlns='urn:xmpp:ping'/></iq>"));

    REQUIRE(alice.send("<message to='" + server.jid("bob") +
                       "' type='chat' id='smoke-1'><body>hello bob</body></message>"));
    const auto msg = bob.wait_for([](const Stanza& s) {
        return s.name() == "message" && s.child_text("body") == "hello bob";
    });
    REQUIRE_MESSAGE(msg, "bob got no message; server log:\n" << server.log_tail());
    CHECK(msg->from() == alice.bound_jid());
    CHECK(msg->type() == "chat");
    CHECK(msg->id() == "smoke-1");

    alice.disconnect();
    bob.disconnect();
    CHECK(server.stop() == 0);  // the contract: SIGTERM is a clean shutdown
}
