// Issue #4 end to end: roles, conversation grants and the restricted chat policy on every path,
// with real libstrophe clients against a real havend.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <map>

#include <signal.h>
#include <string>
#include <vector>

#include "e2e/harness/client.hpp"
#include "e2e/harness/online.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view stanza_errors = "urn:ietf:params:xml:ns:xmpp-stanzas";

// alice, bob: members; sam, kim: supporters; ada: admin. "ghost" does not exist.
// The harness defaults to a plain XMPP server; these tests run with the module on.
ServerOptions peersupport_on(std::map<std::string, std::string> extra = {}) {
    ServerOptions o;
    o.config = std::move(extra);
    o.config.emplace("peersupport.enabled", "true");
    return o;
}

void add_users(TestServer& server) {
    server.add_user("alice", "pw-alice");
    server.add_user("bob", "pw-bob");
    server.add_user("sam", "pw-sam", "supporter");
    server.add_user("kim", "pw-kim", "supporter");
    server.add_user("ada", "pw-ada", "admin");
}

// Members and staff all use the password "pw-<name>".
struct Online : OnlineClient {
    Online(TestServer& server, const std::string& user, const std::string& resource = "r1",
           bool keep = false)
        : OnlineClient(server, user, "pw-" + user, resource, keep) {}
};

bool is_message_with_body(const Stanza& s, std::string_view body) {
    return s.name() == "message" && s.type() != "error" && s.child_text("body") == body;
}

// The stanzas a member might use to reach someone, each with a unique id.
std::vector<std::string> probes(const std::string& to, const std::string& tag) {
    return {
        "<message to='" + to + "' type='chat' id='" + tag + "-chat'><body>hi</body></message>",
        "<message to='" + to + "' id='" + tag + "-normal'><body>hi</body></message>",
        "<message to='" + to + "' type='chat' id='" + tag +
            "-state'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        "<presence to='" + to + "' type='subscribe' id='" + tag + "-sub'/>",
        "<presence to='" + to + "' type='subscribed' id='" + tag + "-subd'/>",
        "<presence to='" + to + "' id='" + tag + "-directed'/>",
        "<iq to='" + to + "' type='get' id='" + tag + "-vcard'><vCard xmlns='vcard-temp'/></iq>",
        "<iq to='" + to + "' type='get' id='" + tag +
            "-version'><query xmlns='jabber:iq:version'/></iq>",
        "<iq to='" + to + "' type='get' id='" + tag +
            "-disco'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        "<iq to='" + to + "' type='get' id='" + tag + "-ping'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<iq to='" + to + "' type='get' id='" + tag + "-last'><query xmlns='jabber:iq:last'/></iq>",
        "<iq to='" + to + "' type='set' id='" + tag +
            "-jingle'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='x'/></iq>",
    };
}

// Sends one probe and returns the refusal the sender got (nullopt if none arrived).
std::optional<Stanza> refusal_for(TestClient& c, const std::string& xml, const std::string& id) {
    REQUIRE(c.send(xml));
    return c.wait_for([&](const Stanza& s) { return s.id() == id && s.type() == "error"; }, 3s);
}

void check_refusal(const Stanza& err) {
    auto e = err.child("error");
    REQUIRE(e);
    CHECK(e->attr("type") == "cancel");
    CHECK(e->child("service-unavailable", stanza_errors));
    CHECK_FALSE(e->child_text("text", stanza_errors).empty());
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
        s.replace(pos, from.size(), to);
    }
    return s;
}

std::optional<Stanza> roster_push_for(TestClient& c, const std::string& contact,
                                      std::string_view subscription) {
    return c.wait_for(
        [&](const Stanza& s) {
            if (s.name() != "iq" || s.type() != "set") {
                return false;
            }
            auto q = s.child("query", "jabber:iq:roster");
            if (!q) {
                return false;
            }
            auto item = q->child("item");
            return item && item->attr("jid") == contact &&
                   item->attr("subscription") == subscription;
        },
        5s);
}

}  // namespace

