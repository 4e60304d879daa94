// RFC 6121 §3-§4 through a real havend: subscriptions, broadcast, probes, directed presence,
// unavailable on disconnect, and priorities in bare-JID message delivery.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "e2e/harness/client.hpp"
#include "e2e/harness/online.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* ns_roster = "jabber:iq:roster";


std::string password(std::string_view local) {
    return std::string(local) + "-secret";
}

// Logs in, requests the roster (so the resource gets roster pushes) and, unless told
// otherwise, sends initial presence.
void login(TestClient& c, const TestServer& server, std::string_view local,
           std::string_view presence = "<presence/>") {
    REQUIRE_MESSAGE(c.connect(server.jid(local), password(local)), c.failure());
    auto roster = c.iq_roundtrip("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
    REQUIRE(roster);
    REQUIRE(roster->type() == "result");
    if (!presence.empty()) {
        REQUIRE(c.send(presence));
    }
}

StanzaPredicate presence_of(std::string from, std::string type = {}) {
    return [from, type](const Stanza& s) {
        return s.name() == "presence" && s.from() == from && s.type() == type;
    };
}
StanzaPredicate any_presence_from(std::string from) {
    return [from](const Stanza& s) { return s.name() == "presence" && s.from() == from; };
}

struct Sub {
    std::string subscription;
    bool ask = false;
    bool approved = false;
};

// A roster push (RFC 6121 §2.1.6) for `jid` in exactly this state.
StanzaPredicate push_of(std::string jid, Sub want) {
    return [jid, want](const Stanza& s) {
        if (s.name() != "iq" || s.type() != "set") {
            return false;
        }
        auto q = s.child("query", ns_roster);
        if (!q) {
            return false;
        }
        auto item = q->child("item");
        return item && item->attr("jid") == jid &&
               item->attr("subscription") == want.subscription &&
               (item->attr("ask") == "subscribe") == want.ask &&
               (item->attr("approved") == "true") == want.approved;
    };
}

// The subscription state of `jid` in the client's roster, "" when it is not there.
std::string roster_state(TestClient& c, std::string_view jid, bool* ask = nullptr) {
    auto r = c.iq_roundtrip("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
    REQUIRE(r);
    auto q = r->child("query", ns_roster);
    REQUIRE(q);
    for (const auto& item : q->children()) {
        if (item.attr("jid") == jid) {
            if (ask) {
                *ask = item.attr("ask") == "subscribe";
            }
            return item.attr("subscription");
        }
    }
    return {};
}

void send_presence(TestClient& c, std::string_view type, std::string_view to) {
    REQUIRE(c.send("<presence type='" + std::string(type) + "' to='" + std::string(to) + "'/>"));
}

// `from` subscribes to `to` and `to` approves, both online and interested (RFC 6121 §3.1).
void subscribe(TestClient& from, std::string_view from_local, TestClient& to,
               std::string_view to_local, const TestServer& server, const char* to_after,
               const char* from_after) {
    const auto from_jid = server.jid(from_local);
    const auto to_jid = server.jid(to_local);
    send_presence(from, "subscribe", to_jid);
    REQUIRE_MESSAGE(to.wait_for(presence_of(from_jid, "subscribe")), server.log_tail());
    send_presence(to, "subscribed", from_jid);
    REQUIRE_MESSAGE(from.wait_for(push_of(to_jid, {to_after})), server.log_tail());
    REQUIRE(to.wait_for(push_of(from_jid, {from_after})));
}

std::string base64(std::string_view in) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v =
            (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out += {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
    }
    if (i + 1 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16;
        out += {abc[v >> 18], abc[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
        out += {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], '='};
    }
    return out;
}

}  // namespace

TEST_CASE(
    "RFC 6121 §3.1: subscription handshake both ways — none → to/from with pushes and "
    "presence, then both") {
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

    // §3.1.2: alice's server stamps her bare JID, adds bob as pending-out and pushes it.
    REQUIRE(alice.send("<presence type='subscribe' to='" + bob_jid +
                       "/laptop'><status>it's alice</status></presence>"));
    REQUIRE_MESSAGE(alice.wait_for(push_of(bob_jid, {"none", true})), server.log_tail());
    // §3.1.3: bob gets the request from alice's bare JID, payload intact; no push for him.
    auto request = bob.wait_for(presence_of(alice_jid, "subscribe"));
    REQUIRE(request);
    CHECK(request->to() == bob_jid);
    CHECK(request->child_text("status") == "it's alice");
    sync(bob, server);
    CHECK(bob.expect_none(push_of(alice_jid, {"none"}), 1ms));
    CHECK(roster_state(bob, alice_jid).empty());  // pending-in is not a roster item

    // §3.1.5: bob approves: from for bob, to for alice, and alice gets bob's presence.
    send_presence(bob, "subscribed", alice_jid);
    REQUIRE(bob.wait_for(push_of(alice_jid, {"from"})));
    REQUIRE(alice.wait_for(push_of(bob_jid, {"to"})));
    auto approved = alice.wait_for(presence_of(bob_jid, "subscribed"));
    REQUIRE(approved);
    CHECK(alice.wait_for(presence_of(bob.bound_jid())));
    CHECK(roster_state(alice, bob_jid) == "to");
    CHECK(roster_state(bob, alice_jid) == "from");

    // §3.1 the other way round ends in 'both' on both sides.
    send_presence(bob, "subscribe", alice_jid);
    REQUIRE(bob.wait_for(push_of(alice_jid, {"from", true})));
    REQUIRE(alice.wait_for(presence_of(bob_jid, "subscribe")));
    send_presence(alice, "subscribed", bob_jid);
    REQUIRE(alice.wait_for(push_of(bob_jid, {"both"})));
    REQUIRE(bob.wait_for(push_of(alice_jid, {"both"})));
    REQUIRE(bob.wait_for(presence_of(alice_jid, "subscribed")));
    CHECK(bob.wait_for(presence_of(alice.bound_jid())));
    CHECK(roster_state(alice, bob_jid) == "both");
    CHECK(roster_state(bob, alice_jid) == "both");

    // A repeated 'subscribed' changes nothing and pushes nothing.
    send_presence(alice, "subscribed", bob_jid);
    sync(alice, server);
    sync(bob, server);
    CHECK(alice.expect_none(push_of(bob_jid, {"both"}), 1ms));
    CHECK(bob.expect_none(push_of(alice_jid, {"both"}), 1ms));
}

TEST_CASE(
    "RFC 6121 §3.1.3: a request to an offline contact is re-delivered at each of their logins "
    "until answered") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.start();
    const auto alice_jid = server.jid("alice");
    const auto bob_jid = server.jid("bob");
    TestClient alice(server, {.resource = "phone"});
    login(alice, server, "alice");
    send_presence(alice, "subscribe", bob_jid);
    REQUIRE(alice.wait_for(push_of(bob_jid, {"none", true})));

    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        TestClient bob(server, {.resource = "laptop"});
        // Not before initial presence...
        login(bob, server, "bob", {});
        sync(bob, server);
        CHECK(bob.expect_none(presence_of(alice_jid, "subscribe"), 1ms));
        CHECK(roster_state(bob, alice_jid).empty());
        // ...but on it.
        REQUIRE(bob.send("<presence/>"));
        REQUIRE_MESSAGE(bob.wait_for(presence_of(alice_jid, "subscribe")), server.log_tail());
        bob.disconnect();
    }

    TestClient bob(server, {.resource = "laptop"});
    login(bob, server, "bob");
    REQUIRE(bob.wait_for(presence_of(alice_jid, "subscribe")));
    send_presence(bob, "subscribed", alice_jid);
    REQUIRE(bob.wait_for(push_of(alice_jid, {"from"})));
    REQUIRE(alice.wait_for(push_of(bob_jid, {"to"})));
    REQUIRE(alice.wait_for(presence_of(bob_jid, "subscribed")));
    bob.disconnect();

    // Answered: not shown again.
    TestClient again(server, {.resource = "desk"});
    login(again, server, "bob");
    sync(again, server);
    CHECK(again.expect_none(presence_of(alice_jid, "subscribe"), 1ms));
}

