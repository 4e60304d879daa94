// Routing rules (RFC 6120 §8, RFC 6121 §8.5) in-process: a Server without modules, fake sessions.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <sodium.h>

#include "server/core/server.hpp"
#include "server/storage/user_store.hpp"
#include "server/xmpp/namespaces.hpp"
#include "tests/support/fake_session.hpp"

using namespace haven;

namespace {

using haven::testing::FakeSession;

struct Fixture {
    Fixture() {
        REQUIRE(sodium_init() >= 0);
        dir = std::filesystem::temp_directory_path() /
              ("haven-router-" + std::to_string(::getpid()) + "-" + std::to_string(++counter()));
        std::filesystem::create_directories(dir);
        auto cfg = config::Config::load_string(
            "[server]\ndomain = \"example.org\"\ndata_dir = \"" + dir.string() + "\"\n",
            all_options(registry));
        server = std::make_unique<Server>(io, std::move(cfg), registry);
        for (auto user : {"juliet", "romeo"}) {
            storage::UserRecord rec;
            rec.localpart = user;
            REQUIRE(server->users().create(rec));
        }
    }
    ~Fixture() {
        server.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    static int& counter() {
        static int n = 0;
        return n;
    }
    std::shared_ptr<FakeSession> connect(const std::string& full, int prio = 0,
                                         bool available = true) {
        auto s = std::make_shared<FakeSession>(++ids, *Jid::parse(full), prio, available);
        server->sessions().bind(s);
        return s;
    }
    // Parses nothing: builds stanzas with the Element builder, as the session's parser would.
    static Element message(std::string_view to, std::string_view type = "chat") {
        Element m("message", std::string(ns::client));
        m.attr("to", std::string(to)).attr("id", "m1");
        if (!type.empty()) {
            m.attr("type", std::string(type));
        }
        m.add(Element("body", std::string(ns::client))).text("hello");
        return m;
    }
    static Element iq(std::string_view to, std::string_view type = "get") {
        Element q("iq", std::string(ns::client));
        q.attr("id", "q1").attr("type", std::string(type));
        if (!to.empty()) {
            q.attr("to", std::string(to));
        }
        q.add(Element("query", "urn:example:unknown"));
        return q;
    }
    static std::string condition(const Element& e) {
        const auto* err = e.child("error");
        if (!err) {
            return {};
        }
        for (const auto* c : err->children()) {
            if (c->ns() == ns::stanza_errors && c->name() != "text") {
                return c->name();
            }
        }
        return {};
    }

    ModuleRegistry registry;  // no modules: the core rules alone
    boost::asio::io_context io;
    std::filesystem::path dir;
    std::unique_ptr<Server> server;
    std::uint64_t ids = 0;
};

}  // namespace

TEST_CASE("RFC 6120 §8.1.2.1: the server stamps the sender's full JID") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    auto juliet = f.connect("juliet@example.org/balcony");
    auto m = Fixture::message("juliet@example.org/balcony");
    m.attr("from", "juliet@example.org/balcony");  // spoofed (the session rejects it; the router
                                                   // overwrites whatever reached it)
    f.server->router().from_session(*romeo, m);
    REQUIRE(juliet->sent.size() == 1);
    CHECK(juliet->sent[0].attr("from") == "romeo@example.org/orchard");
}

TEST_CASE("RFC 6121 §8.5.2.1.1: chat to a bare JID goes to the highest non-negative priority") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    auto low = f.connect("juliet@example.org/low", 1);
    auto high1 = f.connect("juliet@example.org/high1", 5);
    auto high2 = f.connect("juliet@example.org/high2", 5);
    auto negative = f.connect("juliet@example.org/neg", -1);
    auto unavailable = f.connect("juliet@example.org/away", 10, false);
    f.server->router().from_session(*romeo, Fixture::message("juliet@example.org"));
    CHECK(high1->sent.size() == 1);
    CHECK(high2->sent.size() == 1);
    CHECK(low->sent.empty());
    CHECK(negative->sent.empty());
    CHECK(unavailable->sent.empty());
    CHECK(romeo->sent.empty());  // no error

    // Headlines go to every non-negative available resource.
    f.server->router().from_session(*romeo, Fixture::message("juliet@example.org", "headline"));
    CHECK(low->sent.size() == 1);
    CHECK(high1->sent.size() == 2);
    CHECK(negative->sent.empty());
}

TEST_CASE("RFC 6121 §8.5.3.2.1: a message to a missing resource is treated as to the bare JID") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    auto juliet = f.connect("juliet@example.org/balcony");
    f.server->router().from_session(*romeo, Fixture::message("juliet@example.org/gone"));
    CHECK(juliet->sent.size() == 1);
    // groupchat to a missing resource or a bare JID is an error.
    f.server->router().from_session(*romeo, Fixture::message("juliet@example.org/gone", "groupchat"));
    REQUIRE(romeo->sent.size() == 1);
    CHECK(Fixture::condition(romeo->sent[0]) == "service-unavailable");
}