TEST_CASE("issue 4: a member reaches no other member by any stanza kind, with no side effects") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online bob(server, "bob");

    for (const auto& to : {server.jid("bob"), bob.client.bound_jid()}) {
        CAPTURE(to);
        auto list = probes(to, "mm");
        for (const auto& xml : list) {
            auto id = xml.substr(xml.find("id='") + 4);
            id = id.substr(0, id.find('\''));
            CAPTURE(xml);
            auto err = refusal_for(alice.client, xml, id);
            REQUIRE_MESSAGE(err, "no refusal; log:\n" << server.log_tail());
            check_refusal(*err);
        }
    }
    // Nothing reached bob: no message, presence, IQ or roster push.
    CHECK(bob.client.expect_none(
        [](const Stanza& s) {
            return s.name() == "message" || (s.name() == "presence") ||
                   (s.name() == "iq" && (s.type() == "get" || s.type() == "set"));
        },
        1s));
    // Nothing was stored offline for bob either.
    bob.client.disconnect();
    alice.client.send("<message to='" + server.jid("bob") +
                      "' type='chat' id='offline-try'><body>are you there</body></message>");
    REQUIRE(alice.client.wait_for([](const Stanza& s) { return s.id() == "offline-try"; }));
    Online bob_again(server, "bob", "r2");
    CHECK(bob_again.client.expect_none([](const Stanza& s) { return s.name() == "message"; }, 1s));
}

TEST_CASE("issue 4: refusal to a member is byte-for-byte the refusal for a non-existent account") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    const auto member = server.jid("bob");
    const auto ghost = server.jid("ghost");
    const auto staff_no_grant = server.jid("kim");
    auto a = probes(member, "p");
    auto b = probes(ghost, "p");
    auto c = probes(staff_no_grant, "p");
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto id = a[i].substr(a[i].find("id='") + 4);
        id = id.substr(0, id.find('\''));
        CAPTURE(a[i]);
        auto to_member = refusal_for(alice.client, a[i], id);
        REQUIRE(to_member);
        auto to_ghost = refusal_for(alice.client, b[i], id);
        REQUIRE(to_ghost);
        auto to_staff = refusal_for(alice.client, c[i], id);
        REQUIRE(to_staff);
        CHECK(replace_all(to_member->to_xml(), member, "X") ==
              replace_all(to_ghost->to_xml(), ghost, "X"));
        CHECK(replace_all(to_member->to_xml(), member, "X") ==
              replace_all(to_staff->to_xml(), staff_no_grant, "X"));
    }
}

TEST_CASE("issue 4: the refusal text follows xml:lang (German and English)") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    alice.client.send("<message to='" + server.jid("bob") +
                      "' type='chat' id='de1' xml:lang='de'><body>hallo</body></message>");
    auto de = alice.client.wait_for([](const Stanza& s) { return s.id() == "de1"; });
    REQUIRE(de);
    auto text = de->child("error")->child("text", stanza_errors);
    REQUIRE(text);
    // libstrophe reports xml:lang without its prefix.
    CHECK(text->attr("lang") == "de");
    CHECK(text->text().find("Mitglieder") != std::string::npos);
    alice.client.send("<message to='" + server.jid("bob") +
                      "' type='chat' id='en1' xml:lang='en'><body>hello</body></message>");
    auto en = alice.client.wait_for([](const Stanza& s) { return s.id() == "en1"; });
    REQUIRE(en);
    CHECK(en->child("error")->child("text", stanza_errors)->attr("lang") == "en");
}