TEST_CASE("RFC 6121 §3.4: a pre-approved request is answered by the server at once") {
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

    // §3.4.2: noted and pushed with approved='true', not routed to alice.
    send_presence(bob, "subscribed", alice_jid);
    REQUIRE_MESSAGE(bob.wait_for(push_of(alice_jid, {"none", false, true})), server.log_tail());
    sync(bob, server);
    sync(alice, server);
    CHECK(alice.expect_none(presence_of(bob_jid, "subscribed"), 1ms));

    send_presence(alice, "subscribe", bob_jid);
    REQUIRE(alice.wait_for(push_of(bob_jid, {"to"})));
    REQUIRE(alice.wait_for(presence_of(bob_jid, "subscribed")));
    CHECK(alice.wait_for(presence_of(bob.bound_jid())));
    REQUIRE(bob.wait_for(push_of(alice_jid, {"from"})));
    sync(bob, server);
    CHECK(bob.expect_none(presence_of(alice_jid, "subscribe"), 1ms));
}

TEST_CASE(
    "RFC 6121 §3.3, §3.2: unsubscribe and unsubscribed update both rosters and stop "
    "presence") {
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
    subscribe(alice, "alice", bob, "bob", server, "to", "from");
    subscribe(bob, "bob", alice, "alice", server, "both", "both");

    // §3.3: alice unsubscribes from bob's presence: both → from for her, both → to for bob,
    // and bob's resource goes offline for alice.
    send_presence(alice, "unsubscribe", bob_jid);
    REQUIRE(alice.wait_for(push_of(bob_jid, {"from"})));
    REQUIRE(bob.wait_for(push_of(alice_jid, {"to"})));
    REQUIRE(bob.wait_for(presence_of(alice_jid, "unsubscribe")));
    CHECK(alice.wait_for(presence_of(bob.bound_jid(), "unavailable")));

    REQUIRE(bob.send("<presence><status>away</status></presence>"));
    sync(bob, server);
    sync(alice, server);
    CHECK(alice.expect_none(
        [](const Stanza& s) { return s.name() == "presence" && s.child_text("status") == "away"; },
        1ms));

    // §3.2: alice cancels bob's subscription to her: from → none, to → none.
    send_presence(alice, "unsubscribed", bob_jid);
    REQUIRE(alice.wait_for(push_of(bob_jid, {"none"})));
    REQUIRE(bob.wait_for(push_of(alice_jid, {"none"})));
    REQUIRE(bob.wait_for(presence_of(alice_jid, "unsubscribed")));
    CHECK(bob.wait_for(presence_of(alice.bound_jid(), "unavailable")));
    REQUIRE(alice.send("<presence><status>gone</status></presence>"));
    sync(alice, server);
    sync(bob, server);
    CHECK(bob.expect_none(
        [](const Stanza& s) { return s.name() == "presence" && s.child_text("status") == "gone"; },
        1ms));
    CHECK(roster_state(alice, bob_jid) == "none");
    CHECK(roster_state(bob, alice_jid) == "none");

    // §3.1.3: a request to an account that does not exist is refused by the server.
    const auto ghost = server.jid("ghost");
    send_presence(alice, "subscribe", ghost);
    REQUIRE(alice.wait_for(push_of(ghost, {"none", true})));
    REQUIRE(alice.wait_for(presence_of(ghost, "unsubscribed")));
    REQUIRE(alice.wait_for(push_of(ghost, {"none"})));
}

