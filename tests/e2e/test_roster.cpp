// RFC 6121 §2 roster management through a real havend: get, set, remove, pushes, errors, XEP-0237.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "e2e/harness/client.hpp"
#include "e2e/harness/online.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;

namespace {

constexpr const char* ns_roster = "jabber:iq:roster";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";


void login(TestClient& c, const TestServer& server, std::string_view local) {
    REQUIRE_MESSAGE(c.connect(server.jid(local), std::string(local) + "-secret"), c.failure());
}

std::optional<Stanza> roster_get(TestClient& c, std::string_view attrs = {}) {
    return c.iq_roundtrip("<iq type='get'><query xmlns='jabber:iq:roster'" + std::string(attrs) +
                          "/></iq>");
}

std::optional<Stanza> roster_set(TestClient& c, std::string_view items) {
    return c.iq_roundtrip("<iq type='set'><query xmlns='jabber:iq:roster'>" + std::string(items) +
                          "</query></iq>");
}

// The type of the answer to a roster set ("" when none came).
std::string set_type(TestClient& c, std::string_view items) {
    auto r = roster_set(c, items);
    return r ? r->type() : std::string{};
}

// The <item/> children of a roster result or push.
std::vector<Stanza> items_of(const Stanza& iq) {
    std::vector<Stanza> out;
    if (auto q = iq.child("query", ns_roster)) {
        for (const auto& c : q->children()) {
            if (c.name() == "item") {
                out.push_back(c);
            }
        }
    }
    return out;
}

std::vector<std::string> groups_of(const Stanza& item) {
    std::vector<std::string> out;
    for (const auto& c : item.children()) {
        if (c.name() == "group") {
            out.push_back(c.text());
        }
    }
    return out;
}

// A roster push (RFC 6121 §2.1.6) carrying an item for `jid`.
StanzaPredicate push_for(std::string jid) {
    return [jid](const Stanza& s) {
        if (s.name() != "iq" || s.type() != "set") {
            return false;
        }
        auto items = items_of(s);
        return items.size() == 1 && items[0].attr("jid") == jid;
    };
}


}  // namespace

TEST_CASE(
    "RFC 6121 §2.1.3, §2.3.2, §2.1.6: a roster set is pushed to every interested resource, and "
    "only to those; roster get returns the item") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.start();
    const auto bob = server.jid("bob");

    TestClient phone(server, {.resource = "phone"});
    TestClient laptop(server, {.resource = "laptop"});
    TestClient tablet(server, {.resource = "tablet"});  // never asks for the roster
    login(phone, server, "alice");
    login(laptop, server, "alice");
    login(tablet, server, "alice");

    auto empty = roster_get(phone);
    REQUIRE(empty);
    CHECK(empty->type() == "result");
    REQUIRE(empty->child("query", ns_roster));
    CHECK(items_of(*empty).empty());
    CHECK(empty->child("query", ns_roster)->has_attr("ver"));  // XEP-0237
    REQUIRE(roster_get(laptop));

    auto set = roster_set(phone, "<item jid='" + bob +
                                     "' name='Bob'><group>Peers</group><group>Friends</group>"
                                     "</item>");
    REQUIRE(set);
    CHECK(set->type() == "result");

    for (TestClient* c : {&phone, &laptop}) {
        auto push = c->wait_for(push_for(bob));
        REQUIRE_MESSAGE(push, "no roster push; log:\n" << server.log_tail());
        CHECK((push->from().empty() || push->from() == server.jid("alice")));
        CHECK(push->child("query", ns_roster)->has_attr("ver"));
        auto item = items_of(*push).at(0);
        CHECK(item.attr("name") == "Bob");
        CHECK(item.attr("subscription") == "none");
        CHECK_FALSE(item.has_attr("ask"));
        CHECK(groups_of(item) == std::vector<std::string>{"Friends", "Peers"});
    }
    sync(tablet, server);
    CHECK(tablet.expect_none(push_for(bob), std::chrono::milliseconds(1)));

    auto got = roster_get(laptop);
    REQUIRE(got);
    auto items = items_of(*got);
    REQUIRE(items.size() == 1);
    CHECK(items[0].attr("jid") == bob);
    CHECK(items[0].attr("name") == "Bob");
    CHECK(groups_of(items[0]) == std::vector<std::string>{"Friends", "Peers"});

    // Updating: the name changes, leaving out <group/> removes the item from all groups.
    REQUIRE(set_type(laptop, "<item jid='" + bob + "' name='Bobby'/>") == "result");
    for (TestClient* c : {&phone, &laptop}) {
        auto push = c->wait_for(push_for(bob));
        REQUIRE(push);
        auto item = items_of(*push).at(0);
        CHECK(item.attr("name") == "Bobby");
        CHECK(groups_of(item).empty());
    }
    // Other users' rosters are untouched.
    TestClient b(server, {.resource = "desk"});
    login(b, server, "bob");
    auto bobs = roster_get(b);
    REQUIRE(bobs);
    CHECK(items_of(*bobs).empty());
}

