// XEP-0077 in-band registration through a real havend: account creation before login, password
// change and account removal after it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;

namespace {

constexpr const char* ns_register = "jabber:iq:register";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
constexpr const char* feature_register = "http://jabber.org/features/iq-register";

// An unauthenticated stream after STARTTLS (the only place in-band registration is offered).
struct PreAuth {
    RawConnection raw;
    TestClient parser{ClientOptions{}};  // only for TestClient::parse
    std::string features;

    explicit PreAuth(const TestServer& server) {
        REQUIRE(raw.connect(server.c2s_port()));
        REQUIRE(raw.open_stream(server.domain()));
        auto f = raw.negotiate_starttls(server.domain());
        REQUIRE_MESSAGE(f, "STARTTLS failed; log:\n" << server.log_tail());
        features = *f;
    }

    // Sends an IQ and reads up to the end of the reply with the same id.
    std::optional<Stanza> iq(const std::string& id, const std::string& type,
                             const std::string& payload) {
        if (!raw.send("<iq type='" + type + "' id='" + id + "'>" + payload + "</iq>")) {
            return std::nullopt;
        }
        auto head = raw.read_until("id='" + id + "'");
        if (!head) {
            return std::nullopt;
        }
        auto tag_end = raw.read_until(">");
        if (!tag_end) {
            return std::nullopt;
        }
        auto start = head->rfind("<iq");
        if (start == std::string::npos) {
            return std::nullopt;
        }
        std::string xml = head->substr(start) + *tag_end;
        if (!tag_end->ends_with("/>")) {
            auto rest = raw.read_until("</iq>");
            if (!rest) {
                return std::nullopt;
            }
            xml += *rest;
        }
        return parser.parse(xml);
    }

    std::optional<Stanza> submit(const std::string& id, const std::string& user,
                                 const std::string& password) {
        return iq(id, "set",
                  "<query xmlns='jabber:iq:register'><username>" + user +
                      "</username><password>" + password + "</password></query>");
    }
};

std::string error_condition(const Stanza& iq) {
    if (iq.type() != "error") {
        return {};
    }
    auto error = iq.child("error");
    if (!error) {
        return {};
    }
    for (const auto& c : error->children()) {
        if (c.ns() == ns_stanzas && c.name() != "text") {
            return c.name();
        }
    }
    return {};
}

bool can_login(const TestServer& server, std::string_view local, std::string_view password) {
    TestClient c(server);
    bool ok = c.connect(server.jid(local), password);
    if (ok) {
        c.disconnect();
    }
    return ok;
}

void sync(TestClient& c, const TestServer& server) {
    auto pong = c.iq_roundtrip("<iq type='get' to='" + server.domain() +
                               "'><ping xmlns='urn:xmpp:ping'/></iq>");
    REQUIRE_MESSAGE(pong, "no answer to a ping; server log:\n" << server.log_tail());
}

ServerOptions registration_on() {
    return ServerOptions{.config = {{"registration.enabled", "true"}}};
}

}  // namespace

TEST_CASE("XEP-0077 §3.1: with [registration] enabled = false there is no stream feature and "
          "registration gets service-unavailable") {
    TestServer server;  // the harness default is registration disabled
    server.start();

    PreAuth s(server);
    CHECK(s.features.find(feature_register) == std::string::npos);

    auto get = s.iq("g1", "get", "<query xmlns='jabber:iq:register'/>");
    REQUIRE_MESSAGE(get, "no reply; log:\n" << server.log_tail());
    CHECK(error_condition(*get) == "service-unavailable");

    auto set = s.submit("s1", "mallory", "mallory-secret");
    REQUIRE(set);
    CHECK(error_condition(*set) == "service-unavailable");
    CHECK_FALSE(can_login(server, "mallory", "mallory-secret"));
}