TEST_CASE("RFC 6121 §8.5.2.2: a message to a non-existent account gets service-unavailable") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    f.server->router().from_session(*romeo, Fixture::message("nobody@example.org"));
    REQUIRE(romeo->sent.size() == 1);
    CHECK(romeo->sent[0].attr("type") == "error");
    CHECK(romeo->sent[0].attr("from") == "nobody@example.org");
    CHECK(Fixture::condition(romeo->sent[0]) == "service-unavailable");
    // Without offline storage (no module), an offline existing account answers the same.
    f.server->router().from_session(*romeo, Fixture::message("juliet@example.org"));
    REQUIRE(romeo->sent.size() == 2);
    CHECK(Fixture::condition(romeo->sent[1]) == "service-unavailable");
}

TEST_CASE("RFC 6120 §8.3.1 / §8.4: unhandled IQs get service-unavailable, never results/errors") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    f.server->router().from_session(*romeo, Fixture::iq("example.org"));
    f.server->router().from_session(*romeo, Fixture::iq("juliet@example.org"));
    f.server->router().from_session(*romeo, Fixture::iq("juliet@example.org/none"));
    f.server->router().from_session(*romeo, Fixture::iq(""));  // to the own account
    REQUIRE(romeo->sent.size() == 4);
    for (const auto& e : romeo->sent) {
        CHECK(Fixture::condition(e) == "service-unavailable");
        CHECK(e.attr("id") == "q1");
    }
    romeo->sent.clear();
    f.server->router().from_session(*romeo, Fixture::iq("example.org", "result"));
    f.server->router().from_session(*romeo, Fixture::iq("juliet@example.org/none", "error"));
    auto err = Fixture::message("nobody@example.org", "error");
    f.server->router().from_session(*romeo, err);
    CHECK(romeo->sent.empty());
}

TEST_CASE("RFC 6120 §8.2.3 / §8.3.3.8: malformed IQs and JIDs are refused") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    auto two = Fixture::iq("example.org");
    two.add(Element("second", "urn:example:unknown"));
    f.server->router().from_session(*romeo, two);
    auto bad_type = Fixture::iq("example.org", "fetch");
    f.server->router().from_session(*romeo, bad_type);
    f.server->router().from_session(*romeo, Fixture::message("juliet@@example.org"));
    REQUIRE(romeo->sent.size() == 3);
    CHECK(Fixture::condition(romeo->sent[0]) == "bad-request");
    CHECK(Fixture::condition(romeo->sent[1]) == "bad-request");
    CHECK(Fixture::condition(romeo->sent[2]) == "jid-malformed");
}

TEST_CASE("IQ to a full JID reaches exactly that resource") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    auto a = f.connect("juliet@example.org/a", 10);
    auto b = f.connect("juliet@example.org/b", 0);
    f.server->router().from_session(*romeo, Fixture::iq("juliet@example.org/b"));
    CHECK(a->sent.empty());
    CHECK(b->sent.size() == 1);
}

TEST_CASE("remote domains fall back to remote-server-not-found until federation exists") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    f.server->router().from_session(*romeo, Fixture::message("mercutio@elsewhere.example"));
    REQUIRE(romeo->sent.size() == 1);
    CHECK(Fixture::condition(romeo->sent[0]) == "remote-server-not-found");
}

TEST_CASE("event bus: pre- hooks run before delivery and can stop it; handler errors are contained") {
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    auto juliet = f.connect("juliet@example.org/balcony");
    int seen = 0;
    auto id = f.server->bus().hook("pre-message/bare", prio::policy, [&](StanzaEvent& e) {
        ++seen;
        e.reply_error("not-allowed");
        return Flow::Stop;
    });
    f.server->router().from_session(*romeo, Fixture::message("juliet@example.org"));
    CHECK(seen == 1);
    CHECK(juliet->sent.empty());
    REQUIRE(romeo->sent.size() == 1);
    CHECK(Fixture::condition(romeo->sent[0]) == "not-allowed");
    f.server->bus().unhook(id);

    auto boom = f.server->bus().hook("iq-get/host/urn:example:unknown", prio::normal,
                                     [](StanzaEvent&) -> Flow { throw std::runtime_error("x"); });
    romeo->sent.clear();
    f.server->router().from_session(*romeo, Fixture::iq("example.org"));
    REQUIRE(romeo->sent.size() == 1);
    CHECK(Fixture::condition(romeo->sent[0]) == "internal-server-error");
    f.server->bus().unhook(boom);
}

TEST_CASE("router: a storage failure on the router's own path is contained (issue 10)") {
    // The fallback's account lookup runs outside the event bus's handler guard. A StorageError
    // there used to leave the router and end the process through io.run().
    Fixture f;
    auto romeo = f.connect("romeo@example.org/orchard");
    f.server->db().exec("DROP TABLE accounts");
    CHECK_NOTHROW(f.server->router().from_session(*romeo, Fixture::message("nobody@example.org")));
    REQUIRE(romeo->sent.size() == 1);
    CHECK(Fixture::condition(romeo->sent[0]) == "internal-server-error");
    CHECK(romeo->sent[0].attr("from") == "nobody@example.org");
    // An error is never answered with an error, even when routing it fails.
    romeo->sent.clear();
    CHECK_NOTHROW(
        f.server->router().from_session(*romeo, Fixture::message("nobody@example.org", "error")));
    CHECK(romeo->sent.empty());
}