TEST_CASE(
    "RFC 6121 §4.2, §4.4, §4.3: presence reaches subscribed contacts and the user's own "
    "resources, and never a user without a subscription") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.add_user("carol", "carol-secret");
    server.start();
    const auto alice_jid = server.jid("alice");
    const auto bob_jid = server.jid("bob");
    TestClient alice(server, {.resource = "phone"});
    TestClient bob(server, {.resource = "laptop"});
    TestClient carol(server, {.resource = "desk"});
    login(alice, server, "alice");
    login(bob, server, "bob");
    login(carol, server, "carol");
    // bob gets alice's presence (bob: to, alice: from); not the other way round.
    subscribe(bob, "bob", alice, "alice", server, "to", "from");
    // carol is in alice's roster without a subscription, and asked for one alice has not
    // answered (pending-in): neither lets her see alice's presence.
    const auto carol_jid = server.jid("carol");
    REQUIRE(alice.iq_roundtrip("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='" +
                               carol_jid + "'/></query></iq>"));
    send_presence(carol, "subscribe", alice_jid);
    REQUIRE(alice.wait_for(presence_of(carol_jid, "subscribe")));
    CHECK(roster_state(alice, carol_jid) == "none");

    // §4.4.2: a presence update goes to bob and to alice's own resource(s), sender included.
    REQUIRE(alice.send("<presence><show>dnd</show><status>in a meeting</status></presence>"));
    auto seen = bob.wait_for([&](const Stanza& s) {
        return presence_of(alice.bound_jid())(s) && s.child_text("status") == "in a meeting";
    });
    REQUIRE_MESSAGE(seen, server.log_tail());
    CHECK(seen->child_text("show") == "dnd");
    CHECK(seen->to() == bob_jid);
    CHECK(alice.wait_for([&](const Stanza& s) {
        return presence_of(alice.bound_jid())(s) && s.child_text("status") == "in a meeting";
    }));

    // §4.2.2: a second resource of alice gets the presence of her first one and announces
    // itself to it and to bob.
    TestClient tablet(server, {.resource = "tablet"});
    login(tablet, server, "alice");
    CHECK(tablet.wait_for(presence_of(alice.bound_jid())));
    CHECK(alice.wait_for(presence_of(tablet.bound_jid())));
    CHECK(bob.wait_for(presence_of(tablet.bound_jid())));
    // bob's presence is not alice's business (she has no subscription to him).
    REQUIRE(bob.send("<presence><status>bob here</status></presence>"));
    sync(bob, server);

    // §4.3.2: a late-coming subscriber is answered from the contact's current presence.
    TestClient bob2(server, {.resource = "phone"});
    login(bob2, server, "bob");
    auto probed = bob2.wait_for([&](const Stanza& s) {
        return presence_of(alice.bound_jid())(s) && s.child_text("status") == "in a meeting";
    });
    REQUIRE_MESSAGE(probed, server.log_tail());
    CHECK(bob2.wait_for(presence_of(tablet.bound_jid())));

    // No leaks: carol (no subscription granted) sees nothing, not even by probing, and alice
    // (no subscription to bob) sees nothing of bob.
    REQUIRE(carol.send("<presence type='probe' to='" + alice_jid + "'/>"));
    sync(carol, server);
    sync(alice, server);
    sync(tablet, server);
    CHECK(carol.expect_none(any_presence_from(alice.bound_jid()), 1ms));
    CHECK(carol.expect_none(any_presence_from(tablet.bound_jid()), 1ms));
    CHECK(alice.expect_none(any_presence_from(bob.bound_jid()), 1ms));
    CHECK(alice.expect_none(any_presence_from(bob2.bound_jid()), 1ms));
    CHECK(tablet.expect_none(any_presence_from(bob.bound_jid()), 1ms));

    // A subscriber's probe is answered (§4.3.2), with every available resource.
    REQUIRE(bob.send("<presence type='probe' to='" + alice_jid + "'/>"));
    CHECK(bob.wait_for(presence_of(alice.bound_jid())));
    CHECK(bob.wait_for(presence_of(tablet.bound_jid())));

    // §4.5.2: explicit unavailable reaches the subscriber and the other resource, not carol.
    REQUIRE(tablet.send("<presence type='unavailable'><status>bye</status></presence>"));
    auto off = bob.wait_for(presence_of(tablet.bound_jid(), "unavailable"));
    REQUIRE(off);
    CHECK(off->child_text("status") == "bye");
    CHECK(alice.wait_for(presence_of(tablet.bound_jid(), "unavailable")));
    sync(tablet, server);
    sync(carol, server);
    CHECK(carol.expect_none(any_presence_from(tablet.bound_jid()), 1ms));
}