TEST_CASE("XEP-0077 §3.1: a new account is registered in-band and can then log in") {
    TestServer server(registration_on());
    server.start();

    PreAuth s(server);
    CHECK(s.features.find(feature_register) != std::string::npos);  // XEP-0077 §8

    auto form = s.iq("g1", "get", "<query xmlns='jabber:iq:register'/>");
    REQUIRE_MESSAGE(form, "no reply; log:\n" << server.log_tail());
    CHECK(form->type() == "result");
    auto q = form->child("query", ns_register);
    REQUIRE(q);
    CHECK(q->child("username"));
    CHECK(q->child("password"));
    CHECK(q->child("instructions"));
    CHECK_FALSE(q->child("registered"));

    // The username is normalised (RFC 7622 UsernameCaseMapped): "Carol" is the account carol.
    auto done = s.submit("s1", "Carol", "carol-secret");
    REQUIRE_MESSAGE(done, "no reply; log:\n" << server.log_tail());
    CHECK_MESSAGE(done->type() == "result", done->to_xml());

    // §3.1.1: one identity per stream.
    auto second = s.submit("s2", "carol2", "carol-secret");
    REQUIRE(second);
    CHECK(error_condition(*second) == "not-acceptable");

    CHECK(can_login(server, "carol", "carol-secret"));
    CHECK_FALSE(can_login(server, "carol", "wrong-password"));
    CHECK_FALSE(can_login(server, "carol2", "carol-secret"));

    // An authenticated user sees itself as registered (§3.1 Example 4).
    TestClient carol(server);
    REQUIRE_MESSAGE(carol.connect(server.jid("carol"), "carol-secret"), carol.failure());
    auto reg = carol.iq_roundtrip("<iq type='get' to='" + server.domain() +
                                  "'><query xmlns='jabber:iq:register'/></iq>");
    REQUIRE(reg);
    CHECK(reg->type() == "result");
    auto rq = reg->child("query", ns_register);
    REQUIRE(rq);
    CHECK(rq->child("registered"));
    CHECK(rq->child_text("username") == "carol");
    CHECK_FALSE(rq->child("password"));  // never echoed
}

TEST_CASE("XEP-0077 §3.1: registering a taken username gets conflict, bad input not-acceptable") {
    TestServer server(registration_on());
    server.add_user("alice", "alice-secret");
    server.start();

    PreAuth s(server);
    auto taken = s.submit("s1", "Alice", "other-password");
    REQUIRE_MESSAGE(taken, "no reply; log:\n" << server.log_tail());
    CHECK(error_condition(*taken) == "conflict");
    CHECK(taken->child("error")->attr("type") == "cancel");
    CHECK(can_login(server, "alice", "alice-secret"));
    CHECK_FALSE(can_login(server, "alice", "other-password"));

    auto no_password = s.iq("s2", "set",
                            "<query xmlns='jabber:iq:register'><username>dave</username>"
                            "<password/></query>");
    REQUIRE(no_password);
    CHECK(error_condition(*no_password) == "not-acceptable");
    auto bad_name = s.submit("s3", "da&lt;ve", "dave-secret");
    REQUIRE(bad_name);
    CHECK(error_condition(*bad_name) == "not-acceptable");

    // Failed attempts do not use up the stream's one registration.
    auto ok = s.submit("s4", "dave", "dave-secret");
    REQUIRE(ok);
    CHECK(ok->type() == "result");
    CHECK(can_login(server, "dave", "dave-secret"));
}

TEST_CASE("XEP-0077 §3.1.1: in-band registrations are rate limited server-wide") {
    auto options = registration_on();
    options.config["inband_register.max_per_window"] = "1";
    TestServer server(options);
    server.start();

    PreAuth first(server);
    auto a = first.submit("s1", "erin", "erin-secret");
    REQUIRE(a);
    CHECK(a->type() == "result");

    PreAuth second(server);
    auto b = second.submit("s1", "frank", "frank-secret");
    REQUIRE(b);
    CHECK(error_condition(*b) == "resource-constraint");
    CHECK_FALSE(can_login(server, "frank", "frank-secret"));
}

