// Unit tests for the peer-support policy decision (modules/peersupport/policy.hpp, issue #4).
#include <doctest/doctest.h>

#include "modules/peersupport/answers.hpp"
#include "modules/peersupport/policy.hpp"
#include "server/xml/element.hpp"

using namespace haven;
using namespace haven::peersupport;

namespace {
PolicyQuery member_to(Role recipient, StanzaKind kind, std::string_view type, bool grant) {
    PolicyQuery q;
    q.sender = Role::Member;
    q.kind = kind;
    q.type = type;
    q.target = TargetClass::LocalAccount;
    q.recipient = recipient;
    q.grant = grant;
    return q;
}
}  // namespace

TEST_CASE("staff may contact anyone, local or remote") {
    for (auto sender : {Role::Supporter, Role::Admin}) {
        for (auto target : {TargetClass::LocalAccount, TargetClass::Remote, TargetClass::Server}) {
            PolicyQuery q;
            q.sender = sender;
            q.target = target;
            q.recipient = Role::Member;
            CHECK(decide(q) == Verdict::Allow);
        }
    }
}

TEST_CASE("a member never opens a conversation with another member, on any stanza kind") {
    struct K {
        StanzaKind kind;
        std::string_view type;
    };
    const K kinds[] = {{StanzaKind::Message, "chat"},      {StanzaKind::Message, ""},
                       {StanzaKind::Message, "normal"},    {StanzaKind::Message, "headline"},
                       {StanzaKind::Message, "groupchat"}, {StanzaKind::Message, "error"},
                       {StanzaKind::Presence, ""},         {StanzaKind::Presence, "subscribe"},
                       {StanzaKind::Presence, "subscribed"}, {StanzaKind::Presence, "unavailable"},
                       {StanzaKind::Presence, "probe"},    {StanzaKind::Iq, "get"},
                       {StanzaKind::Iq, "set"},            {StanzaKind::Iq, "result"},
                       {StanzaKind::Iq, "error"}};
    for (const auto& k : kinds) {
        CAPTURE(k.type);
        // A grant flag on a member recipient is meaningless and must not open the door.
        CHECK(decide(member_to(Role::Member, k.kind, k.type, false)) == Verdict::Refuse);
        CHECK(decide(member_to(Role::Member, k.kind, k.type, true)) == Verdict::Refuse);
    }
}

TEST_CASE("a member reaches a supporter only with a grant") {
    for (auto staff : {Role::Supporter, Role::Admin}) {
        CHECK(decide(member_to(staff, StanzaKind::Message, "chat", false)) == Verdict::Refuse);
        CHECK(decide(member_to(staff, StanzaKind::Presence, "subscribe", false)) ==
              Verdict::Refuse);
        CHECK(decide(member_to(staff, StanzaKind::Presence, "", false)) == Verdict::Refuse);
        CHECK(decide(member_to(staff, StanzaKind::Iq, "get", false)) == Verdict::Refuse);
        CHECK(decide(member_to(staff, StanzaKind::Message, "chat", true)) == Verdict::Allow);
        CHECK(decide(member_to(staff, StanzaKind::Presence, "subscribe", true)) == Verdict::Allow);
        CHECK(decide(member_to(staff, StanzaKind::Presence, "", true)) == Verdict::Allow);
        CHECK(decide(member_to(staff, StanzaKind::Iq, "set", true)) == Verdict::Allow);
    }
}

TEST_CASE("answers to a supporter's own queries pass without a grant; other answers do not") {
    for (auto [kind, type] : {std::pair{StanzaKind::Iq, "result"}, {StanzaKind::Iq, "error"},
                              {StanzaKind::Message, "error"}, {StanzaKind::Presence, "error"}}) {
        auto q = member_to(Role::Supporter, kind, type, false);
        CHECK(decide(q) == Verdict::Refuse);  // nobody asked (issue 11: the "answers" channel)
        q.answers_request = true;
        CHECK(decide(q) == Verdict::Allow);
    }
}