TEST_CASE("issue 4: a supporter's message opens a grant with roster pushes; the member can answer") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online alice2(server, "alice", "tablet");
    Online sam(server, "sam");

    // Before the grant alice cannot write to sam.
    auto before = refusal_for(alice.client,
                              "<message to='" + server.jid("sam") +
                                  "' type='chat' id='pre'><body>hi</body></message>",
                              "pre");
    REQUIRE(before);
    check_refusal(*before);

    sam.client.send("<message to='" + server.jid("alice") +
                    "' type='chat' id='open'><body>Hi Alice, I'm Sam</body></message>");
    for (auto* c : {&alice.client, &alice2.client}) {
        auto push = roster_push_for(*c, server.jid("sam"), "both");
        REQUIRE_MESSAGE(push, "no roster push; log:\n" << server.log_tail());
        auto item = push->child("query", "jabber:iq:roster")->child("item");
        CHECK(item->child_text("group") == "Peer support");
        CHECK(item->attr("name") == "sam");
    }
    REQUIRE(alice.client.wait_for(
        [](const Stanza& s) { return is_message_with_body(s, "Hi Alice, I'm Sam"); }));
    // sam's roster gets alice too.
    CHECK(roster_push_for(sam.client, server.jid("alice"), "both"));
    // Presence flows both ways now (mutual subscription).
    CHECK(alice.client.wait_for([&](const Stanza& s) {
        return s.name() == "presence" && s.from() == sam.client.bound_jid();
    }));

    // Every stanza kind now passes, to bare and full JID.
    alice.client.send("<message to='" + server.jid("sam") +
                      "' type='chat'><body>reply bare</body></message>");
    CHECK(sam.client.wait_for([](const Stanza& s) { return is_message_with_body(s, "reply bare"); }));
    alice.client.send("<message to='" + sam.client.bound_jid() +
                      "' type='chat'><body>reply full</body></message>");
    CHECK(sam.client.wait_for([](const Stanza& s) { return is_message_with_body(s, "reply full"); }));
    alice.client.send("<iq to='" + sam.client.bound_jid() +
                      "' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>");
    CHECK(sam.client.wait_for([](const Stanza& s) { return s.name() == "iq" && s.id() == "v1"; }));
    alice.client.send("<presence to='" + sam.client.bound_jid() + "' id='dp'/>");
    CHECK(sam.client.wait_for([](const Stanza& s) { return s.name() == "presence" && s.id() == "dp"; }));
    // bob (another member) still can't reach alice, and alice still can't reach bob.
    Online bob(server, "bob");
    auto mm = refusal_for(bob.client,
                          "<message to='" + server.jid("alice") +
                              "' type='chat' id='mm'><body>x</body></message>",
                          "mm");
    REQUIRE(mm);
    check_refusal(*mm);
}

TEST_CASE("issue 4: staff may query a member without a grant and get the answer") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online kim(server, "kim");
    kim.client.send("<iq to='" + alice.client.bound_jid() +
                    "' type='get' id='kq'><query xmlns='jabber:iq:version'/></iq>");
    auto q = alice.client.wait_for([](const Stanza& s) { return s.id() == "kq"; });
    REQUIRE(q);
    alice.client.send("<iq to='" + kim.client.bound_jid() +
                      "' type='result' id='kq'><query xmlns='jabber:iq:version'/></iq>");
    CHECK(kim.client.wait_for([](const Stanza& s) { return s.id() == "kq" && s.type() == "result"; }));
    // An IQ query without content does not open a conversation.
    auto still = refusal_for(alice.client,
                             "<message to='" + server.jid("kim") +
                                 "' type='chat' id='k2'><body>hi</body></message>",
                             "k2");
    REQUIRE(still);
    check_refusal(*still);
}

