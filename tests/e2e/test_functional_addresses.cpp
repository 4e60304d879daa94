// Functional addresses (modules/functional_addresses/README.md) end to end: one member writes
// to a team address, three supporters share the inquiry, with real libstrophe clients.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "e2e/harness/client.hpp"
#include "e2e/harness/online.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view stanza_errors = "urn:ietf:params:xml:ns:xmpp-stanzas";
constexpr std::string_view ns_nick = "http://jabber.org/protocol/nick";
constexpr std::string_view ns_commands = "http://jabber.org/protocol/commands";
constexpr std::string_view handover_node = "urn:haven:functional-addresses:handover";
constexpr std::string_view close_node = "urn:haven:functional-addresses:close";

const std::string address = "beratung@localhost";
const std::vector<std::string> staff_jids = {"sam@localhost", "kim@localhost", "lee@localhost"};

std::string addresses_toml(std::string_view show_sender = "jid") {
    return R"([{jid = "beratung@localhost", name = "Beratung", )"
           R"(staff = ["sam@localhost", "kim@localhost", "lee@localhost"], )"
           R"(auto_reply_en = "Your message has reached the team.", )"
           R"(auto_reply_de = "Deine Nachricht ist beim Team angekommen.", )"
           R"(pseudonyms = {"sam@localhost" = "Sam S."}, show_sender = ")" +
           std::string(show_sender) + "\"}]";
}

ServerOptions options(std::string_view show_sender = "jid") {
    // The harness switches the peer-support policy off by default; these tests need it on.
    return {.config = {{"peersupport.enabled", "true"},
                       {"functional_addresses.addresses", addresses_toml(show_sender)}}};
}

// alice, bob: members; sam, kim, lee: supporters (the staff of beratung@).
void add_users(TestServer& server) {
    server.add_user("alice", "pw-alice");
    server.add_user("bob", "pw-bob");
    server.add_user("sam", "pw-sam", "supporter");
    server.add_user("kim", "pw-kim", "supporter");
    server.add_user("lee", "pw-lee", "supporter");
}

// Members and staff all use the password "pw-<name>".
struct Online : OnlineClient {
    Online(TestServer& server, const std::string& user, bool keep = false,
           const std::string& resource = "r1")
        : OnlineClient(server, user, "pw-" + user, resource, keep) {}
};

bool is_pseudo(const std::string& jid) {
    return jid.starts_with("beratung+") && jid.ends_with("@localhost") &&
           jid.find('/') == std::string::npos;
}

bool is_chat(const Stanza& s, std::string_view body) {
    return s.name() == "message" && s.type() != "error" && s.child_text("body") == body;
}

bool body_contains(const Stanza& s, std::string_view part) {
    return s.name() == "message" && s.type() != "error" &&
           s.child_text("body").find(part) != std::string::npos;
}

// The forwarded copy of `body` a staff member gets; REQUIREs it and that it comes from an
// inquiry JID.
Stanza inquiry_copy(Online& staff, std::string_view body, std::chrono::milliseconds t = 5s) {
    auto m = staff.client.wait_for([&](const Stanza& s) { return is_chat(s, body); }, t);
    REQUIRE_MESSAGE(m, "no copy of '" << body << "' for " << staff.client.bound_jid());
    CHECK(is_pseudo(m->from()));
    return *m;
}

// The sender never sees a supporter's JID, anywhere in a stanza.
void check_no_staff_jid(const Stanza& s) {
    auto xml = s.to_xml();
    for (const auto& j : staff_jids) {
        CHECK_MESSAGE(xml.find(j) == std::string::npos, "staff JID leaked: " << xml);
    }
}

// Everything still queued for the sender, checked and dropped.
void check_queue_clean(Online& sender) {
    for (const auto& s : sender.client.received()) {
        check_no_staff_jid(s);
    }
}

Stanza reply_for(Online& sender, std::string_view body) {
    auto m = sender.client.wait_for([&](const Stanza& s) { return is_chat(s, body); });
    REQUIRE_MESSAGE(m, "the sender got no '" << body << "'");
    CHECK(m->from() == address);
    check_no_staff_jid(*m);
    return *m;
}

