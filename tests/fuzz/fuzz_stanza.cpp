// Fuzz harness: stanzas through the real router with every compiled-in module loaded (all of
// xeps/ and modules/), the peer-support policy on with roles, a functional address with staff,
// a group room (modules/groups) owned by sam, and e-mail notices (the relay is a closed port:
// a mail attempt fails at once). Top-level elements of other namespaces go to the stream
// extensions (XEP-0198 stream management), as on a c2s stream. The input is the body of a
// client stream; each stanza the parser delivers is routed as if the fake session of one
// logged-in user had sent it, and everything the server sends to any session is serialised as
// the c2s session would.
//
// State: a fresh Server (fresh SQLite database in a tmpfs directory, modules loaded, accounts
// created, sessions bound) for every input, so each input runs alone and a crash reproduces from
// its file. See tests/fuzz/README.md for what that costs and what it leaves out.
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <sodium.h>

#include "server/core/server.hpp"
#include "server/storage/user_store.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"
#include "server/xmpp/stanza.hpp"
#include "tests/fuzz/fuzz_util.hpp"
#include "tests/support/fake_session.hpp"

using namespace haven;
using haven::testing::FakeSession;

namespace {

constexpr std::string_view domain = "localhost";

// alice, bob: members; sam: supporter and staff of team@; ada: admin and staff of team@.
// An input that starts with '!' is sent by sam (staff commands, inquiry answers), otherwise by
// alice. bob and ada are online too; kim exists but is offline (offline storage).
const char* const config_text = R"(
[server]
domain = "localhost"
data_dir = "@DIR@"
[log]
level = "error"
[registration]
enabled = true
[sasl]
scram_iterations = 4096
[peersupport]
enabled = true
members_may_contact_remote = false
supporters = ["sam@localhost"]
admins = ["ada@localhost"]
grant_expiry_days = 1
[functional_addresses]
enabled = true
[[functional_addresses.addresses]]
jid = "team@localhost"
name = "Team"
staff = ["sam@localhost", "ada@localhost"]
auto_reply_en = "Your message has reached the team."
auto_reply_de = "Deine Nachricht ist beim Team angekommen."
show_sender = "jid"
[email_notices]
enabled = true
smtp_url = "smtp://127.0.0.1:1"
smtp_tls = "none"
[[groups]]
id = "lobby"
name = "Lobby"
room = "lobby@groups.localhost"
supporters = ["sam@localhost"]
[[groups.meetings]]
title = "Weekly"
start = "2026-01-06T18:00"
duration_minutes = 60
repeat = "weekly"
url = "https://meet.example.org/lobby"
)";

struct Account {
    const char* local;
    const char* role;
};
constexpr Account accounts[] = {
    {"alice", "member"}, {"bob", "member"}, {"sam", "supporter"}, {"ada", "admin"},
    {"kim", "member"},
};

std::filesystem::path data_dir() {
    // tmpfs when there is one: SQLite's syncs cost nothing there, and each input makes a fresh
    // database.
    std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    return base / ("haven-fuzz-stanza-" + std::to_string(::getpid()));
}

std::string with_dir(std::string text, const std::string& dir) {
    const auto at = text.find("@DIR@");
    text.replace(at, 5, dir);
    return text;
}

const ModuleRegistry& registry() {
    static const ModuleRegistry r = [] {
        ModuleRegistry reg;
        register_builtin_modules(reg);
        return reg;
    }();
    return r;
}

// The checks a c2s session makes before it hands a stanza to the router
// (C2sSession::handle_active): anything else never reaches the router from a client.
bool c2s_would_route(const Element& stanza, const Session& origin) {
    if (stanza.ns() != ns::client) {
        return false;
    }
    const auto kind = kind_of(stanza);
    if (kind == StanzaKind::Other) {
        return false;
    }
    if (auto from = stanza.attr("from"); !from.empty()) {
        auto parsed = Jid::parse(from);
        if (!parsed || (*parsed != origin.jid() && *parsed != origin.jid().bare())) {
            return false;
        }
    }
    if (kind == StanzaKind::Iq && stanza.child("bind", ns::bind)) {
        return false;
    }
    return true;
}