TEST_CASE("XEP-0077 §3.3: a user changes its password in-band (even with registration off); "
          "its other streams end") {
    TestServer server;
    server.add_user("alice", "old-secret");
    server.add_user("bob", "bob-secret");
    server.start();

    {
        TestClient alice(server, {.resource = "desk"});
        REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "old-secret"), alice.failure());
        TestClient elsewhere(server, {.resource = "stolen-phone"});
        REQUIRE_MESSAGE(elsewhere.connect(server.jid("alice"), "old-secret"), elsewhere.failure());
        // Someone else's account: refused.
        auto other = alice.iq_roundtrip("<iq type='set' to='" + server.domain() +
                                        "'><query xmlns='jabber:iq:register'><username>bob"
                                        "</username><password>pwned</password></query></iq>");
        REQUIRE(other);
        CHECK(error_condition(*other) == "not-allowed");
        // §3.3: an empty password never replaces the current one.
        auto empty = alice.iq_roundtrip("<iq type='set' to='" + server.domain() +
                                        "'><query xmlns='jabber:iq:register'><username>alice"
                                        "</username><password/></query></iq>");
        REQUIRE(empty);
        CHECK(error_condition(*empty) == "bad-request");

        auto changed = alice.iq_roundtrip("<iq type='set' to='" + server.domain() +
                                          "'><query xmlns='jabber:iq:register'><username>alice"
                                          "</username><password>new-secret</password></query>"
                                          "</iq>");
        REQUIRE_MESSAGE(changed, "no reply; log:\n" << server.log_tail());
        CHECK_MESSAGE(changed->type() == "result", changed->to_xml());
        // The old password is revoked: other streams of the account end with <reset/>, the
        // requesting one stays.
        REQUIRE(elsewhere.wait_disconnected());
        REQUIRE(elsewhere.stream_error());
        CHECK(elsewhere.stream_error()->condition == "reset");
        CHECK(alice.connected());
        sync(alice, server);
        alice.disconnect();
    }
    CHECK_FALSE(can_login(server, "alice", "old-secret"));
    CHECK(can_login(server, "alice", "new-secret"));
    CHECK(can_login(server, "bob", "bob-secret"));
    CHECK_FALSE(can_login(server, "bob", "pwned"));
}

TEST_CASE("XEP-0077 §3.2: <remove/> deletes the account, ends its sessions and erases its "
          "offline messages") {
    TestServer server;
    server.add_user("alice", "alice-secret");
    server.add_user("bob", "bob-secret", "supporter");  // staff may write to members
    server.start();

    TestClient alice(server, {.resource = "one"});
    REQUIRE_MESSAGE(alice.connect(server.jid("alice"), "alice-secret"), alice.failure());
    TestClient alice2(server, {.resource = "two"});
    REQUIRE_MESSAGE(alice2.connect(server.jid("alice"), "alice-secret"), alice2.failure());

    // alice has no available resource, so this is stored offline for her.
    TestClient bob(server);
    REQUIRE_MESSAGE(bob.connect(server.jid("bob"), "bob-secret"), bob.failure());
    REQUIRE(bob.send("<message to='" + server.jid("alice") +
                     "' type='chat' id='o1'><body>for later</body></message>"));
    sync(bob, server);
    CHECK(bob.expect_none([](const Stanza& s) { return s.type() == "error"; },
                          std::chrono::milliseconds(1)));

    // §3.2 Example 13: no 'to', handled by the home server. Not iq_roundtrip(): the server
    // closes the stream right after the result, and TestClient::send() reports that close.
    alice.send("<iq type='set' id='unreg1'><query xmlns='jabber:iq:register'><remove/></query>"
               "</iq>");
    auto removed = alice.wait_for([](const Stanza& s) {
        return s.name() == "iq" && s.id() == "unreg1";
    });
    REQUIRE_MESSAGE(removed, "no reply; log:\n" << server.log_tail());
    CHECK(removed->type() == "result");
    // §3.2: every session of the account ends with a <not-authorized/> stream error.
    REQUIRE(alice.wait_disconnected());
    REQUIRE(alice2.wait_disconnected());
    REQUIRE(alice.stream_error());
    CHECK(alice.stream_error()->condition == "not-authorized");
    REQUIRE(alice2.stream_error());
    CHECK(alice2.stream_error()->condition == "not-authorized");

    CHECK_FALSE(can_login(server, "alice", "alice-secret"));

    // Messages to the deleted account now bounce (RFC 6121 §8.5.2.2.1: no such user).
    REQUIRE(bob.send("<message to='" + server.jid("alice") +
                     "' type='chat' id='o2'><body>anyone?</body></message>"));
    auto bounce = bob.wait_for([](const Stanza& s) { return s.type() == "error"; });
    REQUIRE(bounce);
    CHECK(bounce->id() == "o2");
    CHECK(error_condition(*bounce) == "service-unavailable");

    // A new account with the same name starts empty: the old offline message is gone.
    server.add_user("alice", "fresh-secret");
    TestClient fresh(server);
    REQUIRE_MESSAGE(fresh.connect(server.jid("alice"), "fresh-secret"), fresh.failure());
    REQUIRE(fresh.send("<presence/>"));
    sync(fresh, server);
    CHECK(fresh.expect_none([](const Stanza& s) { return s.name() == "message"; },
                            std::chrono::milliseconds(200)));
}