bool any_message(const Stanza& s) {
    return s.name() == "message";
}

std::optional<Stanza> error_for(Online& c, std::string_view condition) {
    return c.client.wait_for([&](const Stanza& s) {
        if (s.name() != "message" || s.type() != "error") {
            return false;
        }
        auto e = s.child("error");
        return e && e->child(condition, stanza_errors);
    });
}

// Runs an ad-hoc command's first step; returns the <command/> element.
Stanza command_form(Online& c, std::string_view node) {
    auto r = c.client.iq_roundtrip("<iq type='set' to='localhost' id='" + c.client.next_id() +
                                   "'><command xmlns='" + std::string(ns_commands) + "' node='" +
                                   std::string(node) + "' action='execute'/></iq>");
    REQUIRE(r);
    REQUIRE_MESSAGE(r->type() == "result", r->to_xml());
    auto cmd = r->child("command", ns_commands);
    REQUIRE(cmd);
    return *cmd;
}

Stanza command_submit(Online& c, std::string_view node, const Stanza& first,
                      const std::string& fields) {
    auto r = c.client.iq_roundtrip("<iq type='set' to='localhost' id='" + c.client.next_id() +
                                   "'><command xmlns='" + std::string(ns_commands) + "' node='" +
                                   std::string(node) + "' sessionid='" + first.attr("sessionid") +
                                   "' action='complete'><x xmlns='jabber:x:data' type='submit'>" +
                                   fields + "</x></command></iq>");
    REQUIRE(r);
    REQUIRE_MESSAGE(r->type() == "result", r->to_xml());
    auto cmd = r->child("command", ns_commands);
    REQUIRE(cmd);
    return *cmd;
}

std::string field(std::string_view var, std::string_view value) {
    return "<field var='" + std::string(var) + "'><value>" + std::string(value) +
           "</value></field>";
}

// alice opens an inquiry; returns its JID after every online staff member got it.
std::string open_inquiry(Online& sender, std::vector<Online*> staff, const std::string& body) {
    sender.say(address, body);
    std::string pseudo;
    for (auto* s : staff) {
        auto copy = inquiry_copy(*s, body);
        if (pseudo.empty()) {
            pseudo = copy.from();
        }
        CHECK(copy.from() == pseudo);
    }
    return pseudo;
}

}  // namespace

TEST_CASE("functional addresses: an inquiry fans out to every supporter under its own JID") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online bob(server, "bob");
    Online sam(server, "sam");
    Online kim(server, "kim");
    Online lee(server, "lee");

    alice.say(address, "I need to talk to someone");
    // The sender gets the auto-reply from the address itself.
    auto auto_reply = reply_for(alice, "Your message has reached the team.");
    CHECK(auto_reply.type() == "chat");

    std::string pseudo;
    for (auto* staff : {&sam, &kim, &lee}) {
        CAPTURE(staff->client.bound_jid());
        // A first notice names the address and the sender (show_sender = "jid")...
        auto intro = staff->client.wait_for(
            [](const Stanza& s) { return body_contains(s, "New inquiry to Beratung"); });
        REQUIRE(intro);
        CHECK(intro->child_text("body").find("alice@localhost") != std::string::npos);
        // ...then the message itself, from the same inquiry JID, with the sender as nick.
        auto copy = inquiry_copy(*staff, "I need to talk to someone");
        CHECK(copy.from() == intro->from());
        CHECK(copy.type() == "chat");
        CHECK(copy.child_text("nick", ns_nick) == "alice@localhost");
        if (pseudo.empty()) {
            pseudo = copy.from();
        }
        CHECK(copy.from() == pseudo);
    }
    // The token: 4-6 characters of [a-z0-9].
    auto token = pseudo.substr(9, pseudo.find('@') - 9);
    CHECK(token.size() >= 4);
    CHECK(token.size() <= 6);

    // A follow-up before anyone answered reaches all of them again, under the same JID, with
    // no second auto-reply.
    alice.say(address, "are you there?");
    for (auto* staff : {&sam, &kim, &lee}) {
        CHECK(inquiry_copy(*staff, "are you there?").from() == pseudo);
    }
    CHECK(alice.client.expect_none(any_message, 500ms));

    // Another sender is another inquiry: a different JID, so clients keep the chats apart.
    bob.say(address, "hello from bob");
    auto bob_copy = inquiry_copy(sam, "hello from bob");
    CHECK(bob_copy.from() != pseudo);
    CHECK(bob_copy.child_text("nick", ns_nick) == "bob@localhost");
}