TEST_CASE("the answer book: one answer per request, from that member to that resource") {
    AnswerBook book;
    auto t = AnswerBook::Clock::now();
    book.sent("sam@x/phone", "alice", StanzaKind::Iq, "q1", t);
    CHECK_FALSE(book.take("sam@x/laptop", "alice", StanzaKind::Iq, "q1", t));
    CHECK_FALSE(book.take("sam@x/phone", "bob", StanzaKind::Iq, "q1", t));
    CHECK_FALSE(book.take("sam@x/phone", "alice", StanzaKind::Message, "q1", t));
    CHECK_FALSE(book.take("sam@x/phone", "alice", StanzaKind::Iq, "q2", t));
    CHECK(book.take("sam@x/phone", "alice", StanzaKind::Iq, "q1", t));
    CHECK_FALSE(book.take("sam@x/phone", "alice", StanzaKind::Iq, "q1", t));  // consumed
    // Without an id there is nothing to answer.
    book.sent("sam@x/phone", "alice", StanzaKind::Iq, "", t);
    CHECK_FALSE(book.take("sam@x/phone", "alice", StanzaKind::Iq, "", t));
    // Entries expire, and the book never holds more than its bound.
    book.sent("sam@x/phone", "alice", StanzaKind::Iq, "old", t);
    CHECK_FALSE(book.take("sam@x/phone", "alice", StanzaKind::Iq, "old",
                          t + AnswerBook::lifetime + std::chrono::seconds(1)));
    for (std::size_t i = 0; i < AnswerBook::max_entries + 100; ++i) {
        book.sent("sam@x/phone", "alice", StanzaKind::Iq, std::to_string(i), t);
    }
    CHECK(book.size() <= AnswerBook::max_entries);
    CHECK_FALSE(book.take("sam@x/phone", "alice", StanzaKind::Iq, "0", t));  // the oldest went
    CHECK(book.take("sam@x/phone", "alice", StanzaKind::Iq,
                    std::to_string(AnswerBook::max_entries + 99), t));
}

TEST_CASE("withdrawing a subscription is always allowed") {
    CHECK(decide(member_to(Role::Member, StanzaKind::Presence, "unsubscribe", false)) ==
          Verdict::Allow);
    CHECK(decide(member_to(Role::Member, StanzaKind::Presence, "unsubscribed", false)) ==
          Verdict::Allow);
}

TEST_CASE("a member may use the server and their own account") {
    PolicyQuery q;
    q.sender = Role::Member;
    q.kind = StanzaKind::Iq;
    q.type = "get";
    q.target = TargetClass::Server;
    CHECK(decide(q) == Verdict::Allow);
    q.target = TargetClass::OwnAccount;
    CHECK(decide(q) == Verdict::Allow);
}

TEST_CASE("remote targets follow members_may_contact_remote") {
    PolicyQuery q;
    q.sender = Role::Member;
    q.target = TargetClass::Remote;
    CHECK(decide(q) == Verdict::Refuse);
    q.allow_remote = true;
    CHECK(decide(q) == Verdict::Allow);
}

TEST_CASE("content opens a conversation; chat states and receipts don't") {
    xml::Element m("message", "jabber:client");
    m.attr("type", "chat");
    CHECK_FALSE(has_content(m));
    m.add(xml::Element("active", "http://jabber.org/protocol/chatstates"));
    CHECK_FALSE(has_content(m));
    m.add(xml::Element("body", "jabber:client")).text("hello");
    CHECK(has_content(m));

    xml::Element omemo("message", "jabber:client");
    omemo.add(xml::Element("encrypted", "eu.siacs.conversations.axolotl"));
    CHECK(has_content(omemo));

    xml::Element headline("message", "jabber:client");
    headline.attr("type", "headline");
    headline.add(xml::Element("body", "jabber:client")).text("news");
    CHECK_FALSE(has_content(headline));
}

TEST_CASE("roles parse with member as the safe default") {
    CHECK(parse_role("admin") == Role::Admin);
    CHECK(parse_role("supporter") == Role::Supporter);
    CHECK(parse_role("member") == Role::Member);
    CHECK(parse_role("") == Role::Member);
    CHECK(parse_role("root") == Role::Member);
    CHECK(role_name(Role::Supporter) == "supporter");
}