TEST_CASE("issue 11: a member cannot use errors and results as a channel to staff") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online kim(server, "kim");
    const std::string kim_full = kim.client.bound_jid();
    // Unsolicited "answers" addressed to a supporter who never wrote: nothing arrives, and the
    // sender learns nothing (an error or result is never answered, as for a missing account).
    const std::vector<std::string> unsolicited = {
        "<message to='" + kim_full + "' type='error' id='u1'><body>read me</body>"
            "<error type='cancel'><undefined-condition "
            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        "<iq to='" + kim_full + "' type='result' id='u2'><query xmlns='jabber:iq:version'>"
            "<name>read me</name></query></iq>",
        "<iq to='" + kim_full + "' type='error' id='u3'><query xmlns='jabber:iq:version'>"
            "<name>read me</name></query><error type='cancel'><service-unavailable "
            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        "<presence to='" + kim_full + "' type='error' id='u4'><status>read me</status>"
            "<error type='cancel'><service-unavailable "
            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
    };
    for (const auto& xml : unsolicited) {
        REQUIRE(alice.client.send(xml));
    }
    CHECK(kim.client.expect_none([](const Stanza& s) { return s.id().starts_with("u"); }, 1s));
    CHECK(alice.client.expect_none([](const Stanza& s) { return s.id().starts_with("u"); },
                                   200ms));

    // A real answer passes, but as the error alone: the payload and any text around it stay out.
    REQUIRE(kim.client.send("<iq to='" + alice.client.bound_jid() +
                            "' type='get' id='kq'><query xmlns='jabber:iq:version'/></iq>"));
    REQUIRE(alice.client.wait_for([](const Stanza& s) { return s.id() == "kq"; }));
    REQUIRE(alice.client.send("<iq to='" + kim_full + "' type='error' id='kq'>"
                              "<query xmlns='jabber:iq:version'><name>read me</name></query>"
                              "<error type='cancel'><service-unavailable "
                              "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    auto err = kim.client.wait_for([](const Stanza& s) { return s.id() == "kq"; });
    REQUIRE(err);
    CHECK(err->type() == "error");
    CHECK(err->child("error"));
    CHECK_FALSE(err->child("query"));
    // The request is answered now: a second "answer" to it is one nobody asked for.
    REQUIRE(alice.client.send("<iq to='" + kim_full + "' type='result' id='kq'/>"));
    CHECK(kim.client.expect_none([](const Stanza& s) { return s.id() == "kq"; }, 1s));
    // Only the resource that asked gets the answer: another of kim's resources did not ask.
    Online kim2(server, "kim", "r2");
    REQUIRE(kim.client.send("<iq to='" + alice.client.bound_jid() +
                            "' type='get' id='kq3'><ping xmlns='urn:xmpp:ping'/></iq>"));
    REQUIRE(alice.client.wait_for([](const Stanza& s) { return s.id() == "kq3"; }));
    REQUIRE(alice.client.send("<iq to='" + kim2.client.bound_jid() + "' type='result' id='kq3'/>"));
    CHECK(kim2.client.expect_none([](const Stanza& s) { return s.id() == "kq3"; }, 1s));
}

TEST_CASE("issue 11: a supporter the member blocked cannot open a grant") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    auto blocked = alice.client.iq_roundtrip("<iq type='set'><block xmlns='urn:xmpp:blocking'>"
                                             "<item jid='" + server.jid("sam") +
                                             "'/></block></iq>");
    REQUIRE(blocked);
    REQUIRE(blocked->type() == "result");
    alice.client.clear_received();
    auto err = refusal_for(sam.client,
                           "<message to='" + server.jid("alice") +
                               "' type='chat' id='b1'><body>hello</body></message>",
                           "b1");
    REQUIRE(err);
    CHECK(err->child("error")->child("service-unavailable", stanza_errors));
    // No roster item, no presence, no message on either side.
    CHECK(alice.client.expect_none([](const Stanza&) { return true; }, 1s));
    CHECK(sam.client.expect_none(
        [](const Stanza& s) { return s.name() == "iq" || s.name() == "presence"; }, 200ms));
    // And alice still cannot write to sam: there is no grant.
    auto still = refusal_for(alice.client,
                             "<message to='" + server.jid("sam") +
                                 "' type='chat' id='b2'><body>hi</body></message>",
                             "b2");
    REQUIRE(still);
}