TEST_CASE(
    "functional addresses: the first reply claims; the others are told; follow-ups go to "
    "the claimer") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    Online kim(server, "kim");
    Online lee(server, "lee");
    // sam's configured pseudonym is what alice will see: never his JID, his account name or
    // his vCard (which may carry his real name; issue 11).
    REQUIRE(
        sam.client.iq_roundtrip("<iq type='set' id='v1'><vCard xmlns='vcard-temp'>"
                                "<NICKNAME>Samuel Realname</NICKNAME></vCard></iq>"));

    auto pseudo = open_inquiry(alice, {&sam, &kim, &lee}, "hello team");
    sam.say(pseudo, "Hi, I'm here for you.");

    auto reply = reply_for(alice, "Hi, I'm here for you.");
    CHECK(reply.type() == "chat");
    CHECK(reply.child_text("nick", ns_nick) == "Sam S.");

    // The others get a short notice naming the claimer, in the inquiry's chat (staff see each
    // other's vCard names; the sender never does).
    for (auto* other : {&kim, &lee}) {
        auto notice =
            other->client.wait_for([](const Stanza& s) { return body_contains(s, "Taken by"); });
        REQUIRE(notice);
        CHECK(notice->from() == pseudo);
        CHECK(notice->child_text("body").find("Samuel Realname (sam@localhost)") !=
              std::string::npos);
    }
    CHECK(sam.client.expect_none([](const Stanza& s) { return body_contains(s, "Taken by"); },
                                 300ms));

    // Follow-ups go to sam only.
    alice.say(address, "thank you");
    CHECK(inquiry_copy(sam, "thank you").from() == pseudo);
    CHECK(kim.client.expect_none([](const Stanza& s) { return is_chat(s, "thank you"); }, 500ms));
    CHECK(lee.client.expect_none([](const Stanza& s) { return is_chat(s, "thank you"); }, 100ms));

    // kim can no longer answer: an error from the inquiry JID, nothing reaches alice.
    kim.say(pseudo, "let me help too");
    auto err = error_for(kim, "not-allowed");
    REQUIRE(err);
    CHECK(err->from() == pseudo);
    CHECK(err->child("error")->child_text("text", stanza_errors).find("Samuel Realname") !=
          std::string::npos);
    CHECK(alice.client.expect_none([](const Stanza& s) { return is_chat(s, "let me help too"); },
                                   500ms));

    // sam goes on answering.
    sam.say(pseudo, "tell me more");
    reply_for(alice, "tell me more");
    check_queue_clean(alice);
}

TEST_CASE("functional addresses: simultaneous replies resolve to exactly one claim") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    Online kim(server, "kim");
    Online lee(server, "lee");

    for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        auto pseudo = open_inquiry(alice, {&sam, &kim, &lee}, "round " + std::to_string(round));
        // All three answer before any of them reads anything.
        sam.say(pseudo, "sam answers");
        kim.say(pseudo, "kim answers");
        lee.say(pseudo, "lee answers");
        sam.sync();
        kim.sync();
        lee.sync();

        // alice gets exactly one answer...
        auto first =
            alice.client.wait_for([](const Stanza& s) { return body_contains(s, " answers"); });
        REQUIRE(first);
        check_no_staff_jid(*first);
        CHECK(alice.client.expect_none([](const Stanza& s) { return body_contains(s, " answers"); },
                                       500ms));
        // ...and the two others each got the refusal.
        auto winner = first->child_text("body").substr(0, 3);
        int refused = 0;
        for (auto* c : {&sam, &kim, &lee}) {
            bool got = static_cast<bool>(c->client.wait_for(
                [](const Stanza& s) { return s.name() == "message" && s.type() == "error"; },
                300ms));
            refused += got ? 1 : 0;
        }
        CHECK(refused == 2);
        // The winner closes it so that alice's next message opens a new inquiry.
        Online* w = winner == "sam" ? &sam : winner == "kim" ? &kim : &lee;
        w->say(pseudo, "/close");
        REQUIRE(w->client.wait_for([](const Stanza& s) { return body_contains(s, "closed"); }));
        for (auto* c : {&sam, &kim, &lee}) {
            c->sync();
            c->client.clear_received();
        }
        alice.client.clear_received();
    }
}

