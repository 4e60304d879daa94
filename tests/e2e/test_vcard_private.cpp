// vcard-temp (XEP-0054) and private XML storage (XEP-0049) against a real havend.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "e2e/harness/client.hpp"
#include "e2e/harness/online.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;

namespace {


// True when `needle` occurs in any file of the data directory (database, WAL, journal).
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

struct Fixture {
    TestServer server;
    TestClient alice{server, {.resource = "phone"}};
    TestClient bob{server, {.resource = "laptop"}};

    explicit Fixture(ServerOptions options = {}) : server(std::move(options)) {
        // Supporters: the peer-support policy refuses member-to-member lookups (tested there).
        server.add_user("alice", "alice-secret", "supporter");
        server.add_user("bob", "bob-secret", "supporter");
        server.start();
        REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
        REQUIRE_MESSAGE(bob.connect(server.jid("bob"), "bob-secret"), bob.failure());
    }

    Stanza iq(TestClient& c, const std::string& xml) {
        auto r = c.iq_roundtrip(xml);
        REQUIRE_MESSAGE(r, "no answer to " << xml << "\nserver log:\n" << server.log_tail());
        return *r;
    }
};

const std::string alice_card =
    "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><N><FAMILY>Liddell</FAMILY>"
    "<GIVEN>Alice</GIVEN></N><NICKNAME>rabbit-hole-7f3a</NICKNAME></vCard>";

}  // namespace