TEST_CASE("issue 11: a member's vCard is for staff with a grant or an inquiry only") {
    auto options = peersupport_on();
    options.extra_toml = "[[functional_addresses.addresses]]\njid = \"beratung@localhost\"\n"
                         "staff = [\"kim@localhost\"]\n";
    TestServer server(options);
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    Online kim(server, "kim");
    auto set = alice.client.iq_roundtrip(
        "<iq type='set'><vCard xmlns='vcard-temp'><NICKNAME>Ali</NICKNAME></vCard></iq>");
    REQUIRE(set);
    REQUIRE(set->type() == "result");
    auto vcard_of = [&](TestClient& c, const std::string& who) {
        auto r = c.iq_roundtrip("<iq type='get' to='" + server.jid(who) +
                                "' id='vc'><vCard xmlns='vcard-temp'/></iq>");
        REQUIRE(r);
        return *r;
    };
    // No grant, no inquiry: exactly what a missing account answers.
    for (Online* o : {&sam, &kim}) {
        const auto& me = o->client.bound_jid();
        auto ghost = replace_all(vcard_of(o->client, "ghost").to_xml(), server.jid("ghost"), "X");
        auto r = vcard_of(o->client, "alice");
        CHECK(r.type() == "error");
        CHECK(replace_all(r.to_xml(), server.jid("alice"), "X") == ghost);
        CHECK(ghost.find(me) != std::string::npos);
    }
    // alice writes to beratung@: kim serves that address and may now see her profile; sam not.
    REQUIRE(alice.client.send("<message to='beratung@localhost' type='chat' id='i1'>"
                              "<body>hello</body></message>"));
    REQUIRE(kim.client.wait_for([](const Stanza& s) { return s.child_text("body") == "hello"; }));
    CHECK(vcard_of(kim.client, "alice").child("vCard"));
    CHECK(vcard_of(sam.client, "alice").type() == "error");
    // sam writes to alice: the grant lets him see it.
    REQUIRE(sam.client.send("<message to='" + server.jid("alice") +
                            "' type='chat' id='g1'><body>hi</body></message>"));
    REQUIRE(alice.client.wait_for([](const Stanza& s) { return is_message_with_body(s, "hi"); }));
    auto seen = vcard_of(sam.client, "alice");
    REQUIRE(seen.child("vCard"));
    CHECK(seen.child("vCard")->child_text("NICKNAME") == "Ali");
}

TEST_CASE("issue 4: grants work with the member or the supporter offline") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    {
        Online sam(server, "sam");
        sam.client.send("<message to='" + server.jid("alice") +
                        "' type='chat'><body>while you were away</body></message>");
        sam.sync();
    }
    Online alice(server, "alice", "r1", true);
    CHECK(alice.client.wait_for(
        [](const Stanza& s) { return is_message_with_body(s, "while you were away"); }));
    // sam is offline now: alice's answer waits for sam.
    alice.client.send("<message to='" + server.jid("sam") +
                      "' type='chat' id='ans'><body>thanks</body></message>");
    CHECK(alice.client.expect_none([](const Stanza& s) { return s.id() == "ans"; }, 1s));
    Online sam(server, "sam", "r2", true);
    CHECK(sam.client.wait_for([](const Stanza& s) { return is_message_with_body(s, "thanks"); }));
}