TEST_CASE("functional addresses: handover by text command and by ad-hoc command") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    Online kim(server, "kim");
    Online lee(server, "lee");

    auto pseudo = open_inquiry(alice, {&sam, &kim, &lee}, "can someone help");
    sam.say(pseudo, "yes, Sam here");
    reply_for(alice, "yes, Sam here");

    // /help answers from the inquiry JID and goes nowhere else.
    sam.say(pseudo, "/help");
    auto help = sam.client.wait_for([](const Stanza& s) { return body_contains(s, "!handover"); });
    REQUIRE(help);
    CHECK(help->from() == pseudo);

    // A non-member of the team cannot be chosen.
    sam.say(pseudo, "/handover bob");
    REQUIRE(sam.client.wait_for(
        [](const Stanza& s) { return body_contains(s, "is not on the team"); }));

    sam.say(pseudo, "!handover kim");
    auto done =
        sam.client.wait_for([](const Stanza& s) { return body_contains(s, "Handed over"); });
    REQUIRE(done);
    CHECK(done->child_text("body").find("kim@localhost") != std::string::npos);
    auto notice = kim.client.wait_for(
        [](const Stanza& s) { return body_contains(s, "handed this inquiry"); });
    REQUIRE(notice);
    CHECK(notice->from() == pseudo);
    CHECK(notice->child_text("body").find("sam@localhost") != std::string::npos);
    check_queue_clean(alice);
    alice.client.clear_received();                        // the auto-reply
    CHECK(alice.client.expect_none(any_message, 300ms));  // the sender notices nothing

    alice.say(address, "still there?");
    inquiry_copy(kim, "still there?");
    CHECK(
        sam.client.expect_none([](const Stanza& s) { return is_chat(s, "still there?"); }, 500ms));
    sam.say(pseudo, "sam again");
    REQUIRE(error_for(sam, "not-allowed"));
    kim.say(pseudo, "Kim here now");
    // kim has no pseudonym: the address's name, never the account name.
    CHECK(reply_for(alice, "Kim here now").child_text("nick", ns_nick) == "Beratung");

    // Ad-hoc: the command is listed for staff only.
    auto items =
        "<iq type='get' to='localhost' id='ci'><query "
        "xmlns='http://jabber.org/protocol/disco#items' "
        "node='http://jabber.org/protocol/commands'/></iq>";
    auto staff_list = kim.client.iq_roundtrip(items);
    REQUIRE(staff_list);
    CHECK(staff_list->to_xml().find(handover_node) != std::string::npos);
    auto member_list = alice.client.iq_roundtrip(items);
    REQUIRE(member_list);
    CHECK(member_list->to_xml().find(handover_node) == std::string::npos);

    // sam no longer holds it: his form lists nothing.
    auto none = command_form(sam, handover_node);
    CHECK(none.attr("status") == "completed");

    auto form = command_form(kim, handover_node);
    CHECK(form.attr("status") == "executing");
    CHECK(form.to_xml().find(pseudo) != std::string::npos);
    CHECK(form.to_xml().find("lee@localhost") != std::string::npos);
    auto result = command_submit(kim, handover_node, form,
                                 field("inquiry", pseudo) + field("to", "lee@localhost"));
    CHECK(result.attr("status") == "completed");
    CHECK(result.child("note")->attr("type") == "info");
    REQUIRE(lee.client.wait_for(
        [](const Stanza& s) { return body_contains(s, "handed this inquiry over to you"); }));
    alice.say(address, "hello again");
    inquiry_copy(lee, "hello again");
    CHECK(kim.client.expect_none([](const Stanza& s) { return is_chat(s, "hello again"); }, 500ms));
    // A member cannot run it.
    auto denied = alice.client.iq_roundtrip(
        "<iq type='set' to='localhost' id='c3'><command xmlns='" + std::string(ns_commands) +
        "' node='" + std::string(handover_node) + "' action='execute'/></iq>");
    REQUIRE(denied);
    CHECK(denied->type() == "error");
    check_queue_clean(alice);
}

