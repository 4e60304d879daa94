// XEP-0160 offline messages through a real havend: storage, delayed delivery, quota, crash safety.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <regex>
#include <string>
#include <vector>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;

// The senders are supporters: under the peer-support policy (modules/peersupport/README.md §6)
// members may not open conversations, and this file tests storage, not that policy.

namespace {

constexpr const char* ns_delay = "urn:xmpp:delay";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

// Every stanza of one stream is handled in order, so once the server answered this ping it has
// also processed (stored, bounced or delivered) everything the client sent before it.
void sync(TestClient& c, const TestServer& server) {
    auto pong = c.iq_roundtrip("<iq type='get' to='" + server.domain() +
                               "'><ping xmlns='urn:xmpp:ping'/></iq>");
    REQUIRE_MESSAGE(pong, "no answer to a ping; server log:\n" << server.log_tail());
    REQUIRE(pong->type() == "result");
}

bool is_message_with_body(const Stanza& s) {
    return s.name() == "message" && s.type() != "error" && s.child("body");
}
bool is_message_error(const Stanza& s) { return s.name() == "message" && s.type() == "error"; }
bool is_any_message(const Stanza& s) { return s.name() == "message"; }

std::string chat(const TestServer& server, std::string_view to, std::string_view body,
                 std::string_view id, std::string_view extra = {}) {
    return "<message to='" + server.jid(to) + "' type='chat' id='" + std::string(id) +
           "'><body>" + std::string(body) + "</body>" + std::string(extra) + "</message>";
}

// Logs in and sends initial presence; the server delivers stored messages before it answers
// the ping that follows.
void come_online(TestClient& c, const TestServer& server, std::string_view local,
                 std::string_view password) {
    REQUIRE_MESSAGE(c.connect(server.jid(local), password), c.failure());
    REQUIRE(c.send("<presence/>"));
    sync(c, server);
}

}  // namespace

