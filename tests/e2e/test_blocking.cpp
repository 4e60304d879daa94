// Blocking Command (XEP-0191) against a real havend: the list, pushes, and what a block stops.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "e2e/harness/client.hpp"
#include "e2e/harness/online.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* blocking_ns = "urn:xmpp:blocking";
constexpr const char* blocking_errors = "urn:xmpp:blocking:errors";


bool has_blocked_condition(const Stanza& s) {
    auto err = s.child("error");
    return err && err->child("blocked", blocking_errors).has_value();
}

std::vector<std::string> item_jids(const Stanza& payload) {
    std::vector<std::string> out;
    for (const auto& c : payload.children()) {
        if (c.name() == "item") {
            out.push_back(c.attr("jid"));
        }
    }
    return out;
}

bool stored_in_plaintext(const std::filesystem::path& dir, const std::string& needle) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
        if (!entry.is_regular_file()) {
            continue;
        }
        std::ifstream in(entry.path(), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (bytes.find(needle) != std::string::npos) {
            return true;
        }
    }
    return false;
}

StanzaPredicate message_with_body(std::string body) {
    return [body](const Stanza& s) {
        return s.name() == "message" && s.child_text("body") == body;
    };
}

StanzaPredicate error_reply(std::string name, std::string id) {
    return [name, id](const Stanza& s) {
        return s.name() == name && s.type() == "error" && s.id() == id;
    };
}

StanzaPredicate any_of_kind(std::string name) {
    return [name](const Stanza& s) { return s.name() == name; };
}

struct Fixture {
    TestServer server;
    TestClient alice{server, {.resource = "phone"}};
    TestClient bob{server, {.resource = "laptop"}};

    Fixture() {
        // Supporters: the peer-support policy would otherwise refuse member-to-member traffic
        // before blocking is even asked.
        server.add_user("alice", "alice-secret", "supporter");
        server.add_user("bob", "bob-secret", "supporter");
        server.start();
        REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
        REQUIRE_MESSAGE(bob.connect(server.jid("bob"), "bob-secret"), bob.failure());
    }

    std::string bob_full() const { return bob.bound_jid(); }
    std::string alice_full() const { return alice.bound_jid(); }

    Stanza iq(TestClient& c, const std::string& xml) {
        auto r = c.iq_roundtrip(xml);
        REQUIRE_MESSAGE(r, "no answer to " << xml << "\nserver log:\n" << server.log_tail());
        return *r;
    }
    void block(TestClient& c, const std::string& jid) {
        auto r = iq(c, std::string("<iq type='set'><block xmlns='") + blocking_ns +
                           "'><item jid='" + jid + "'/></block></iq>");
        REQUIRE_MESSAGE(r.type() == "result", r.to_xml());
    }
    void unblock(TestClient& c, const std::string& jid) {
        auto r = iq(c, std::string("<iq type='set'><unblock xmlns='") + blocking_ns +
                           "'><item jid='" + jid + "'/></unblock></iq>");
        REQUIRE_MESSAGE(r.type() == "result", r.to_xml());
    }
    std::vector<std::string> blocklist(TestClient& c) {
        auto r = iq(c, std::string("<iq type='get'><blocklist xmlns='") + blocking_ns +
                           "'/></iq>");
        REQUIRE_MESSAGE(r.type() == "result", r.to_xml());
        auto list = r.child("blocklist", blocking_ns);
        REQUIRE(list);
        return item_jids(*list);
    }
    // Sends a chat message; true when `to_client` receives it.
    bool delivered(TestClient& from, TestClient& to_client, const std::string& to,
                   const std::string& body) {
        REQUIRE(from.send("<message type='chat' to='" + to + "'><body>" + body +
                          "</body></message>"));
        return to_client.wait_for(message_with_body(body), 3s).has_value();
    }
};

}  // namespace