TEST_CASE(
    "functional addresses: close by text and ad-hoc command; the next message is a new "
    "inquiry") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    Online kim(server, "kim");
    Online lee(server, "lee");

    auto first = open_inquiry(alice, {&sam, &kim, &lee}, "first question");
    sam.say(first, "answer one");
    reply_for(alice, "answer one");
    alice.client.clear_received();

    // kim may not close sam's inquiry.
    kim.say(first, "/close");
    REQUIRE(kim.client.wait_for([](const Stanza& s) { return body_contains(s, "already"); }));

    sam.say(first, "!close");
    REQUIRE(sam.client.wait_for(
        [](const Stanza& s) { return body_contains(s, "The inquiry is closed"); }));
    sam.say(first, "one more thing");
    auto gone = error_for(sam, "gone");
    REQUIRE(gone);
    CHECK(gone->from() == first);
    CHECK(alice.client.expect_none(any_message, 300ms));

    // A new message opens a new inquiry with a new JID (and the auto-reply again).
    auto second = open_inquiry(alice, {&sam, &kim, &lee}, "second question");
    CHECK(second != first);
    reply_for(alice, "Your message has reached the team.");

    // Close by ad-hoc command (an unclaimed inquiry: any of its staff).
    auto form = command_form(lee, close_node);
    CHECK(form.attr("status") == "executing");
    CHECK(form.to_xml().find(second) != std::string::npos);
    CHECK(form.to_xml().find(first) == std::string::npos);  // closed ones are not listed
    auto result = command_submit(lee, close_node, form, field("inquiry", second));
    CHECK(result.attr("status") == "completed");
    CHECK(result.child("note")->attr("type") == "info");
    // The others learn it was closed, so they don't answer.
    for (auto* other : {&sam, &kim}) {
        auto notice =
            other->client.wait_for([](const Stanza& s) { return body_contains(s, "Closed by"); });
        REQUIRE(notice);
        CHECK(notice->from() == second);
    }
    kim.say(second, "late answer");
    REQUIRE(error_for(kim, "gone"));
    // Running it again on a closed inquiry fails.
    // Submitting the (now stale) form again fails: the inquiry is closed.
    auto again = command_submit(lee, close_node, form, field("inquiry", second));
    CHECK(again.child("note")->attr("type") == "error");
    check_queue_clean(alice);
}

TEST_CASE("functional addresses: supporters who were offline get the queued inquiry on login") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    // Nobody of the team is online.
    alice.say(address, "is anyone there?");
    reply_for(alice, "Your message has reached the team.");
    alice.sync();

    std::string pseudo;
    {
        Online kim(server, "kim", true);
        auto copy = inquiry_copy(kim, "is anyone there?");
        CHECK(copy.child("delay", "urn:xmpp:delay"));
        pseudo = copy.from();
        kim.say(pseudo, "Kim here, sorry for the wait");
        reply_for(alice, "Kim here, sorry for the wait");
    }
    // lee logs in later: the inquiry and the notice that kim took it.
    Online lee(server, "lee", true);
    CHECK(inquiry_copy(lee, "is anyone there?").from() == pseudo);
    auto notice = lee.client.wait_for([](const Stanza& s) { return body_contains(s, "Taken by"); });
    REQUIRE(notice);
    CHECK(notice->from() == pseudo);
    // kim, offline now, gets alice's follow-up when she is back.
    alice.say(address, "ok, waiting");
    alice.sync();
    Online kim(server, "kim", true);
    CHECK(inquiry_copy(kim, "ok, waiting").from() == pseudo);
    CHECK(lee.client.expect_none([](const Stanza& s) { return is_chat(s, "ok, waiting"); }, 300ms));
}