TEST_CASE(
    "RFC 6121 §2.5: removal is pushed as subscription='remove' to both resources; removing an "
    "unknown item is item-not-found (§2.5.3)") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.start();
    const std::string carol = "carol@example.net";

    TestClient phone(server, {.resource = "phone"});
    TestClient laptop(server, {.resource = "laptop"});
    login(phone, server, "alice");
    login(laptop, server, "alice");
    REQUIRE(roster_get(phone));
    REQUIRE(roster_get(laptop));

    REQUIRE(set_type(phone, "<item jid='" + carol + "'/>") == "result");
    REQUIRE(phone.wait_for(push_for(carol)));
    REQUIRE(laptop.wait_for(push_for(carol)));

    auto removed = roster_set(laptop, "<item jid='" + carol + "' subscription='remove'/>");
    REQUIRE(removed);
    CHECK(removed->type() == "result");
    for (TestClient* c : {&phone, &laptop}) {
        auto push = c->wait_for(push_for(carol));
        REQUIRE_MESSAGE(push, "no removal push; log:\n" << server.log_tail());
        CHECK(items_of(*push).at(0).attr("subscription") == "remove");
    }
    auto got = roster_get(phone);
    REQUIRE(got);
    CHECK(items_of(*got).empty());

    auto again = roster_set(phone, "<item jid='" + carol + "' subscription='remove'/>");
    REQUIRE(again);
    CHECK(again->type() == "error");
    CHECK(error_condition(*again) == "item-not-found");
}

TEST_CASE("RFC 6121 §2.3.3, §2.1.5: invalid roster sets and foreign rosters are refused") {
    TestServer server({.config = {{"roster.max_name_bytes", "16"},
                                  {"roster.max_group_bytes", "8"},
                                  {"roster.max_items", "2"}}});
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.start();
    const auto bob = server.jid("bob");

    TestClient alice(server, {.resource = "phone"});
    login(alice, server, "alice");
    REQUIRE(roster_get(alice));

    struct Case {
        const char* what;
        std::string items;
        const char* condition;
    };
    const std::vector<Case> cases = {
        {"two items", "<item jid='a@example.net'/><item jid='b@example.net'/>", "bad-request"},
        {"no item", "", "bad-request"},
        {"no jid", "<item name='x'/>", "bad-request"},
        {"invalid jid", "<item jid='a@b@c'/>", "bad-request"},
        {"duplicate group", "<item jid='a@example.net'><group>x</group><group>x</group></item>",
         "bad-request"},
        {"empty group", "<item jid='a@example.net'><group></group></item>", "not-acceptable"},
        {"long group", "<item jid='a@example.net'><group>123456789</group></item>",
         "not-acceptable"},
        {"long name", "<item jid='a@example.net' name='12345678901234567'/>", "not-acceptable"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        auto r = roster_set(alice, c.items);
        REQUIRE(r);
        CHECK(r->type() == "error");
        CHECK(error_condition(*r) == c.condition);
    }
    // Limits are inclusive.
    CHECK(set_type(alice,
                   "<item jid='a@example.net' name='1234567890123456'>"
                   "<group>12345678</group></item>") == "result");

    // Another user's roster: neither readable nor writable (RFC 6121 §2.1.5 / §2.3.3).
    auto get = alice.iq_roundtrip("<iq type='get' to='" + bob +
                                  "'><query xmlns='jabber:iq:roster'/></iq>");
    REQUIRE(get);
    CHECK(error_condition(*get) == "forbidden");
    auto set = alice.iq_roundtrip("<iq type='set' to='" + bob +
                                  "'><query xmlns='jabber:iq:roster'><item jid='x@example.net'/>"
                                  "</query></iq>");
    REQUIRE(set);
    CHECK(error_condition(*set) == "forbidden");

    // A full roster takes updates but no new items.
    CHECK(set_type(alice, "<item jid='b@example.net'/>") == "result");
    auto full = roster_set(alice, "<item jid='c@example.net'/>");
    REQUIRE(full);
    CHECK(full->type() == "error");
    CHECK(error_condition(*full) == "policy-violation");
    CHECK(set_type(alice, "<item jid='b@example.net' name='B'/>") == "result");

    // Nothing refused was stored; bob's roster never got the forbidden item.
    auto got = roster_get(alice);
    REQUIRE(got);
    std::vector<std::string> jids;
    for (const auto& item : items_of(*got)) {
        jids.push_back(item.attr("jid"));
    }
    CHECK(jids == std::vector<std::string>{"a@example.net", "b@example.net"});
    TestClient b(server, {.resource = "desk"});
    login(b, server, "bob");
    auto bobs = roster_get(b);
    REQUIRE(bobs);
    CHECK(items_of(*bobs).empty());
}

TEST_CASE(
    "XEP-0237 §4: a roster get with the current version gets an empty result, a stale one the "
    "whole roster, and pushes carry the new version") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.start();

    TestClient alice(server, {.resource = "phone"});
    login(alice, server, "alice");
    auto first = roster_get(alice, " ver=''");
    REQUIRE(first);
    const auto v0 = first->child("query", ns_roster)->attr("ver");

    REQUIRE(set_type(alice, "<item jid='x@example.net'/>") == "result");
    auto push = alice.wait_for(push_for("x@example.net"));
    REQUIRE(push);
    const auto v1 = push->child("query", ns_roster)->attr("ver");
    CHECK(v1 != v0);

    auto current = roster_get(alice, " ver='" + v1 + "'");
    REQUIRE(current);
    CHECK(current->type() == "result");
    CHECK_FALSE(current->child("query", ns_roster));

    auto stale = roster_get(alice, " ver='" + v0 + "'");
    REQUIRE(stale);
    REQUIRE(stale->child("query", ns_roster));
    CHECK(stale->child("query", ns_roster)->attr("ver") == v1);
    CHECK(items_of(*stale).size() == 1);
}