TEST_CASE("XEP-0191 §3.1: the server advertises urn:xmpp:blocking") {
    Fixture f;
    auto r = f.iq(f.alice, "<iq type='get' to='" + f.server.domain() +
                               "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    REQUIRE(r.type() == "result");
    bool found = false;
    for (const auto& c : r.child("query")->children()) {
        found = found || (c.name() == "feature" && c.attr("var") == blocking_ns);
    }
    CHECK(found);
}

TEST_CASE("XEP-0191 §3.2, §3.3: the list starts empty, a block adds to it, bad blocks fail") {
    Fixture f;
    CHECK(f.blocklist(f.alice).empty());
    f.block(f.alice, f.server.jid("bob"));
    f.block(f.alice, "troll@evil.example");
    f.block(f.alice, f.server.jid("bob"));  // again: no duplicate
    auto list = f.blocklist(f.alice);
    CHECK(list == std::vector<std::string>{f.server.jid("bob"), "troll@evil.example"});
    CHECK(f.blocklist(f.bob).empty());  // per user

    auto no_items = f.iq(f.alice, std::string("<iq type='set'><block xmlns='") + blocking_ns +
                                      "'/></iq>");
    CHECK(error_condition(no_items) == "bad-request");
    auto bad_jid = f.iq(f.alice, std::string("<iq type='set'><block xmlns='") + blocking_ns +
                                     "'><item jid='a@b@c'/></block></iq>");
    CHECK(error_condition(bad_jid) == "jid-malformed");
    // Somebody else's list is not theirs to read or change.
    auto other = f.iq(f.alice, "<iq type='get' to='" + f.server.jid("bob") +
                                   "'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    CHECK(error_condition(other) == "not-acceptable");  // alice blocks bob: her stanzas bounce
    f.unblock(f.alice, f.server.jid("bob"));
    other = f.iq(f.alice, "<iq type='get' to='" + f.server.jid("bob") +
                              "'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    CHECK(error_condition(other) == "forbidden");
    auto other_set = f.iq(f.alice, "<iq type='set' to='" + f.server.jid("bob") +
                                       "'><block xmlns='urn:xmpp:blocking'><item jid='" +
                                       f.server.jid("alice") + "'/></block></iq>");
    CHECK(error_condition(other_set) == "forbidden");
    CHECK(f.blocklist(f.bob).empty());
    f.block(f.alice, f.server.jid("bob"));
    CHECK(f.blocklist(f.alice).size() == 2);
}

TEST_CASE("XEP-0191 §3.3: nothing from a blocked contact is delivered; messages and IQs "
          "bounce with service-unavailable, presence silently") {
    Fixture f;
    // Baseline: delivery works before the block, so the checks below can fail.
    REQUIRE(f.delivered(f.bob, f.alice, f.alice_full(), "before"));

    f.block(f.alice, f.server.jid("bob"));

    REQUIRE(f.bob.send("<message type='chat' id='m1' to='" + f.alice_full() +
                       "'><body>to-full</body></message>"));
    auto err = f.bob.wait_for(error_reply("message", "m1"));
    REQUIRE_MESSAGE(err, "no bounce; server log:\n" << f.server.log_tail());
    CHECK(error_condition(*err) == "service-unavailable");
    CHECK_FALSE(has_blocked_condition(*err));  // the blocked party is not told why

    // To the bare JID too, and no offline storage either.
    REQUIRE(f.bob.send("<message type='chat' id='m2' to='" + f.server.jid("alice") +
                       "'><body>to-bare</body></message>"));
    err = f.bob.wait_for(error_reply("message", "m2"));
    REQUIRE(err);
    CHECK(error_condition(*err) == "service-unavailable");

    auto ping = f.iq(f.bob, "<iq type='get' id='p1' to='" + f.alice_full() +
                                "'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(error_condition(ping) == "service-unavailable");

    REQUIRE(f.bob.send("<presence to='" + f.alice_full() + "'/>"));
    REQUIRE(f.bob.send("<presence type='subscribe' to='" + f.server.jid("alice") + "'/>"));
    // Presence gets no answer at all (§3.3: MUST NOT respond).
    CHECK(f.bob.expect_none(any_of_kind("presence"), 500ms));

    CHECK(f.alice.expect_none(
        [](const Stanza& s) {
            return s.name() == "message" || s.name() == "presence" ||
                   (s.name() == "iq" && s.type() == "get");
        },
        300ms));

    // Alice reconnecting sees no stored message or subscription request from bob either.
    f.alice.disconnect();
    TestClient alice(f.server, {.resource = "again"});
    REQUIRE_MESSAGE(alice.connect(f.server.jid("alice"), "alice-secret"), alice.failure());
    REQUIRE(alice.send("<presence/>"));
    CHECK(alice.expect_none(
        [](const Stanza& s) {
            return s.name() == "message" || (s.name() == "presence" && s.type() == "subscribe");
        },
        800ms));
}

TEST_CASE("XEP-0191 §3.3: the user's stanzas to a blocked JID bounce with not-acceptable and "
          "<blocked xmlns='urn:xmpp:blocking:errors'/>") {
    Fixture f;
    f.block(f.alice, f.server.jid("bob"));
    f.block(f.alice, "evil.example");

    REQUIRE(f.alice.send("<message type='chat' id='o1' to='" + f.bob_full() +
                         "'><body>hello?</body></message>"));
    auto err = f.alice.wait_for(error_reply("message", "o1"));
    REQUIRE_MESSAGE(err, "no bounce; server log:\n" << f.server.log_tail());
    CHECK(error_condition(*err) == "not-acceptable");
    CHECK(has_blocked_condition(*err));
    CHECK(err->from() == f.bob_full());

    auto iq = f.iq(f.alice, "<iq type='get' to='" + f.server.jid("bob") +
                                "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    CHECK(error_condition(iq) == "not-acceptable");
    CHECK(has_blocked_condition(iq));

    REQUIRE(f.alice.send("<presence id='d1' to='" + f.bob_full() + "'/>"));
    err = f.alice.wait_for(error_reply("presence", "d1"));
    REQUIRE(err);
    CHECK(error_condition(*err) == "not-acceptable");

    // A domain item covers every address at it (§6), remote ones included.
    REQUIRE(f.alice.send("<message type='chat' id='o2' to='troll@evil.example/x'>"
                         "<body>x</body></message>"));
    err = f.alice.wait_for(error_reply("message", "o2"));
    REQUIRE(err);
    CHECK(error_condition(*err) == "not-acceptable");
    CHECK(has_blocked_condition(*err));

    CHECK(f.bob.expect_none(
        [](const Stanza& s) { return s.name() == "message" || s.name() == "iq"; }, 300ms));
}

TEST_CASE("XEP-0191 §3.3, §3.4, §3.5: block and unblock pushes reach every resource that "
          "retrieved the list, and only those") {
    Fixture f;
    TestClient tablet(f.server, {.resource = "tablet"});
    TestClient watch(f.server, {.resource = "watch"});
    REQUIRE_MESSAGE(tablet.connect(f.server.jid("alice"), "alice-secret"), tablet.failure());
    REQUIRE_MESSAGE(watch.connect(f.server.jid("alice"), "alice-secret"), watch.failure());
    CHECK(f.blocklist(tablet).empty());  // tablet asks for the list; watch never does

    auto is_push = [](std::string kind) {
        return [kind](const Stanza& s) {
            return s.name() == "iq" && s.type() == "set" && s.child(kind, blocking_ns);
        };
    };

    f.block(f.alice, f.server.jid("bob"));
    auto push = tablet.wait_for(is_push("block"));
    REQUIRE_MESSAGE(push, "no block push; server log:\n" << f.server.log_tail());
    CHECK(push->to() == tablet.bound_jid());
    CHECK(item_jids(*push->child("block", blocking_ns)) ==
          std::vector<std::string>{f.server.jid("bob")});

    f.unblock(f.alice, f.server.jid("bob"));
    push = tablet.wait_for(is_push("unblock"));
    REQUIRE(push);
    CHECK(item_jids(*push->child("unblock", blocking_ns)) ==
          std::vector<std::string>{f.server.jid("bob")});

    // §3.5: unblock all is pushed as an empty <unblock/>.
    f.block(f.alice, "a@evil.example");
    REQUIRE(tablet.wait_for(is_push("block")));
    auto all = f.iq(f.alice, std::string("<iq type='set'><unblock xmlns='") + blocking_ns +
                                 "'/></iq>");
    REQUIRE(all.type() == "result");
    push = tablet.wait_for(is_push("unblock"));
    REQUIRE(push);
    CHECK(item_jids(*push->child("unblock", blocking_ns)).empty());
    CHECK(f.blocklist(f.alice).empty());

    CHECK(watch.expect_none(
        [](const Stanza& s) { return s.name() == "iq" && s.type() == "set"; }, 300ms));
}

TEST_CASE("XEP-0191 §3.4: unblocking restores delivery in both directions") {
    Fixture f;
    f.block(f.alice, f.server.jid("bob"));
    CHECK_FALSE(f.delivered(f.bob, f.alice, f.alice_full(), "while-blocked"));
    f.unblock(f.alice, f.server.jid("bob"));
    CHECK(f.blocklist(f.alice).empty());
    CHECK(f.delivered(f.bob, f.alice, f.alice_full(), "bob-after"));
    CHECK(f.delivered(f.alice, f.bob, f.bob_full(), "alice-after"));
    CHECK(f.alice.expect_none([](const Stanza& s) { return s.type() == "error"; }, 200ms));
}

TEST_CASE("XEP-0191 §6: a full-JID item blocks only that resource") {
    Fixture f;
    TestClient desk(f.server, {.resource = "desk"});
    REQUIRE_MESSAGE(desk.connect(f.server.jid("bob"), "bob-secret"), desk.failure());
    f.block(f.alice, f.bob_full());
    CHECK_FALSE(f.delivered(f.bob, f.alice, f.alice_full(), "from-laptop"));
    CHECK(f.delivered(desk, f.alice, f.alice_full(), "from-desk"));
}

TEST_CASE("XEP-0191 §3.3, §3.4: a block sends the contact unavailable presence, an unblock the "
          "current presence again") {
    Fixture f;
    // Alice is available and has sent bob directed presence (RFC 6121 §4.6), so bob may see it.
    REQUIRE(f.alice.send("<presence><status>here</status></presence>"));
    REQUIRE(f.alice.send("<presence to='" + f.bob_full() + "'><status>here</status></presence>"));
    auto seen = f.bob.wait_for([&](const Stanza& s) {
        return s.name() == "presence" && s.from() == f.alice_full() && s.type().empty();
    });
    REQUIRE_MESSAGE(seen, "no directed presence; server log:\n" << f.server.log_tail());

    f.block(f.alice, f.server.jid("bob"));
    auto gone = f.bob.wait_for([&](const Stanza& s) {
        return s.name() == "presence" && s.from() == f.alice_full() && s.type() == "unavailable";
    });
    CHECK_MESSAGE(gone, "bob still sees alice online; server log:\n" << f.server.log_tail());

    f.unblock(f.alice, f.server.jid("bob"));
    auto back = f.bob.wait_for([&](const Stanza& s) {
        return s.name() == "presence" && s.from() == f.alice_full() && s.type().empty();
    });
    REQUIRE(back);
    CHECK(back->child_text("status") == "here");
}

TEST_CASE("XEP-0191 §3.3: a block lasts across sessions and restarts, sealed at rest") {
    Fixture f;
    f.block(f.alice, f.server.jid("bob"));
    f.block(f.alice, "troll@evil.example");
    f.alice.disconnect();
    f.bob.disconnect();
    REQUIRE(f.server.stop() == 0);
    CHECK_FALSE(stored_in_plaintext(f.server.data_dir(), "troll@evil.example"));
    f.server.start();

    TestClient alice(f.server, {.resource = "again"});
    TestClient bob(f.server, {.resource = "again"});
    REQUIRE_MESSAGE(alice.connect(f.server.jid("alice"), "alice-secret"), alice.failure());
    REQUIRE_MESSAGE(bob.connect(f.server.jid("bob"), "bob-secret"), bob.failure());
    CHECK(f.blocklist(alice) ==
          std::vector<std::string>{f.server.jid("bob"), "troll@evil.example"});
    REQUIRE(bob.send("<message type='chat' id='r1' to='" + alice.bound_jid() +
                     "'><body>after-restart</body></message>"));
    auto err = bob.wait_for(error_reply("message", "r1"));
    REQUIRE(err);
    CHECK(error_condition(*err) == "service-unavailable");
    CHECK(alice.expect_none(message_with_body("after-restart"), 300ms));
}