TEST_CASE("functional addresses: offline staff get every queued message, whatever the personal "
          "offline quota") {
    auto opts = options();
    opts.config.emplace("offline.quota", "1");
    TestServer server(opts);
    add_users(server);
    server.start();
    Online alice(server, "alice");
    for (auto body : {"first message", "second message", "third message"}) {
        alice.say(address, body);
    }
    alice.sync();
    Online sam(server, "sam", true);
    for (auto body : {"first message", "second message", "third message"}) {
        inquiry_copy(sam, body);
    }
}

TEST_CASE("functional addresses: inquiries and their state survive a restart") {
    TestServer server(options());
    add_users(server);
    server.start();
    std::string open_pseudo;
    std::string claimed_pseudo;
    {
        Online alice(server, "alice");
        Online bob(server, "bob");
        Online sam(server, "sam");
        // bob's inquiry is claimed by sam; alice's stays open, with kim and lee offline.
        bob.say(address, "bob needs help");
        claimed_pseudo = inquiry_copy(sam, "bob needs help").from();
        sam.say(claimed_pseudo, "sam for bob");
        reply_for(bob, "sam for bob");
        alice.say(address, "before the restart");
        open_pseudo = inquiry_copy(sam, "before the restart").from();
    }
    REQUIRE(server.restart() == 0);

    Online alice(server, "alice");
    Online bob(server, "bob");
    Online sam(server, "sam");
    // kim was offline throughout: the open inquiry waited for her.
    Online kim(server, "kim", true);
    CHECK(inquiry_copy(kim, "before the restart").from() == open_pseudo);
    // The same inquiry goes on: no new JID, no new auto-reply.
    alice.say(address, "after the restart");
    CHECK(inquiry_copy(sam, "after the restart").from() == open_pseudo);
    CHECK(inquiry_copy(kim, "after the restart").from() == open_pseudo);
    CHECK(alice.client.expect_none(any_message, 300ms));
    kim.say(open_pseudo, "kim answers after the restart");
    reply_for(alice, "kim answers after the restart");
    // bob's inquiry is still sam's.
    bob.say(address, "bob again");
    CHECK(inquiry_copy(sam, "bob again").from() == claimed_pseudo);
    CHECK(kim.client.expect_none([](const Stanza& s) { return is_chat(s, "bob again"); }, 300ms));
    kim.say(claimed_pseudo, "kim tries bob");
    REQUIRE(error_for(kim, "not-allowed"));
}

