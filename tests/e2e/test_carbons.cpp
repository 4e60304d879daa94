// XEP-0280 Message Carbons end to end: a user's second device sees sent and received chats.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;

namespace {
constexpr std::string_view ns_carbons = "urn:xmpp:carbons:2";

void login(TestClient& c, TestServer& server, const std::string& user) {
    REQUIRE_MESSAGE(c.connect(server.jid(user), "pw-" + user), c.failure());
    REQUIRE(c.send("<presence/>"));
}

bool carbon_with_body(const Stanza& s, std::string_view direction, std::string_view body) {
    if (s.name() != "message") {
        return false;
    }
    auto wrapper = s.child(direction, ns_carbons);
    if (!wrapper) {
        return false;
    }
    auto fwd = wrapper->child("forwarded", "urn:xmpp:forward:0");
    auto inner = fwd ? fwd->child("message") : std::nullopt;
    return inner && inner->child_text("body") == body;
}
}  // namespace

TEST_CASE("XEP-0280 §6: sent and received chats are copied to carbon-enabled resources") {
    TestServer server;
    server.add_user("alice", "pw-alice");
    server.add_user("bob", "pw-bob");
    server.start();
    TestClient phone(server, {.resource = "phone"});
    TestClient laptop(server, {.resource = "laptop"});
    TestClient bob(server, {.resource = "desk"});
    login(phone, server, "alice");
    login(laptop, server, "alice");
    login(bob, server, "bob");

    // Discoverable, and enabling answers with a result.
    auto info = laptop.iq_roundtrip("<iq type='get' to='" + server.domain() +
                                    "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    REQUIRE(info);
    CHECK(info->to_xml().find("urn:xmpp:carbons:2") != std::string::npos);
    auto enabled = laptop.iq_roundtrip("<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    REQUIRE(enabled);
    CHECK(enabled->type() == "result");

    bob.send("<message to='" + phone.bound_jid() + "' type='chat'><body>to the phone</body></message>");
    REQUIRE(phone.wait_for([](const Stanza& s) { return s.child_text("body") == "to the phone"; }));
    auto rc = laptop.wait_for([](const Stanza& s) { return carbon_with_body(s, "received", "to the phone"); });
    REQUIRE(rc);
    CHECK(rc->from() == server.jid("alice"));

    phone.send("<message to='" + server.jid("bob") + "' type='chat'><body>from the phone</body></message>");
    CHECK(laptop.wait_for([](const Stanza& s) { return carbon_with_body(s, "sent", "from the phone"); }));

    // <private/> opts out (§7); a resource without carbons enabled gets no copies.
    phone.send("<message to='" + server.jid("bob") + "' type='chat'><body>secret</body>"
               "<private xmlns='urn:xmpp:carbons:2'/></message>");
    REQUIRE(bob.wait_for([](const Stanza& s) { return s.child_text("body") == "secret"; }));
    CHECK(laptop.expect_none([](const Stanza& s) { return carbon_with_body(s, "sent", "secret"); }, 500ms));
    laptop.send("<message to='" + server.jid("bob") + "' type='chat'><body>from the laptop</body></message>");
    REQUIRE(bob.wait_for([](const Stanza& s) { return s.child_text("body") == "from the laptop"; }));
    CHECK(phone.expect_none([](const Stanza& s) { return carbon_with_body(s, "sent", "from the laptop"); }, 500ms));

    // Disabling stops the copies.
    REQUIRE(laptop.iq_roundtrip("<iq type='set'><disable xmlns='urn:xmpp:carbons:2'/></iq>"));
    bob.send("<message to='" + phone.bound_jid() + "' type='chat'><body>after disable</body></message>");
    REQUIRE(phone.wait_for([](const Stanza& s) { return s.child_text("body") == "after disable"; }));
    CHECK(laptop.expect_none([](const Stanza& s) { return carbon_with_body(s, "received", "after disable"); }, 500ms));
}