TEST_CASE("issue 4: ending a grant by ad-hoc command removes the right and the roster item") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    sam.client.send("<message to='" + server.jid("alice") + "' type='chat'><body>hello</body></message>");
    REQUIRE(roster_push_for(alice.client, server.jid("sam"), "both"));

    // The command is listed for staff, not for members.
    auto items = "<iq type='get' to='" + server.domain() +
                 "' id='ci'><query xmlns='http://jabber.org/protocol/disco#items' "
                 "node='http://jabber.org/protocol/commands'/></iq>";
    auto staff_list = sam.client.iq_roundtrip(items);
    REQUIRE(staff_list);
    CHECK(staff_list->to_xml().find("urn:haven:peersupport:end-conversation") != std::string::npos);
    auto member_list = alice.client.iq_roundtrip(items);
    REQUIRE(member_list);
    CHECK(member_list->to_xml().find("urn:haven:peersupport:end-conversation") ==
          std::string::npos);

    auto first = sam.client.iq_roundtrip(
        "<iq type='set' to='" + server.domain() +
        "' id='c1'><command xmlns='http://jabber.org/protocol/commands' "
        "node='urn:haven:peersupport:end-conversation' action='execute'/></iq>");
    REQUIRE(first);
    auto cmd = first->child("command", "http://jabber.org/protocol/commands");
    REQUIRE(cmd);
    CHECK(cmd->attr("status") == "executing");
    auto value = server.jid("sam") + " " + server.jid("alice");
    CHECK(first->to_xml().find(value) != std::string::npos);
    auto done = sam.client.iq_roundtrip(
        "<iq type='set' to='" + server.domain() +
        "' id='c2'><command xmlns='http://jabber.org/protocol/commands' "
        "node='urn:haven:peersupport:end-conversation' sessionid='" + cmd->attr("sessionid") +
        "' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='conversation'>"
        "<value>" + value + "</value></field></x></command></iq>");
    REQUIRE(done);
    CHECK(done->child("command", "http://jabber.org/protocol/commands")->attr("status") ==
          "completed");
    CHECK(roster_push_for(alice.client, server.jid("sam"), "remove"));
    auto after = refusal_for(alice.client,
                             "<message to='" + server.jid("sam") +
                                 "' type='chat' id='after'><body>still there?</body></message>",
                             "after");
    REQUIRE(after);
    check_refusal(*after);
    // A member cannot run it.
    auto denied = alice.client.iq_roundtrip(
        "<iq type='set' to='" + server.domain() +
        "' id='c3'><command xmlns='http://jabber.org/protocol/commands' "
        "node='urn:haven:peersupport:end-conversation' action='execute'/></iq>");
    REQUIRE(denied);
    CHECK(denied->type() == "error");
}

TEST_CASE("issue 4: havenctl grant list/end on a running server; grants survive a restart") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    {
        Online sam(server, "sam");
        sam.client.send("<message to='" + server.jid("alice") +
                        "' type='chat'><body>first contact</body></message>");
        sam.sync();
    }
    auto list = server.run_ctl({"grant", "list"});
    CHECK(list.exit_code == 0);
    CHECK(list.out.find(server.jid("sam") + " -> " + server.jid("alice")) != std::string::npos);

    REQUIRE(server.restart() == 0);
    Online alice(server, "alice");
    Online sam(server, "sam");
    alice.client.send("<message to='" + server.jid("sam") +
                      "' type='chat'><body>after restart</body></message>");
    CHECK(sam.client.wait_for([](const Stanza& s) { return is_message_with_body(s, "after restart"); }));

    auto end = server.run_ctl({"grant", "end", server.jid("sam"), server.jid("alice")});
    CHECK_MESSAGE(end.exit_code == 0, end.err);
    // The running server notices within seconds and pushes the removal.
    CHECK(roster_push_for(alice.client, server.jid("sam"), "remove"));
    auto after = refusal_for(alice.client,
                             "<message to='" + server.jid("sam") +
                                 "' type='chat' id='x'><body>hello?</body></message>",
                             "x");
    REQUIRE(after);
    check_refusal(*after);
    CHECK(server.run_ctl({"grant", "list"}).out.empty());
}

TEST_CASE("issue 4: roles from the config win over the database") {
    TestServer server(peersupport_on({{"peersupport.supporters", toml_array({"bob@localhost"})}}));
    add_users(server);
    server.start();
    Online bob(server, "bob");
    Online alice(server, "alice");
    bob.client.send("<message to='" + server.jid("alice") + "' type='chat'><body>bob here</body></message>");
    CHECK(alice.client.wait_for([](const Stanza& s) { return is_message_with_body(s, "bob here"); }));
    auto roles = server.run_ctl({"user", "list"});
    CHECK(roles.out.find(server.jid("bob") + " supporter") != std::string::npos);
}