TEST_CASE("RFC 6121 §4.5.2: a dropped TCP connection sends unavailable to the subscribed contact") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.start();
    const auto alice_jid = server.jid("alice");
    const auto bob_jid = server.jid("bob");
    {
        TestClient alice(server, {.resource = "phone"});
        TestClient bob(server, {.resource = "laptop"});
        login(alice, server, "alice");
        login(bob, server, "bob");
        subscribe(bob, "bob", alice, "alice", server, "to", "from");
        alice.disconnect();
        bob.disconnect();
    }
    TestClient bob(server, {.resource = "laptop"});
    login(bob, server, "bob");
    sync(bob, server);

    // alice over a raw socket: STARTTLS, SASL PLAIN, bind, initial presence.
    RawConnection raw;
    REQUIRE(raw.connect(server.c2s_port()));
    REQUIRE(raw.open_stream(server.domain()));
    auto features = raw.negotiate_starttls(server.domain());
    REQUIRE(features);
    REQUIRE(features->find("PLAIN") != std::string::npos);
    REQUIRE(raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                     base64(std::string("\0alice\0alice-secret", 19)) + "</auth>"));
    REQUIRE(raw.read_until("success"));
    REQUIRE(raw.open_stream(server.domain()));
    REQUIRE(
        raw.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 "<resource>raw</resource></bind></iq>"));
    REQUIRE(raw.read_until("</iq>"));
    REQUIRE(raw.send("<presence/>"));
    const auto raw_jid = alice_jid + "/raw";
    REQUIRE_MESSAGE(bob.wait_for(presence_of(raw_jid)), server.log_tail());

    raw.close();  // no </stream:stream>: the TCP connection just ends
    auto off = bob.wait_for(presence_of(raw_jid, "unavailable"));
    REQUIRE_MESSAGE(off, "no unavailable after the TCP close; log:\n" << server.log_tail());
    CHECK(off->to() == bob_jid);
}