TEST_CASE(
    "XEP-0160 §2: a message to an offline user is delivered on initial presence with a "
    "XEP-0203 delay, in order, and deleted afterwards") {
    TestServer server;
    server.add_user("alice", "alice-secret", "supporter");
    server.add_user("bob", "bob-secret");
    server.start();

    TestClient alice(server, {.resource = "phone"});
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    REQUIRE(alice.send(chat(server, "bob", "first", "m1")));
    REQUIRE(alice.send(chat(server, "bob", "second", "m2")));
    REQUIRE(alice.send(chat(server, "bob", "third &amp; last", "m3")));
    sync(alice, server);
    // Stored, not bounced: an error would have arrived before the ping result.
    CHECK(alice.expect_none(is_message_error, std::chrono::milliseconds(1)));

    {
        TestClient bob(server, {.resource = "laptop"});
        REQUIRE_MESSAGE(bob.connect(server.jid("bob"), "bob-secret"), bob.failure());
        // RFC 6121 §4.2 / XEP-0160 §2: nothing before bob sends available presence.
        sync(bob, server);
        CHECK(bob.expect_none(is_any_message, std::chrono::milliseconds(1)));

        REQUIRE(bob.send("<presence/>"));
        std::vector<Stanza> got;
        for (int i = 0; i < 3; ++i) {
            auto m = bob.wait_for(is_message_with_body);
            REQUIRE_MESSAGE(m, "stored message " << i << " missing; log:\n" << server.log_tail());
            got.push_back(*m);
        }
        CHECK(got[0].child_text("body") == "first");
        CHECK(got[1].child_text("body") == "second");
        CHECK(got[2].child_text("body") == "third & last");
        CHECK(got[0].id() == "m1");
        for (const auto& m : got) {
            CHECK(m.from() == alice.bound_jid());
            CHECK(m.type() == "chat");
            auto delay = m.child("delay", ns_delay);
            REQUIRE_MESSAGE(delay, "no XEP-0203 delay in " << m.to_xml());
            CHECK(delay->attr("from") == server.domain());
            CHECK(std::regex_match(delay->attr("stamp"),
                                   std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")));
        }
        sync(bob, server);
        CHECK(bob.expect_none(is_any_message, std::chrono::milliseconds(1)));  // no duplicates
        bob.disconnect();
    }

    // Deliver-then-delete: a second login gets nothing.
    TestClient bob2(server, {.resource = "tablet"});
    come_online(bob2, server, "bob", "bob-secret");
    CHECK(bob2.expect_none(is_any_message, std::chrono::milliseconds(200)));

    // Once bob is online, messages go straight to him without a delay.
    REQUIRE(alice.send(chat(server, "bob", "live", "m4")));
    auto live = bob2.wait_for(is_message_with_body);
    REQUIRE(live);
    CHECK(live->child_text("body") == "live");
    CHECK_FALSE(live->child("delay", ns_delay));
}

TEST_CASE("XEP-0160 §2 step 3: a full offline queue bounces with service-unavailable and stores "
          "nothing more") {
    TestServer server({.config = {{"offline.quota", "2"}}});
    server.add_user("alice", "alice-secret", "supporter");
    server.add_user("bob", "bob-secret");
    server.start();

    TestClient alice(server);
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    REQUIRE(alice.send(chat(server, "bob", "one", "q1")));
    REQUIRE(alice.send(chat(server, "bob", "two", "q2")));
    sync(alice, server);
    CHECK(alice.expect_none(is_message_error, std::chrono::milliseconds(1)));

    REQUIRE(alice.send(chat(server, "bob", "three", "q3")));
    auto err = alice.wait_for(is_message_error);
    REQUIRE_MESSAGE(err, "no bounce for a message over quota; log:\n" << server.log_tail());
    CHECK(err->id() == "q3");
    CHECK(err->from() == server.jid("bob"));
    auto error = err->child("error");
    REQUIRE(error);
    CHECK(error->type() == "cancel");
    CHECK(error->child("service-unavailable", ns_stanzas));
    CHECK(error->child_text("text", ns_stanzas) == "The recipient's offline storage is full.");

    // The text follows the stanza's language.
    REQUIRE(alice.send("<message to='" + server.jid("bob") +
                       "' type='chat' id='q4' xml:lang='de'><body>vier</body></message>"));
    auto err_de = alice.wait_for(is_message_error);
    REQUIRE(err_de);
    CHECK(err_de->id() == "q4");
    auto text = err_de->child("error")->child("text", ns_stanzas);
    REQUIRE(text);
    // libstrophe's namespace-aware parser reports xml:lang under its local name.
    CHECK((text->attr("xml:lang") == "de" || text->attr("lang") == "de"));
    CHECK(text->text() == "Der Offline-Speicher des Empfängers ist voll.");

    TestClient bob(server);
    come_online(bob, server, "bob", "bob-secret");
    std::vector<std::string> bodies;
    while (auto m = bob.wait_for(is_message_with_body, std::chrono::milliseconds(200))) {
        bodies.push_back(m->child_text("body"));
    }
    CHECK(bodies == std::vector<std::string>{"one", "two"});
}

TEST_CASE("XEP-0160 §3 / XEP-0334: headlines, standalone chat states and no-store messages are "
          "not stored") {
    TestServer server;
    server.add_user("alice", "alice-secret", "supporter");
    server.add_user("bob", "bob-secret");
    server.start();

    TestClient alice(server);
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    // RFC 6121 §8.5.2.2.1: a headline to an offline user is silently dropped.
    REQUIRE(alice.send("<message to='" + server.jid("bob") +
                       "' type='headline' id='h1'><body>news</body></message>"));
    // XEP-0085 content only: dropped without an error.
    REQUIRE(alice.send("<message to='" + server.jid("bob") +
                       "' type='chat' id='cs1'><composing "
                       "xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    sync(alice, server);
    CHECK(alice.expect_none(is_message_error, std::chrono::milliseconds(1)));

    // XEP-0334 §4: <no-store/> forbids offline storage, so the message bounces.
    REQUIRE(alice.send(
        chat(server, "bob", "ephemeral", "ns1", "<no-store xmlns='urn:xmpp:hints'/>")));
    auto err = alice.wait_for(is_message_error);
    REQUIRE_MESSAGE(err, "no bounce for a no-store message; log:\n" << server.log_tail());
    CHECK(err->id() == "ns1");
    CHECK(err->child("error")->child("service-unavailable", ns_stanzas));

    // A chat state next to a body is stored (the body is worth it).
    REQUIRE(alice.send(chat(server, "bob", "kept", "k1",
                            "<active xmlns='http://jabber.org/protocol/chatstates'/>")));
    sync(alice, server);
    CHECK(alice.expect_none(is_message_error, std::chrono::milliseconds(1)));

    TestClient bob(server);
    come_online(bob, server, "bob", "bob-secret");
    auto kept = bob.wait_for(is_any_message, std::chrono::milliseconds(500));
    REQUIRE(kept);
    CHECK(kept->id() == "k1");
    CHECK(kept->child_text("body") == "kept");
    CHECK(bob.expect_none(is_any_message, std::chrono::milliseconds(200)));
}

TEST_CASE("XEP-0160: a stored message survives kill -9 of havend") {
    TestServer server;
    server.add_user("alice", "alice-secret", "supporter");
    server.add_user("bob", "bob-secret");
    server.start();

    {
        TestClient alice(server);
        REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
        REQUIRE(alice.send(chat(server, "bob", "before the crash", "c1")));
        sync(alice, server);  // processed, hence committed
        CHECK(alice.expect_none(is_message_error, std::chrono::milliseconds(1)));
        server.kill9();
        CHECK(alice.wait_disconnected());
    }
    server.start();

    TestClient bob(server);
    come_online(bob, server, "bob", "bob-secret");
    auto m = bob.wait_for(is_message_with_body, std::chrono::milliseconds(1000));
    REQUIRE_MESSAGE(m, "message lost in the crash; log:\n" << server.log_tail());
    CHECK(m->child_text("body") == "before the crash");
    CHECK(m->child("delay", ns_delay));
}

TEST_CASE("RFC 6121 §4.2: messages stored while a session was unavailable arrive when it becomes "
          "available again, without a new login") {
    TestServer server;
    server.add_user("alice", "alice-secret", "supporter");
    server.add_user("bob", "bob-secret");
    server.start();
    TestClient alice(server, {.resource = "phone"});
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    TestClient bob(server, {.resource = "laptop"});
    come_online(bob, server, "bob", "bob-secret");
    REQUIRE(bob.send("<presence type='unavailable'/>"));
    sync(bob, server);
    REQUIRE(alice.send(chat(server, "bob", "while you were away", "u1")));
    sync(alice, server);
    CHECK(bob.expect_none(is_message_with_body, std::chrono::milliseconds(300)));
    REQUIRE(bob.send("<presence/>"));
    auto m = bob.wait_for([](const Stanza& s) { return s.child_text("body") == "while you were away"; });
    REQUIRE(m);
    CHECK(m->child("delay", "urn:xmpp:delay"));
}