TEST_CASE("functional addresses: the sender never sees a supporter's JID") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    auto pseudo = open_inquiry(alice, {&sam}, "private question");

    // sam's client adds his own nick, addresses, a receipt request and a file link that names
    // him; alice gets the body (and the harmless payloads) only.
    sam.say(pseudo, "here is a link",
            "<nick xmlns='http://jabber.org/protocol/nick'>sam@localhost</nick>"
            "<addresses xmlns='http://jabber.org/protocol/address'><address type='ofrom' "
            "jid='sam@localhost/r1'/></addresses>"
            "<request xmlns='urn:xmpp:receipts'/>"
            "<x xmlns='jabber:x:oob'><url>https://files.example/sam@localhost/a.png</url></x>"
            "<active xmlns='http://jabber.org/protocol/chatstates'/>");
    auto reply = reply_for(alice, "here is a link");
    CHECK(reply.child_text("nick", ns_nick) == "Sam S.");
    CHECK_FALSE(reply.child("addresses"));
    CHECK_FALSE(reply.child("request"));
    CHECK(reply.child("active", "http://jabber.org/protocol/chatstates"));

    // Typing notifications of the claimer reach the sender from the address too.
    REQUIRE(sam.client.send("<message to='" + pseudo +
                            "' type='chat'><composing "
                            "xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    auto typing = alice.client.wait_for(
        [](const Stanza& s) { return s.name() == "message" && s.child("composing"); });
    REQUIRE(typing);
    CHECK(typing->from() == address);
    check_no_staff_jid(*typing);

    // Disco, vCard and ping of the address name the team only.
    auto info = alice.client.iq_roundtrip(
        "<iq type='get' to='" + address +
        "' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    REQUIRE(info);
    check_no_staff_jid(*info);
    auto vcard = alice.client.iq_roundtrip("<iq type='get' to='" + address +
                                           "' id='v1'><vCard xmlns='vcard-temp'/></iq>");
    REQUIRE(vcard);
    CHECK(vcard->type() == "result");
    CHECK(vcard->child("vCard")->child_text("FN") == "Beratung");
    check_no_staff_jid(*vcard);
    check_queue_clean(alice);
}

TEST_CASE(
    "functional addresses: the member still cannot reach other members or the inquiry "
    "JIDs") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online bob(server, "bob");
    Online sam(server, "sam");
    Online kim(server, "kim");
    auto bob_inquiry = open_inquiry(bob, {&sam, &kim}, "bob's inquiry");
    auto alice_inquiry = open_inquiry(alice, {&sam, &kim}, "alice's inquiry");
    sam.say(alice_inquiry, "Sam for alice");
    reply_for(alice, "Sam for alice");

    auto refused = [&](const std::string& to, const std::string& id) {
        alice.client.send("<message to='" + to + "' type='chat' id='" + id +
                          "'><body>hi</body></message>");
        auto err = alice.client.wait_for([&](const Stanza& s) { return s.id() == id; });
        REQUIRE_MESSAGE(err, "no answer for " << to);
        CHECK(err->type() == "error");
        CHECK(err->child("error")->child("service-unavailable", stanza_errors));
        return err->child("error")->to_xml();
    };
    // Another member, a supporter without a grant, bob's inquiry, even her own inquiry JID and
    // a made-up one: all answer like a non-existent account.
    auto ghost = refused("ghost@localhost", "r0");
    CHECK(refused("bob@localhost", "r1") == ghost);
    CHECK(refused("kim@localhost", "r2") == ghost);
    CHECK(refused(bob_inquiry, "r3") == ghost);
    CHECK(refused(alice_inquiry, "r4") == ghost);
    CHECK(refused("beratung+zzzz@localhost", "r5") == ghost);
    CHECK(bob.client.expect_none([](const Stanza& s) { return is_chat(s, "hi"); }, 300ms));
    CHECK(kim.client.expect_none([](const Stanza& s) { return is_chat(s, "hi"); }, 300ms));
    // Writing to the address did not give alice a grant for sam himself.
    CHECK(refused("sam@localhost", "r6") == ghost);

    // A supporter who is not on the team gets the non-existent answer for inquiry JIDs too.
    server.add_user("zoe", "pw-zoe", "supporter");
    Online zoe(server, "zoe");
    zoe.say(bob_inquiry, "can I see this?");
    REQUIRE(error_for(zoe, "service-unavailable"));
    CHECK(sam.client.expect_none([](const Stanza& s) { return is_chat(s, "can I see this?"); },
                                 300ms));
}