TEST_CASE(
    "RFC 6121 §2.5.2: removing a contact with a mutual subscription cancels it both ways, and "
    "the contact is pushed subscription='none'") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.start();
    const auto alice_jid = server.jid("alice");
    const auto bob_jid = server.jid("bob");

    TestClient alice(server, {.resource = "phone"});
    TestClient bob(server, {.resource = "laptop"});
    login(alice, server, "alice");
    login(bob, server, "bob");
    REQUIRE(roster_get(alice));
    REQUIRE(roster_get(bob));
    REQUIRE(alice.send("<presence/>"));
    REQUIRE(bob.send("<presence/>"));

    auto subscription_push = [](std::string jid, std::string sub) -> StanzaPredicate {
        return [jid, sub](const Stanza& s) {
            auto base = push_for(jid);
            return base(s) && items_of(s).at(0).attr("subscription") == sub &&
                   !items_of(s).at(0).has_attr("ask");
        };
    };
    // Mutual subscription through the protocol (RFC 6121 §3.1).
    REQUIRE(alice.send("<presence type='subscribe' to='" + bob_jid + "'/>"));
    REQUIRE(bob.wait_for([](const Stanza& s) { return s.type() == "subscribe"; }));
    REQUIRE(bob.send("<presence type='subscribed' to='" + alice_jid + "'/>"));
    REQUIRE(bob.send("<presence type='subscribe' to='" + alice_jid + "'/>"));
    REQUIRE(alice.wait_for([](const Stanza& s) { return s.type() == "subscribe"; }));
    REQUIRE(alice.send("<presence type='subscribed' to='" + bob_jid + "'/>"));
    REQUIRE_MESSAGE(alice.wait_for(subscription_push(bob_jid, "both")), server.log_tail());
    REQUIRE(bob.wait_for(subscription_push(alice_jid, "both")));
    // Bob sees alice online before the removal.
    REQUIRE(bob.wait_for([&](const Stanza& s) {
        return s.name() == "presence" && s.type().empty() && s.from() == alice.bound_jid();
    }));

    auto removed = roster_set(alice, "<item jid='" + bob_jid + "' subscription='remove'/>");
    REQUIRE(removed);
    CHECK(removed->type() == "result");
    REQUIRE(alice.wait_for([&](const Stanza& s) {
        return push_for(bob_jid)(s) && items_of(s).at(0).attr("subscription") == "remove";
    }));

    // Bob: unsubscribe and unsubscribed from alice's bare JID, his item drops to 'none', and
    // alice's resource goes offline for him.
    auto unsub = bob.wait_for(
        [&](const Stanza& s) { return s.name() == "presence" && s.type() == "unsubscribe"; });
    REQUIRE_MESSAGE(unsub, "no unsubscribe; log:\n" << server.log_tail());
    CHECK(unsub->from() == alice_jid);
    auto unsubd = bob.wait_for(
        [&](const Stanza& s) { return s.name() == "presence" && s.type() == "unsubscribed"; });
    REQUIRE(unsubd);
    CHECK(unsubd->from() == alice_jid);
    REQUIRE(bob.wait_for(subscription_push(alice_jid, "none")));
    CHECK(bob.wait_for([&](const Stanza& s) {
        return s.name() == "presence" && s.type() == "unavailable" && s.from() == alice.bound_jid();
    }));
    // And alice no longer gets bob's presence.
    REQUIRE(bob.send("<presence><status>still here</status></presence>"));
    sync(bob, server);
    sync(alice, server);
    CHECK(alice.expect_none(
        [&](const Stanza& s) {
            return s.name() == "presence" && s.child_text("status") == "still here";
        },
        std::chrono::milliseconds(1)));
}