// One input's world: an io_context, a Server with every module and bound fake sessions.
struct World {
    World() {
        dir = data_dir();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        std::filesystem::create_directories(dir);
        auto cfg = config::Config::load_string(with_dir(config_text, dir.string()),
                                               all_options(registry()));
        // Accounts exist before the modules load, as on a running server (peersupport applies
        // the configured roles at load).
        server = std::make_unique<Server>(io, std::move(cfg), registry());
        for (const auto& a : accounts) {
            storage::UserRecord rec;
            rec.localpart = a.local;
            rec.role = a.role;
            server->users().create(rec);
        }
        server->load_modules();
        alice = connect("alice@localhost/fuzz");
        bob = connect("bob@localhost/phone");
        sam = connect("sam@localhost/desk");
        ada = connect("ada@localhost/office");
        poll();
    }
    ~World() {
        server.reset();  // joins the hashing pool; its completions are dropped with `io`
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    std::shared_ptr<FakeSession> connect(const std::string& full) {
        auto s = std::make_shared<FakeSession>(++ids, *Jid::parse(full), 0, true);
        server->sessions().bind(s);
        server->resource_bound.emit(*s);
        return s;
    }

    // Runs what the handlers posted (never waits for timers: those belong to later inputs).
    void poll() {
        io.restart();
        io.poll();
    }

    // What a c2s session does with each queued stanza: serialise it into the stream.
    void drain() {
        for (auto* s : {alice.get(), bob.get(), sam.get(), ada.get()}) {
            for (const auto& e : s->sent) {
                out += xml::serialize(e, ns::client).size();
            }
            s->sent.clear();
        }
    }

    boost::asio::io_context io;
    std::filesystem::path dir;
    std::unique_ptr<Server> server;
    std::uint64_t ids = 0;
    std::shared_ptr<FakeSession> alice, bob, sam, ada;
    std::size_t out = 0;
};

class Feeder final : public xml::StreamHandler {
public:
    Feeder(World& w, FakeSession& origin) : w_(w), origin_(origin) {}
    void on_stream_open(xml::StreamHeader&&) override {}
    bool on_stanza(Element&& stanza) override {
        if (++count_ > max_stanzas) {
            return false;  // bounds one input's work
        }
        if (stanza.ns() != ns::client) {
            // A top-level element of a stream extension (XEP-0198 <enable/>, <r/>, <a/>,
            // <resume/>), handled as the c2s session hands it over.
            if (const auto* ext = w_.server->stream_extensions().for_ns(stanza.ns())) {
                ext->nonza(origin_, stanza);
                w_.poll();
                w_.drain();
            }
            return true;
        }
        if (c2s_would_route(stanza, origin_)) {
            origin_.received(stanza);
            w_.server->router().from_session(origin_, std::move(stanza));
            w_.poll();
            w_.drain();
        }
        return true;
    }
    void on_stream_close() override {}

    static constexpr std::size_t max_stanzas = 64;

private:
    World& w_;
    FakeSession& origin_;
    std::size_t count_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (sodium_init() < 0) {
        std::abort();
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    World w;
    FakeSession* origin = w.alice.get();
    if (!input.empty() && input.front() == '!') {
        origin = w.sam.get();
        input.remove_prefix(1);
    }
    Feeder feeder(w, *origin);
    // The session's limits after authentication (the [limits] defaults).
    xml::StreamParser parser(feeder, xml::ParserLimits{262144, 32});
    const std::string header =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
    if (parser.feed(header) != xml::ParseError::None) {
        std::abort();
    }
    haven::fuzz::Splitter split(input);
    std::size_t at = 0;
    while (at < input.size() && !parser.stopped()) {
        const std::size_t n = split.chunk(input.size() - at);
        if (parser.feed(input.substr(at, n)) != xml::ParseError::None) {
            break;
        }
        at += n;
    }
    // The sender goes away: unavailable presence, carbons, functional-address bookkeeping.
    w.server->sessions().unbind(*origin);
    w.server->session_closed.emit(*origin);
    origin->end_filters();  // XEP-0198: what it never acknowledged is routed again
    w.poll();
    w.drain();
    return 0;
}
