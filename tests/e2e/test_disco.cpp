// Service discovery (XEP-0030), ping (XEP-0199), software version (XEP-0092) and the router's
// IQ error rules (RFC 6120 §8) against a real havend.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "e2e/harness/client.hpp"
#include "e2e/harness/online.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;

namespace {

constexpr const char* disco_info = "http://jabber.org/protocol/disco#info";
constexpr const char* disco_items = "http://jabber.org/protocol/disco#items";


std::vector<std::string> features(const Stanza& result) {
    std::vector<std::string> out;
    if (auto q = result.child("query")) {
        for (const auto& c : q->children()) {
            if (c.name() == "feature") {
                out.push_back(c.attr("var"));
            }
        }
    }
    return out;
}

bool has(const std::vector<std::string>& list, std::string_view v) {
    return std::find(list.begin(), list.end(), v) != list.end();
}

struct Fixture {
    TestServer server;
    TestClient alice{server, {.resource = "phone"}};

    explicit Fixture(ServerOptions options = {}) : server(std::move(options)) {
        // Supporters: the peer-support policy refuses member-to-member lookups, which is not
        // what these tests are about.
        server.add_user("alice", "alice-secret", "supporter");
        server.add_user("bob", "bob-secret", "supporter");
        server.start();
        REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    }

    Stanza iq(const std::string& xml) {
        auto r = alice.iq_roundtrip(xml);
        REQUIRE_MESSAGE(r, "no answer to " << xml << "\nserver log:\n" << server.log_tail());
        return *r;
    }
};

}  // namespace

TEST_CASE("XEP-0030 §3.1: the server's disco#info has identity server/im and its features") {
    Fixture f;
    auto r = f.iq("<iq type='get' to='" + f.server.domain() + "'><query xmlns='" + disco_info +
                  "'/></iq>");
    REQUIRE(r.type() == "result");
    CHECK(r.from() == f.server.domain());
    auto q = r.child("query", disco_info);
    REQUIRE(q);
    auto identity = q->child("identity");
    REQUIRE(identity);
    CHECK(identity->attr("category") == "server");
    CHECK(identity->attr("type") == "im");
    CHECK(identity->attr("name") == "Haven");
    auto list = features(r);
    CHECK(has(list, disco_info));
    CHECK(has(list, disco_items));
    CHECK(has(list, "urn:xmpp:ping"));
    CHECK(has(list, "jabber:iq:version"));
    CHECK(has(list, "vcard-temp"));
    CHECK(has(list, "jabber:iq:private"));
    CHECK(has(list, "urn:xmpp:blocking"));
    // Sorted and without duplicates, so the answer is stable.
    CHECK(std::is_sorted(list.begin(), list.end()));
    CHECK(std::adjacent_find(list.begin(), list.end()) == list.end());
}

TEST_CASE("XEP-0030 §4.1: the server's disco#items lists its services, never users") {
    Fixture f;
    auto r = f.iq("<iq type='get' to='" + f.server.domain() + "'><query xmlns='" + disco_items +
                  "'/></iq>");
    REQUIRE(r.type() == "result");
    auto q = r.child("query", disco_items);
    REQUIRE(q);
    // The MUC service (XEP-0045 §6.1: clients find it here), and nothing else.
    auto items = q->children();
    REQUIRE(items.size() == 1);
    CHECK(items[0].attr("jid") == "groups." + f.server.domain());
}

TEST_CASE("XEP-0030 §3.1, §4.1: a node nobody provides is item-not-found") {
    Fixture f;
    for (const char* ns : {disco_info, disco_items}) {
        auto r = f.iq("<iq type='get' to='" + f.server.domain() + "'><query xmlns='" + ns +
                      "' node='no-such-node'/></iq>");
        CHECK(error_condition(r) == "item-not-found");
    }
    auto r = f.iq("<iq type='get' to='" + f.server.jid("bob") + "'><query xmlns='" + disco_info +
                  "' node='x'/></iq>");
    CHECK(error_condition(r) == "item-not-found");
}