TEST_CASE("XEP-0054 §3.1, §3.2: one's own vCard is empty until set, then comes back as set") {
    Fixture f;
    auto empty = f.iq(f.alice, "<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
    REQUIRE(empty.type() == "result");
    auto card = empty.child("vCard", "vcard-temp");
    REQUIRE(card);
    CHECK(card->children().empty());

    auto set = f.iq(f.alice, "<iq type='set'>" + alice_card + "</iq>");
    REQUIRE(set.type() == "result");

    auto got = f.iq(f.alice, "<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
    REQUIRE(got.type() == "result");
    card = got.child("vCard", "vcard-temp");
    REQUIRE(card);
    CHECK(card->child_text("FN") == "Alice Liddell");
    CHECK(card->child_text("NICKNAME") == "rabbit-hole-7f3a");
    REQUIRE(card->child("N"));
    CHECK(card->child("N")->child_text("GIVEN") == "Alice");

    // Addressed to the own bare JID explicitly: the same vCard.
    auto to_self = f.iq(f.alice, "<iq type='get' to='" + f.server.jid("alice") +
                                     "'><vCard xmlns='vcard-temp'/></iq>");
    REQUIRE(to_self.type() == "result");
    CHECK(to_self.child("vCard")->child_text("FN") == "Alice Liddell");

    // A new set replaces the whole vCard (no partial updates, §3.2).
    REQUIRE(f.iq(f.alice, "<iq type='set'><vCard xmlns='vcard-temp'><FN>A.</FN></vCard></iq>")
                .type() == "result");
    got = f.iq(f.alice, "<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
    CHECK(got.child("vCard")->child_text("FN") == "A.");
    CHECK_FALSE(got.child("vCard")->child("NICKNAME"));
}

TEST_CASE("XEP-0054 §3.3: another user's vCard is answered by the server from their bare JID") {
    Fixture f;
    REQUIRE(f.iq(f.alice, "<iq type='set'>" + alice_card + "</iq>").type() == "result");
    auto r = f.iq(f.bob, "<iq type='get' to='" + f.server.jid("alice") +
                             "'><vCard xmlns='vcard-temp'/></iq>");
    REQUIRE(r.type() == "result");
    CHECK(r.from() == f.server.jid("alice"));
    CHECK(r.child("vCard")->child_text("FN") == "Alice Liddell");
    // The server answers itself: alice's client never sees the request (§3.3).
    CHECK(f.alice.expect_none([](const Stanza& s) { return s.name() == "iq"; },
                              std::chrono::milliseconds(300)));
}

TEST_CASE("XEP-0054 §3.3: no vCard and no such user give the same error (no harvesting)") {
    Fixture f;
    auto none = f.iq(f.alice, "<iq type='get' to='" + f.server.jid("bob") +
                                  "'><vCard xmlns='vcard-temp'/></iq>");
    CHECK(error_condition(none) == "service-unavailable");
    auto nobody = f.iq(f.alice, "<iq type='get' to='" + f.server.jid("nobody") +
                                    "'><vCard xmlns='vcard-temp'/></iq>");
    CHECK(error_condition(nobody) == "service-unavailable");
}

TEST_CASE("XEP-0054 §3.2: setting another user's vCard is forbidden and changes nothing") {
    Fixture f;
    REQUIRE(f.iq(f.alice, "<iq type='set'>" + alice_card + "</iq>").type() == "result");
    auto r = f.iq(f.bob, "<iq type='set' to='" + f.server.jid("alice") +
                             "'><vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard></iq>");
    CHECK(error_condition(r) == "forbidden");
    auto nobody = f.iq(f.bob, "<iq type='set' to='" + f.server.jid("nobody") +
                                  "'><vCard xmlns='vcard-temp'><FN>x</FN></vCard></iq>");
    CHECK(error_condition(nobody) == "forbidden");
    auto got = f.iq(f.alice, "<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
    CHECK(got.child("vCard")->child_text("FN") == "Alice Liddell");
}

TEST_CASE("XEP-0054: [vcard] max_bytes refuses larger vCards with policy-violation") {
    Fixture f({.config = {{"vcard.max_bytes", "512"}}});
    REQUIRE(f.iq(f.alice, "<iq type='set'>" + alice_card + "</iq>").type() == "result");
    const std::string big(600, 'x');
    auto r = f.iq(f.alice, "<iq type='set'><vCard xmlns='vcard-temp'><DESC>" + big +
                               "</DESC></vCard></iq>");
    CHECK(error_condition(r) == "policy-violation");
    auto got = f.iq(f.alice, "<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
    CHECK(got.child("vCard")->child_text("FN") == "Alice Liddell");  // unchanged
}

TEST_CASE("XEP-0054: a vCard survives a restart and is encrypted at rest") {
    Fixture f;
    REQUIRE(f.iq(f.alice, "<iq type='set'>" + alice_card + "</iq>").type() == "result");
    f.alice.disconnect();
    f.bob.disconnect();
    REQUIRE(f.server.stop() == 0);
    CHECK_FALSE(stored_in_plaintext(f.server.data_dir(), "rabbit-hole-7f3a"));
    f.server.start();
    TestClient alice(f.server, {.resource = "again"});
    REQUIRE_MESSAGE(alice.connect(f.server.jid("alice"), "alice-secret"), alice.failure());
    auto got = f.iq(alice, "<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
    REQUIRE(got.type() == "result");
    CHECK(got.child("vCard")->child_text("NICKNAME") == "rabbit-hole-7f3a");
}

TEST_CASE("XEP-0049 §2.3 examples 1-2: private XML is stored and retrieved by namespace") {
    Fixture f;
    // Nothing stored yet: the empty element comes back.
    auto empty = f.iq(f.alice, "<iq type='get'><query xmlns='jabber:iq:private'>"
                               "<exodus xmlns='exodus:prefs'/></query></iq>");
    REQUIRE(empty.type() == "result");
    auto q = empty.child("query", "jabber:iq:private");
    REQUIRE(q);
    auto ex = q->child("exodus", "exodus:prefs");
    REQUIRE(ex);
    CHECK(ex->children().empty());

    REQUIRE(f.iq(f.alice, "<iq type='set'><query xmlns='jabber:iq:private'>"
                          "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick>"
                          "</exodus></query></iq>")
                .type() == "result");
    REQUIRE(f.iq(f.alice, "<iq type='set'><query xmlns='jabber:iq:private'>"
                          "<storage xmlns='storage:bookmarks'><conference jid='a@b' "
                          "autojoin='true'/></storage></query></iq>")
                .type() == "result");

    auto got = f.iq(f.alice, "<iq type='get'><query xmlns='jabber:iq:private'>"
                             "<exodus xmlns='exodus:prefs'/></query></iq>");
    REQUIRE(got.type() == "result");
    ex = got.child("query")->child("exodus", "exodus:prefs");
    REQUIRE(ex);
    CHECK(ex->child_text("defaultnick") == "Hamlet");

    auto marks = f.iq(f.alice, "<iq type='get'><query xmlns='jabber:iq:private'>"
                               "<storage xmlns='storage:bookmarks'/></query></iq>");
    REQUIRE(marks.type() == "result");
    auto storage = marks.child("query")->child("storage", "storage:bookmarks");
    REQUIRE(storage);
    REQUIRE(storage->child("conference"));
    CHECK(storage->child("conference")->attr("jid") == "a@b");
    // Only what was asked for.
    CHECK_FALSE(marks.child("query")->child("exodus"));

    // Bob's private storage is his own.
    auto bobs = f.iq(f.bob, "<iq type='get'><query xmlns='jabber:iq:private'>"
                            "<exodus xmlns='exodus:prefs'/></query></iq>");
    REQUIRE(bobs.type() == "result");
    CHECK(bobs.child("query")->child("exodus")->children().empty());
}

TEST_CASE("XEP-0049 §2.3: another user's private data is forbidden, for get and set") {
    Fixture f;
    REQUIRE(f.iq(f.alice, "<iq type='set'><query xmlns='jabber:iq:private'>"
                          "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick>"
                          "</exodus></query></iq>")
                .type() == "result");
    auto get = f.iq(f.bob, "<iq type='get' to='" + f.server.jid("alice") +
                               "'><query xmlns='jabber:iq:private'>"
                               "<exodus xmlns='exodus:prefs'/></query></iq>");
    CHECK(error_condition(get) == "forbidden");
    CHECK_FALSE(get.to_xml().find("Hamlet") != std::string::npos);
    auto set = f.iq(f.bob, "<iq type='set' to='" + f.server.jid("alice") +
                               "'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'>"
                               "<defaultnick>Macbeth</defaultnick></exodus></query></iq>");
    CHECK(error_condition(set) == "forbidden");
    auto got = f.iq(f.alice, "<iq type='get'><query xmlns='jabber:iq:private'>"
                             "<exodus xmlns='exodus:prefs'/></query></iq>");
    CHECK(got.child("query")->child("exodus")->child_text("defaultnick") == "Hamlet");
}

TEST_CASE("XEP-0049 §2.3: an empty query or a reserved namespace is not-acceptable") {
    Fixture f;
    auto no_child = f.iq(f.alice, "<iq type='set'><query xmlns='jabber:iq:private'/></iq>");
    CHECK(error_condition(no_child) == "not-acceptable");
    auto no_child_get = f.iq(f.alice, "<iq type='get'><query xmlns='jabber:iq:private'/></iq>");
    CHECK(error_condition(no_child_get) == "not-acceptable");
    // A child without its own xmlns inherits jabber:iq:private.
    auto inherited = f.iq(f.alice, "<iq type='set'><query xmlns='jabber:iq:private'>"
                                   "<prefs>x</prefs></query></iq>");
    CHECK(error_condition(inherited) == "not-acceptable");
    for (const char* ns : {"jabber:client", "jabber:server"}) {
        auto r = f.iq(f.alice, std::string("<iq type='set'><query xmlns='jabber:iq:private'>"
                                           "<message xmlns='") +
                                   ns + "'/></query></iq>");
        CHECK(error_condition(r) == "not-acceptable");
    }
}

TEST_CASE("XEP-0049: private data survives a restart and is encrypted at rest") {
    Fixture f;
    REQUIRE(f.iq(f.alice, "<iq type='set'><query xmlns='jabber:iq:private'>"
                          "<notes xmlns='urn:example:notes'>remember-the-c0ffee</notes>"
                          "</query></iq>")
                .type() == "result");
    f.alice.disconnect();
    f.bob.disconnect();
    REQUIRE(f.server.stop() == 0);
    CHECK_FALSE(stored_in_plaintext(f.server.data_dir(), "remember-the-c0ffee"));
    f.server.start();
    TestClient alice(f.server, {.resource = "again"});
    REQUIRE_MESSAGE(alice.connect(f.server.jid("alice"), "alice-secret"), alice.failure());
    auto got = f.iq(alice, "<iq type='get'><query xmlns='jabber:iq:private'>"
                           "<notes xmlns='urn:example:notes'/></query></iq>");
    REQUIRE(got.type() == "result");
    CHECK(got.child("query")->child_text("notes") == "remember-the-c0ffee");
}
