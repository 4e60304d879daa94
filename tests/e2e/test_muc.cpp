// XEP-0045 Multi-User Chat end to end with libstrophe clients (a second client library beside
// tests/e2e/test_muc.py): create, configure, enter, talk, private messages, kick, persistence.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;

namespace {
constexpr std::string_view ns_muc = "http://jabber.org/protocol/muc";
constexpr std::string_view ns_user = "http://jabber.org/protocol/muc#user";
const std::string room = "tea@groups.localhost";

void login(TestClient& c, TestServer& server, const std::string& user) {
    REQUIRE_MESSAGE(c.connect(server.jid(user), "pw-" + user), c.failure());
    REQUIRE(c.send("<presence/>"));
}

std::vector<std::string> status_codes(const Stanza& s) {
    std::vector<std::string> out;
    if (auto x = s.child("x", ns_user)) {
        for (const auto& c : x->children()) {
            if (c.name() == "status") {
                out.push_back(c.attr("code"));
            }
        }
    }
    return out;
}

bool has_code(const Stanza& s, std::string_view code) {
    for (const auto& c : status_codes(s)) {
        if (c == code) {
            return true;
        }
    }
    return false;
}

// Enters the room and waits for the self-presence (status 110).
std::optional<Stanza> enter(TestClient& c, const std::string& nick) {
    c.send("<presence to='" + room + "/" + nick + "'><x xmlns='" + std::string(ns_muc) +
           "'/></presence>");
    return c.wait_for([&](const Stanza& s) {
        return s.name() == "presence" && s.from() == room + "/" + nick &&
               (s.type() == "error" || has_code(s, "110"));
    });
}
}  // namespace

TEST_CASE("XEP-0045 §10.1, §7.2, §7.4, §7.5, §8.2: a room's life with libstrophe clients") {
    TestServer server;
    for (const char* u : {"alice", "bob"}) {
        server.add_user(u, std::string("pw-") + u);
    }
    server.start();
    TestClient alice(server, {.resource = "a"});
    TestClient bob(server, {.resource = "b"});
    login(alice, server, "alice");
    login(bob, server, "bob");

    // §10.1.2: creation, locked until the owner accepts the instant configuration.
    auto created = enter(alice, "Alice");
    REQUIRE(created);
    CHECK(has_code(*created, "201"));
    auto locked = enter(bob, "Bob");
    REQUIRE(locked);
    CHECK(locked->type() == "error");
    CHECK(locked->child("error")->child("item-not-found"));
    auto form = alice.iq_roundtrip(
        "<iq type='set' to='" + room +
        "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
        "type='submit'><field var='muc#roomconfig_persistentroom'><value>1</value></field>"
        "</x></query></iq>");
    REQUIRE(form);
    CHECK(form->type() == "result");

    // §7.2.3: Bob sees Alice first, then himself; Alice sees Bob come in.
    auto joined = enter(bob, "Bob");
    REQUIRE(joined);
    CHECK(joined->type() != "error");
    CHECK(alice.wait_for([](const Stanza& s) {
        return s.name() == "presence" && s.from() == room + "/Bob";
    }));

    // §7.4: a groupchat message reaches every occupant from the sender's occupant JID.
    bob.send("<message to='" + room + "' type='groupchat'><body>hello room</body></message>");
    for (TestClient* c : {&alice, &bob}) {
        auto m = c->wait_for([](const Stanza& s) { return s.child_text("body") == "hello room"; });
        REQUIRE(m);
        CHECK(m->from() == room + "/Bob");
        CHECK(m->child("occupant-id", "urn:xmpp:occupant-id:0"));
    }

    // §7.5: a private message goes to the nick, from the sender's nick.
    alice.send("<message to='" + room + "/Bob' type='chat'><body>psst</body></message>");
    auto pm = bob.wait_for([](const Stanza& s) { return s.child_text("body") == "psst"; });
    REQUIRE(pm);
    CHECK(pm->from() == room + "/Alice");

    // §8.2: the owner kicks Bob; he leaves with 307.
    auto kick = alice.iq_roundtrip("<iq type='set' to='" + room +
                                   "'><query xmlns='http://jabber.org/protocol/muc#admin'>"
                                   "<item nick='Bob' role='none'><reason>tea time over</reason>"
                                   "</item></query></iq>");
    REQUIRE(kick);
    CHECK(kick->type() == "result");
    auto kicked = bob.wait_for([](const Stanza& s) {
        return s.name() == "presence" && s.type() == "unavailable" && has_code(s, "307");
    });
    REQUIRE(kicked);
    CHECK(has_code(*kicked, "110"));

    // Persistent: after a restart the room is still there, its owner gets no 201.
    alice.disconnect();
    bob.disconnect();
    server.restart();
    TestClient again(server, {.resource = "a2"});
    login(again, server, "alice");
    auto back = enter(again, "Alice");
    REQUIRE(back);
    CHECK(back->type() != "error");
    CHECK_FALSE(has_code(*back, "201"));
    auto item = back->child("x", ns_user)->child("item");
    REQUIRE(item);
    CHECK(item->attr("affiliation") == "owner");
}