TEST_CASE("XEP-0030 §3.1 / RFC 6121 §8.5.1: the server answers disco for an account's bare JID") {
    Fixture f;
    SUBCASE("another account") {
        auto r = f.iq("<iq type='get' to='" + f.server.jid("bob") + "'><query xmlns='" +
                      disco_info + "'/></iq>");
        REQUIRE(r.type() == "result");
        CHECK(r.from() == f.server.jid("bob"));
        auto identity = r.child("query")->child("identity");
        REQUIRE(identity);
        CHECK(identity->attr("category") == "account");
        CHECK(identity->attr("type") == "registered");
        auto list = features(r);
        CHECK(has(list, disco_info));
        CHECK(has(list, "vcard-temp"));
        // Server-only features are not account features.
        CHECK_FALSE(has(list, "jabber:iq:version"));
    }
    SUBCASE("one's own account, without 'to' (RFC 6120 §10.3.3)") {
        auto r = f.iq(std::string("<iq type='get'><query xmlns='") + disco_info + "'/></iq>");
        REQUIRE(r.type() == "result");
        CHECK(r.child("query")->child("identity")->attr("category") == "account");
    }
    SUBCASE("an account's disco#items is empty") {
        auto r = f.iq("<iq type='get' to='" + f.server.jid("bob") + "'><query xmlns='" +
                      disco_items + "'/></iq>");
        REQUIRE(r.type() == "result");
        CHECK(r.child("query")->children().empty());
    }
}

TEST_CASE("XEP-0030 §3.1 / RFC 6121 §8.5.2.2: disco to a nonexistent account is "
          "service-unavailable") {
    Fixture f;
    for (const char* ns : {disco_info, disco_items}) {
        auto r = f.iq("<iq type='get' to='" + f.server.jid("nobody") + "'><query xmlns='" + ns +
                      "'/></iq>");
        CHECK(error_condition(r) == "service-unavailable");
        CHECK(r.from() == f.server.jid("nobody"));
    }
}

TEST_CASE("XEP-0199 §4.2: the server answers pings to itself and to one's own bare JID") {
    Fixture f;
    auto r = f.iq("<iq type='get' to='" + f.server.domain() +
                  "'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(r.type() == "result");
    CHECK(r.from() == f.server.domain());
    auto own = f.iq("<iq type='get' to='" + f.server.jid("alice") +
                    "'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(own.type() == "result");
    auto no_to = f.iq("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(no_to.type() == "result");
}

TEST_CASE("XEP-0092 §2: software version is Haven with a version and, by default, no OS") {
    Fixture f;
    auto r = f.iq("<iq type='get' to='" + f.server.domain() +
                  "'><query xmlns='jabber:iq:version'/></iq>");
    REQUIRE(r.type() == "result");
    auto q = r.child("query", "jabber:iq:version");
    REQUIRE(q);
    CHECK(q->child_text("name") == "Haven");
    CHECK_FALSE(q->child_text("version").empty());
    CHECK_FALSE(q->child("os"));  // XEP-0092 §5: the OS helps attackers
}

TEST_CASE("XEP-0092 §5: [version] show_os = true adds the operating system") {
    Fixture f({.config = {{"version.show_os", "true"}}});
    auto r = f.iq("<iq type='get' to='" + f.server.domain() +
                  "'><query xmlns='jabber:iq:version'/></iq>");
    REQUIRE(r.type() == "result");
    CHECK_FALSE(r.child("query")->child_text("os").empty());
}

TEST_CASE("RFC 6120 §8.4: an IQ in an unknown namespace to the server is service-unavailable") {
    Fixture f;
    auto r = f.iq("<iq type='get' to='" + f.server.domain() +
                  "'><query xmlns='urn:example:nothing'/></iq>");
    CHECK(error_condition(r) == "service-unavailable");
    auto set = f.iq("<iq type='set' to='" + f.server.domain() + "'><query xmlns='" + disco_info +
                    "'/></iq>");
    CHECK(error_condition(set) == "service-unavailable");  // disco defines no set
}

TEST_CASE("RFC 6120 §8.2.3: an IQ with a bad type or not exactly one payload is bad-request") {
    Fixture f;
    auto bad_type = f.iq("<iq type='fetch' id='t1' to='" + f.server.domain() +
                         "'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(error_condition(bad_type) == "bad-request");
    auto two = f.iq("<iq type='get' id='t2' to='" + f.server.domain() +
                    "'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(error_condition(two) == "bad-request");
    auto none = f.iq("<iq type='get' id='t3' to='" + f.server.domain() + "'/>");
    CHECK(error_condition(none) == "bad-request");
    // The stream survives all of that.
    CHECK(f.iq("<iq type='get' to='" + f.server.domain() + "'><ping xmlns='urn:xmpp:ping'/></iq>")
              .type() == "result");
}