TEST_CASE("issue 4: with the module disabled Haven is a plain XMPP server") {
    TestServer server({.config = {{"peersupport.enabled", "false"}}});
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online bob(server, "bob");
    alice.client.send("<message to='" + server.jid("bob") + "' type='chat'><body>plain</body></message>");
    CHECK(bob.client.wait_for([](const Stanza& s) { return is_message_with_body(s, "plain"); }));
}

TEST_CASE("issue 4: the roster item carries the supporter's vCard nickname") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    REQUIRE(sam.client.iq_roundtrip("<iq type='set' id='vc'><vCard xmlns='vcard-temp'>"
                                    "<FN>Samuel R.</FN><NICKNAME>Sam &amp; Co</NICKNAME>"
                                    "</vCard></iq>"));
    sam.client.send("<message to='" + server.jid("alice") +
                    "' type='chat'><body>hello from Sam</body></message>");
    auto push = roster_push_for(alice.client, server.jid("sam"), "both");
    REQUIRE(push);
    CHECK(push->child("query", "jabber:iq:roster")->child("item")->attr("name") == "Sam & Co");
}

TEST_CASE("issue 4: config roles are re-applied on reload (SIGHUP)") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online bob(server, "bob");
    // bob is a member: his message is refused.
    bob.client.send("<message to='" + server.jid("alice") +
                    "' type='chat' id='before'><body>hi</body></message>");
    REQUIRE(bob.client.wait_for([](const Stanza& s) { return s.id() == "before" && s.type() == "error"; }));

    server.set_config("peersupport.supporters", toml_array({"bob@localhost"}));
    REQUIRE(::kill(server.pid(), SIGHUP) == 0);
    // Reload is asynchronous: wait (bounded) until bob's role shows up in the database.
    bool promoted = false;
    for (int i = 0; i < 50 && !promoted; ++i) {
        promoted = server.run_ctl({"user", "list"}).out.find(server.jid("bob") + " supporter") !=
                   std::string::npos;
        if (!promoted) {
            bob.client.pump(100ms);
        }
    }
    REQUIRE(promoted);
    bob.client.send("<message to='" + server.jid("alice") +
                    "' type='chat'><body>now as a supporter</body></message>");
    CHECK(alice.client.wait_for([](const Stanza& s) { return is_message_with_body(s, "now as a supporter"); }));
    CHECK(server.running());
}

// A grant sam -> alice with both online; returns once alice has sam as a contact.
void open_grant(TestServer& server, Online& sam, Online& alice) {
    REQUIRE(sam.client.send("<message to='" + server.jid("alice") +
                            "' type='chat'><body>hello from staff</body></message>"));
    REQUIRE(alice.client.wait_for(
        [](const Stanza& s) { return is_message_with_body(s, "hello from staff"); }));
}

// What a demotion must do: alice's roster loses the former supporter (a push with
// subscription='remove'), she sees them go unavailable, and they can no longer write to her.
void check_demoted(TestServer& server, Online& former, Online& alice) {
    const auto former_bare = former.client.bound_jid().substr(0, former.client.bound_jid().find('/'));
    CHECK(roster_push_for(alice.client, former_bare, "remove"));
    CHECK(alice.client.wait_for([&](const Stanza& s) {
        return s.name() == "presence" && s.type() == "unavailable" &&
               s.from().starts_with(former_bare);
    }));
    auto refused = refusal_for(former.client,
                               "<message to='" + server.jid("alice") +
                                   "' type='chat' id='after'><body>still there?</body></message>",
                               "after");
    REQUIRE(refused);
    check_refusal(*refused);
    CHECK(alice.client.expect_none(
        [](const Stanza& s) { return is_message_with_body(s, "still there?"); }, 300ms));
}

TEST_CASE("issue 11: demoting a supporter with havenctl ends their grants") {
    TestServer server(peersupport_on());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    open_grant(server, sam, alice);
    REQUIRE(server.run_ctl({"user", "role", server.jid("sam"), "member"}).exit_code == 0);
    check_demoted(server, sam, alice);
    CHECK(server.run_ctl({"grant", "list"}).out.find(server.jid("alice")) == std::string::npos);
}