TEST_CASE("functional addresses: disco identity, presence subscription and German auto-reply") {
    TestServer server(options());
    add_users(server);
    server.start();
    Online alice(server, "alice");

    auto info = alice.client.iq_roundtrip(
        "<iq type='get' to='" + address +
        "' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    REQUIRE(info);
    REQUIRE(info->type() == "result");
    auto identity = info->child("query")->child("identity");
    REQUIRE(identity);
    CHECK(identity->attr("category") == "client");
    CHECK(identity->attr("name") == "Beratung");
    auto ping = alice.client.iq_roundtrip("<iq type='get' to='" + address +
                                          "' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    REQUIRE(ping);
    CHECK(ping->type() == "result");
    auto other = alice.client.iq_roundtrip("<iq type='get' to='" + address +
                                           "' id='q1'><query xmlns='jabber:iq:version'/></iq>");
    REQUIRE(other);
    CHECK(other->type() == "error");

    // Subscribing is approved at once: roster push 'to', 'subscribed', then presence.
    REQUIRE(alice.client.send("<presence to='" + address + "' type='subscribe'/>"));
    auto push = alice.client.wait_for([](const Stanza& s) {
        if (s.name() != "iq" || s.type() != "set") {
            return false;
        }
        auto q = s.child("query", "jabber:iq:roster");
        auto item = q ? q->child("item") : std::nullopt;
        return item && item->attr("jid") == address && item->attr("subscription") == "to";
    });
    REQUIRE(push);
    auto subscribed = alice.client.wait_for([](const Stanza& s) {
        return s.name() == "presence" && s.type() == "subscribed" && s.from() == address;
    });
    REQUIRE(subscribed);
    auto available = alice.client.wait_for([](const Stanza& s) {
        return s.name() == "presence" && s.type().empty() && s.from() == address;
    });
    REQUIRE(available);
    alice.client.disconnect();

    // At the next login the address shows up as available again.
    Online again(server, "alice", true, "r2");
    CHECK(again.client.wait_for([](const Stanza& s) {
        return s.name() == "presence" && s.type().empty() && s.from() == address;
    }));

    // The auto-reply follows the message's language.
    again.say(address, "hallo", {}, " xml:lang='de'");
    auto de = reply_for(again, "Deine Nachricht ist beim Team angekommen.");
    // libstrophe may report xml:lang without its prefix.
    CHECK((de.attr("xml:lang") == "de" || de.attr("lang") == "de"));
}

TEST_CASE("functional addresses: show_sender = pseudonym hides the sender from the staff") {
    TestServer server(options("pseudonym"));
    add_users(server);
    server.start();
    Online alice(server, "alice");
    Online sam(server, "sam");
    alice.say(address, "anonymous question");
    auto intro = sam.client.wait_for(
        [](const Stanza& s) { return body_contains(s, "New inquiry to Beratung"); });
    REQUIRE(intro);
    auto copy = inquiry_copy(sam, "anonymous question");
    auto token = copy.from().substr(9, copy.from().find('@') - 9);
    CHECK(copy.child_text("nick", ns_nick) == "Inquiry " + token);
    for (const auto& s : {*intro, copy}) {
        CHECK(s.to_xml().find("alice@localhost") == std::string::npos);
    }
    auto vcard = sam.client.iq_roundtrip("<iq type='get' to='" + copy.from() +
                                         "' id='v1'><vCard xmlns='vcard-temp'/></iq>");
    REQUIRE(vcard);
    CHECK(vcard->to_xml().find("alice@localhost") == std::string::npos);
    sam.say(copy.from(), "hello, anonymous");
    reply_for(alice, "hello, anonymous");
}

TEST_CASE("functional addresses: --check-config rejects malformed addresses") {
    auto check = [](const std::string& value) {
        TestServer server({.config = {{"functional_addresses.addresses", value}}});
        return server.check_config();
    };
    CHECK(check(addresses_toml()).exit_code == 0);
    auto plus = check(R"([{jid = "team+x@localhost", staff = ["sam@localhost"]}])");
    CHECK(plus.exit_code != 0);
    CHECK(plus.err.find("'+'") != std::string::npos);
    CHECK(check(R"([{jid = "team@localhost", staff = []}])").exit_code != 0);
    CHECK(check(R"([{jid = "team@localhost", staff = ["sam@localhost"], colour = "red"}])")
              .exit_code != 0);
    CHECK(check(R"([{jid = "team@localhost", staff = ["sam@localhost"], show_sender = "x"}])")
              .exit_code != 0);
    CHECK(check(R"([{jid = "team@localhost/res", staff = ["sam@localhost"]}])").exit_code != 0);
}
