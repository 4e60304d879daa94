// RFC 6121 §3.1.3 pending subscription requests are bounded (issue 10, containment): in-process,
// the real presence module, stanzas routed as the server routes them for any sender.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <string>

#include <sodium.h>
#include <boost/asio/io_context.hpp>

#include "server/core/module.hpp"
#include "server/core/server.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/user_store.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/rfc6121_presence/presence.hpp"
#include "xeps/rfc6121_roster.hpp"

using namespace haven;

namespace {

struct Fixture {
    Fixture() {
        REQUIRE(sodium_init() >= 0);
        register_builtin_modules(registry);
        dir = std::filesystem::temp_directory_path() /
              ("haven-presence-limits-" + std::to_string(::getpid()) + "-" +
               std::to_string(++counter()));
        std::filesystem::create_directories(dir);
        auto cfg =
            config::Config::load_string("[server]\ndomain = \"example.org\"\ndata_dir = \"" +
                                            dir.string() + "\"\n[peersupport]\nenabled = false\n",
                                        all_options(registry));
        server = std::make_unique<Server>(io, std::move(cfg), registry);
        storage::UserRecord rec;
        rec.localpart = "juliet";
        REQUIRE(server->users().create(rec));
        server->load_modules();
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
    // A subscription request from anyone (a remote JID: no account needed) to juliet, routed
    // like the second half of a client's subscribe (RFC 6121 §3.1.3, the contact's server).
    void subscribe(const std::string& from, const std::string& status = {}) {
        Element p("presence", std::string(ns::client));
        p.attr("type", "subscribe").attr("from", from).attr("to", "juliet@example.org");
        if (!status.empty()) {
            p.add(Element("status", std::string(ns::client))).text(status);
        }
        server->router().route(std::move(p));
    }

    ModuleRegistry registry;
    boost::asio::io_context io;
    std::filesystem::path dir;
    std::unique_ptr<Server> server;
};

std::string stranger(std::size_t i) {
    std::string jid = "s";
    jid += std::to_string(i);
    jid += "@remote.example";
    return jid;
}

}  // namespace

TEST_CASE("RFC 6121 §3.1.3: a huge pending subscription request is kept without its payload") {
    Fixture f;
    const std::string big(100000, 's');
    f.subscribe("big@remote.example", big);
    f.subscribe("small@remote.example", "please add me");
    auto stored_big = f.server->roster().get("juliet", "big@remote.example");
    REQUIRE(stored_big);
    CHECK(stored_big->ask_in);
    CHECK(stored_big->pending_subscribe.size() <= xeps::presence::max_pending_subscribe_bytes);
    CHECK(stored_big->pending_subscribe.find("type='subscribe'") != std::string::npos);
    CHECK(stored_big->pending_subscribe.find("big@remote.example") != std::string::npos);
    CHECK(stored_big->pending_subscribe.find("sss") == std::string::npos);
    auto stored_small = f.server->roster().get("juliet", "small@remote.example");
    REQUIRE(stored_small);
    CHECK(stored_small->pending_subscribe.find("please add me") != std::string::npos);
}

TEST_CASE("RFC 6121 §3.1.3: requests from strangers are kept up to max_pending_requests") {
    Fixture f;
    const auto limit = xeps::presence::max_pending_requests;
    for (std::size_t i = 0; i <= limit; ++i) {
        f.subscribe(stranger(i));
    }
    CHECK(f.server->kv().list_keys("juliet", xeps::roster_kv::hidden).size() == limit);
    CHECK(f.server->roster().get("juliet", "s0@remote.example"));
    CHECK_FALSE(f.server->roster().get("juliet", stranger(limit)));
    // A repeated request from someone already pending still updates its row.
    f.subscribe("s0@remote.example", "again");
    auto again = f.server->roster().get("juliet", "s0@remote.example");
    REQUIRE(again);
    CHECK(again->pending_subscribe.find("again") != std::string::npos);
}