TEST_CASE(
    "RFC 6121 §4.6: directed presence reaches a non-contact, who gets unavailable when the "
    "sender disconnects; nobody else does") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("carol", "carol-secret");
    server.add_user("dave", "dave-secret");
    server.start();
    TestClient alice(server, {.resource = "phone"});
    TestClient carol(server, {.resource = "desk"});
    TestClient dave(server, {.resource = "home"});
    login(alice, server, "alice");
    login(carol, server, "carol");
    login(dave, server, "dave");
    const auto alice_full = alice.bound_jid();

    REQUIRE(alice.send("<presence to='" + carol.bound_jid() +
                       "'><status>hi carol</status>"
                       "</presence>"));
    auto got = carol.wait_for(presence_of(alice_full));
    REQUIRE_MESSAGE(got, server.log_tail());
    CHECK(got->child_text("status") == "hi carol");

    alice.disconnect();
    auto off = carol.wait_for(presence_of(alice_full, "unavailable"));
    REQUIRE_MESSAGE(off, "no unavailable for the directed presence; log:\n" << server.log_tail());
    CHECK(off->to() == carol.bound_jid());
    sync(dave, server);
    CHECK(dave.expect_none(any_presence_from(alice_full), 1ms));

    // Revoked explicitly with directed unavailable: nothing more at disconnect.
    TestClient alice2(server, {.resource = "laptop"});
    login(alice2, server, "alice");
    const auto laptop = alice2.bound_jid();
    REQUIRE(alice2.send("<presence to='" + server.jid("carol") + "'/>"));
    REQUIRE(carol.wait_for(presence_of(laptop)));
    REQUIRE(alice2.send("<presence type='unavailable' to='" + server.jid("carol") + "'/>"));
    REQUIRE(carol.wait_for(presence_of(laptop, "unavailable")));
    alice2.disconnect();
    sync(carol, server);
    CHECK(carol.expect_none(any_presence_from(laptop), 1ms));
}

TEST_CASE(
    "RFC 6121 §8.5.2.1.1, §4.7.2.3: a message to the bare JID goes to the highest-priority "
    "resource, a full JID reaches its resource; priorities are clamped to -128..127") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret");
    server.start();
    const auto bob_jid = server.jid("bob");
    TestClient alice(server, {.resource = "phone"});
    TestClient high(server, {.resource = "high"});
    TestClient low(server, {.resource = "low"});
    login(alice, server, "alice");
    login(high, server, "bob", "<presence><priority>5</priority></presence>");
    login(low, server, "bob", "<presence><priority>1</priority></presence>");
    sync(high, server);
    sync(low, server);

    int n = 0;
    auto chat = [&](const std::string& to) {
        const auto body = "m" + std::to_string(++n);
        REQUIRE(
            alice.send("<message type='chat' to='" + to + "'><body>" + body + "</body></message>"));
        sync(alice, server);
        return body;
    };
    auto got = [](TestClient& c, const std::string& body, bool want, const TestServer& s) {
        auto is_it = [&](const Stanza& st) {
            return st.name() == "message" && st.child_text("body") == body;
        };
        // Anything sent to c before the sync is queued ahead of the ping result.
        sync(c, s);
        CHECK_MESSAGE(c.wait_for(is_it, 1ms).has_value() == want, body);
    };

    auto m1 = chat(bob_jid);
    got(high, m1, true, server);
    got(low, m1, false, server);

    auto m2 = chat(low.bound_jid());
    got(low, m2, true, server);
    got(high, m2, false, server);

    // A negative priority takes the resource out of bare-JID delivery.
    REQUIRE(high.send("<presence><priority>-1</priority></presence>"));
    sync(high, server);
    auto m3 = chat(bob_jid);
    got(low, m3, true, server);
    got(high, m3, false, server);

    // 300 is clamped to 127, which ties with 127: both get the message.
    REQUIRE(high.send("<presence><priority>300</priority></presence>"));
    REQUIRE(low.send("<presence><priority>127</priority></presence>"));
    sync(high, server);
    sync(low, server);
    auto m4 = chat(bob_jid);
    got(high, m4, true, server);
    got(low, m4, true, server);
}