TEST_CASE("issue 11: a config role removed on SIGHUP demotes and ends the grants") {
    TestServer server(peersupport_on({{"peersupport.supporters", toml_array({"bob@localhost"})}}));
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online bob(server, "bob");
    open_grant(server, bob, alice);
    server.set_config("peersupport.supporters", toml_array({}));
    REQUIRE(::kill(server.pid(), SIGHUP) == 0);
    check_demoted(server, bob, alice);
    CHECK(server.run_ctl({"user", "list"}).out.find(server.jid("bob") + " member") !=
          std::string::npos);
}

TEST_CASE("issue 11: a config role removed while the server was down demotes at the next start") {
    TestServer server(peersupport_on({{"peersupport.supporters", toml_array({"bob@localhost"})}}));
    add_users(server);
    server.start();
    {
        Online alice(server, "alice");
        Online bob(server, "bob");
        open_grant(server, bob, alice);
    }
    REQUIRE(server.stop() == 0);
    server.set_config("peersupport.supporters", toml_array({}));
    server.start();
    CHECK(server.run_ctl({"user", "list"}).out.find(server.jid("bob") + " member") !=
          std::string::npos);
    CHECK(server.run_ctl({"grant", "list"}).out.find(server.jid("alice")) == std::string::npos);
    Online bob(server, "bob");
    auto refused = refusal_for(bob.client,
                               "<message to='" + server.jid("alice") +
                                   "' type='chat' id='after'><body>still there?</body></message>",
                               "after");
    REQUIRE(refused);
    check_refusal(*refused);
    // A role an admin gave by hand is the admin's: a config without the account keeps it.
    REQUIRE(server.run_ctl({"user", "role", server.jid("bob"), "supporter"}).exit_code == 0);
    REQUIRE(server.stop() == 0);
    server.start();
    CHECK(server.run_ctl({"user", "list"}).out.find(server.jid("bob") + " supporter") !=
          std::string::npos);
    // The same when the admin sets the role with no server running (havenctl's database path):
    // the config gives bob his role again, then takes him off while the server is down, and
    // the admin makes him an admin by hand before the next start.
    server.set_config("peersupport.supporters", toml_array({"bob@localhost"}));
    REQUIRE(server.restart() == 0);
    REQUIRE(server.stop() == 0);
    server.set_config("peersupport.supporters", toml_array({}));
    REQUIRE(server.run_ctl({"user", "role", server.jid("bob"), "admin"}).exit_code == 0);
    server.start();
    CHECK(server.run_ctl({"user", "list"}).out.find(server.jid("bob") + " admin") !=
          std::string::npos);
}

TEST_CASE("issue 4: grants expire after the configured inactivity period") {
    TestServer server(peersupport_on({{"peersupport.grant_expiry_days", "1"},
                                      {"peersupport.expiry_check_s", "1"}}));
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    sam.client.send("<message to='" + server.jid("alice") + "' type='chat'><body>hi</body></message>");
    REQUIRE(roster_push_for(alice.client, server.jid("sam"), "both"));
    // A fresh grant stays.
    CHECK(alice.client.expect_none(
        [](const Stanza& s) { return s.name() == "iq" && s.to_xml().find("remove") != std::string::npos; },
        1500ms));
    // Pretend the last activity was three days ago (another connection, as an admin's tool would).
    auto db = (server.data_dir() / "haven.sqlite").string();
    auto sql = "UPDATE peersupport_grants SET last_activity = last_activity - 3*86400;";
    REQUIRE(std::system(("sqlite3 '" + db + "' \"" + sql + "\"").c_str()) == 0);
    CHECK(roster_push_for(alice.client, server.jid("sam"), "remove"));
    auto after = refusal_for(alice.client,
                             "<message to='" + server.jid("sam") +
                                 "' type='chat' id='late'><body>still there?</body></message>",
                             "late");
    REQUIRE(after);
    check_refusal(*after);
}