TEST_CASE("issue 11: staff names, functional addresses and address+token are reserved; a "
          "reserved name answers exactly like a taken one") {
    auto options = registration_on();
    options.config["peersupport.enabled"] = "true";
    // sam is listed as a supporter but has no account yet: the name is still reserved.
    options.config["peersupport.supporters"] = toml_array({"sam@localhost"});
    options.config["peersupport.admins"] = toml_array({"ada@localhost"});
    options.extra_toml =
        "[[functional_addresses.addresses]]\njid = \"beratung@localhost\"\n"
        "staff = [\"ada@localhost\"]\n";
    TestServer server(options);
    server.add_user("alice", "alice-secret");
    server.add_user("ada", "ada-secret");
    server.start();

    auto answer = [&](const std::string& name) {
        PreAuth s(server);
        auto r = s.submit("s1", name, "some-secret");
        REQUIRE_MESSAGE(r, "no reply; log:\n" << server.log_tail());
        return r->to_xml();
    };
    const std::string taken = answer("alice");
    CHECK(taken.find("conflict") != std::string::npos);
    for (const std::string name : {"sam", "ada", "beratung", "beratung+x7", "Beratung"}) {
        CAPTURE(name);
        CHECK(answer(name) == taken);
        CHECK_FALSE(can_login(server, name, "some-secret"));
    }
    // A free name still works.
    PreAuth s(server);
    auto ok = s.submit("s1", "newbie", "newbie-secret");
    REQUIRE(ok);
    CHECK(ok->type() == "result");
}

TEST_CASE("issue 11: the rate limit comes before the name, so a taken name reveals nothing "
          "once it is reached") {
    auto options = registration_on();
    options.config["inband_register.max_per_window"] = "2";
    TestServer server(options);
    server.add_user("alice", "alice-secret");
    server.start();

    PreAuth first(server);
    auto a = first.submit("s1", "alice", "x-secret");  // taken: counts as an attempt
    REQUIRE(a);
    CHECK(error_condition(*a) == "conflict");
    auto b = first.submit("s2", "erin", "erin-secret");
    REQUIRE(b);
    CHECK(b->type() == "result");

    PreAuth second(server);
    auto taken = second.submit("s1", "alice", "x-secret");
    auto free = second.submit("s2", "frank", "frank-secret");
    REQUIRE(taken);
    REQUIRE(free);
    CHECK(error_condition(*taken) == "resource-constraint");
    CHECK(error_condition(*free) == "resource-constraint");
}
