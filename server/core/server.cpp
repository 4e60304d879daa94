// Server: host state, core options, storage and module loading.
#include "server/core/server.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <boost/asio/post.hpp>

#include "server/storage/database.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/offline_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/secret_box.hpp"
#include "server/storage/user_store.hpp"

namespace haven {

using namespace config;

std::vector<OptionSpec> core_options() {
    return {
        opt_string("server", "domain", "localhost", "The XMPP domain this server hosts."),
        opt_string("server", "data_dir", "./data",
                   "Directory for the SQLite database and key files (relative to the working "
                   "directory)."),
        opt_string("server", "control_socket", "",
                   "Unix socket (mode 0600) where havenctl reaches the running server, so admin "
                   "actions take effect at once; empty: control.sock in data_dir. No TCP."),
        opt_bool("server", "clock_control", false,
                 "For tests only: lets havenctl move the server's clock forward (`havenctl "
                 "clock advance SECONDS`), so schedules can be tested without waiting. Never "
                 "turn it on in production."),
        opt_string("tls", "cert", "certs/localhost.crt", "PEM certificate chain."),
        opt_string("tls", "key", "certs/localhost.key", "PEM private key (mode 0600)."),
        opt_bool("tls", "compact_connections", true,
                 "After a TLS 1.3 handshake, protect records with Haven's small record layer "
                 "(OpenSSL ciphers) and free OpenSSL's ~14 KiB per-connection state. Turns off "
                 "TLS session tickets; false keeps OpenSSL for the whole connection."),
        opt_string("c2s", "address", "127.0.0.1", "Address for client connections."),
        opt_int("c2s", "port", 5222, 0, 65535, "Client port with STARTTLS (RFC 6120)."),
        opt_int("c2s", "direct_tls_port", 5223, 0, 65535,
                "Client port with TLS from the first byte (XEP-0368); 0 disables."),
        opt_bool("c2s", "require_encryption", true,
                 "Refuse authentication and stanzas before STARTTLS."),
        opt_int("c2s", "hibernate_after_s", 10, 0, 86400,
                "Seconds without input after which a logged-in connection frees its XML parser "
                "and TLS cipher state (rebuilt on its next input); 0 never."),
        opt_int("c2s", "ping_interval_s", 45, 0, 86400,
                "Seconds without input after which the server pings a logged-in client "
                "(XEP-0199), so a connection that died without a word (a phone that lost its "
                "network) is found within ping_interval_s + ping_timeout_s; 0 never."),
        opt_int("c2s", "ping_timeout_s", 20, 1, 3600,
                "Seconds a client has to answer that ping (anything it sends counts) before "
                "its connection is dropped: the session then waits for a resumption "
                "(XEP-0198) or ends."),
        opt_int("c2s", "write_batch_turns", 6, 1, 16,
                "Event-loop turns that output waits for more stanzas to the same connection, so "
                "they leave in one write. An idle loop turns in microseconds, so this only delays "
                "output when the server is busy; 1 writes at the end of every turn."),
        opt_list("sasl", "mechanisms",
                 {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
                  "PLAIN"},
                 "SASL mechanisms offered, in order (PLAIN only ever over TLS).",
                 {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1",
                  "PLAIN"}),
        opt_int("sasl", "scram_iterations", 4096, 4096, 10'000'000,
                "PBKDF2 iteration count for new or changed passwords."),
        opt_int("sasl", "max_failures_per_account", 5, 1, 1000,
                "Failed logins per account within the window before it is throttled."),
        opt_int("sasl", "max_failures_per_address", 20, 1, 100000,
                "Failed logins per client address within the window before it is throttled."),
        opt_int("sasl", "throttle_window_s", 60, 1, 86400, "Window for counting failed logins."),
        opt_int("sasl", "lockout_s", 300, 1, 86400,
                "How long an account or address that reached its limit is refused."),
        opt_int("limits", "max_stanza_bytes", 262144, 1024, 16 * 1024 * 1024,
                "Largest stanza accepted from an authenticated client (policy-violation above)."),
        opt_int("limits", "max_stanza_bytes_unauthenticated", 8192, 512, 1024 * 1024,
                "Largest stanza accepted before authentication."),
        opt_int("limits", "unauthenticated_timeout_s", 30, 1, 3600,
                "Seconds a connection may take to authenticate and bind a resource."),
        opt_int("limits", "max_depth", 32, 4, 256, "Deepest XML nesting accepted in a stanza."),
        opt_int("limits", "max_sessions_per_account", 10, 1, 1000,
                "Sessions (bound resources) one account may have at once, those waiting for a "
                "resumption included; binding one more ends the oldest."),
        opt_int("limits", "max_unauthenticated_per_address", 32, 1, 1000000,
                "Connections from one address (IPv6: one /64) that have not logged in yet; more "
                "are closed at once, before TLS."),
        opt_int("limits", "max_unauthenticated", 2048, 1, 10000000,
                "Connections that have not logged in yet, from all addresses together."),
        opt_int("limits", "max_tls_handshakes_per_address", 16, 1, 1000000,
                "TLS handshakes in progress from one address (IPv6: one /64)."),
        opt_int("limits", "max_tls_handshakes", 256, 1, 1000000,
                "TLS handshakes in progress from all addresses together."),
        opt_int("limits", "max_stanza_elements", 4096, 16, 1000000,
                "Most elements in one stanza (policy-violation above): each costs ~200 bytes of "
                "memory however short it is on the wire. Before authentication at most 128."),
        opt_int("limits", "max_send_queue_bytes", 1024 * 1024, 64 * 1024, 64 * 1024 * 1024,
                "Bytes queued for a client that does not read (the socket refuses them) before "
                "its stream is closed; output waiting for the write batch may reach 4x this."),
        opt_string("storage", "key_file", "",
                   "The key that seals stored messages and personal data (created, mode 0600, "
                   "if missing). Empty: storage.key in data_dir. Put it elsewhere (e.g. a systemd "
                   "credentials directory) so that a copy of data_dir alone cannot be read."),
        opt_int("storage", "busy_timeout_ms", 10, 0, 2000,
                "Longest the event loop waits for a database lock held by another process "
                "(havenctl, a backup). Offline messages are then queued in memory and written "
                "when the lock goes; other writes answer a temporary error (type wait)."),
        opt_int("storage", "write_queue_messages", 10000, 100, 1000000,
                "Offline messages held in memory while the database is locked; beyond this "
                "(or write_queue_bytes) senders get <resource-constraint/> (type wait)."),
        opt_int("storage", "write_queue_bytes", 16 * 1024 * 1024, 1024 * 1024,
                1024 * 1024 * 1024, "Bytes of offline messages held in memory while the "
                "database is locked."),
        opt_string("log", "level", "info", "Log level.", {"debug", "info", "warn", "error"}),
        opt_bool("log", "addresses", false,
                 "Log client IP addresses (off: addresses of help seekers are sensitive)."),
        opt_bool("log", "login_events", false,
                 "Log each login at info level (off: logins are logged at debug only, so the "
                 "log does not record when members are online)."),
    };
}

std::filesystem::path control_socket_path(const config::Config& config) {
    const auto& configured = config.get_string("server", "control_socket");
    if (!configured.empty()) {
        return configured;
    }
    return std::filesystem::path(config.get_string("server", "data_dir")) / "control.sock";
}

std::filesystem::path storage_key_path(const config::Config& config) {
    const auto& configured = config.get_string("storage", "key_file");
    if (!configured.empty()) {
        return configured;
    }
    return std::filesystem::path(config.get_string("server", "data_dir")) / "storage.key";
}

namespace {
// ModuleSchema and ModuleInfo both carry .name and .options.
template <class Modules>
std::vector<OptionSpec> with_module_options(const Modules& modules) {
    auto specs = core_options();
    std::vector<std::string> names;
    for (const auto& m : modules) {
        names.push_back(m.name);
        for (const auto& o : m.options) {
            specs.push_back(o);
        }
    }
    specs.push_back(opt_list("modules", "enabled", names,
                             "Modules to load (all compiled-in modules by default).", names));
    return specs;
}
}  // namespace

std::vector<OptionSpec> all_options(const config::SchemaRegistry& schema) {
    return with_module_options(schema.all());
}

std::vector<OptionSpec> all_options(const ModuleRegistry& registry) {
    return with_module_options(registry.all());
}

Server::Server(boost::asio::io_context& io, Config config, const ModuleRegistry& registry)
    : io_(io),
      config_(std::move(config)),
      log_(Logger::parse_level(config_.get_string("log", "level")),
           config_.get_bool("log", "addresses")),
      registry_(registry),
      router_(*this),
      throttle_(auth::LoginThrottle::Config{
          static_cast<unsigned>(config_.get_int("sasl", "max_failures_per_account")),
          static_cast<unsigned>(config_.get_int("sasl", "max_failures_per_address")),
          std::chrono::seconds(config_.get_int("sasl", "throttle_window_s")),
          std::chrono::seconds(config_.get_int("sasl", "lockout_s"))}) {
    auto domain = Jid::parse(config_.get_string("server", "domain"));
    if (!domain || !domain->is_domain()) {
        throw ConfigError("[server] domain: not a valid domain name");
    }
    domain_ = domain->domain();
    host_jid_ = *domain;
    std::filesystem::path dir = config_.get_string("server", "data_dir");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        throw ConfigError("[server] data_dir: cannot create " + dir.string() + ": " + ec.message());
    }
    ::chmod(dir.c_str(), 0700);
    secret_box_ = std::make_unique<storage::SecretBox>(
        storage::SecretBox::load_or_create(storage_key_path(config_)));
    db_ = storage::Database::open(dir / "haven.sqlite", *secret_box_);
    users_ = std::make_unique<storage::UserStore>(*db_);
    roster_ = std::make_unique<storage::RosterStore>(*db_, *secret_box_);
    storage::DeferredLimits deferred;
    deferred.max_messages =
        static_cast<std::size_t>(config_.get_int("storage", "write_queue_messages"));
    deferred.max_bytes = static_cast<std::size_t>(config_.get_int("storage", "write_queue_bytes"));
    offline_ = std::make_unique<storage::OfflineStore>(*db_, *secret_box_, &io_, deferred);
    kv_ = std::make_unique<storage::KeyValueStore>(*db_, *secret_box_);
    accounts_ = std::make_unique<Accounts>(
        *users_, static_cast<std::uint32_t>(config_.get_int("sasl", "scram_iterations")),
        load_or_create_secret(dir / "scram.secret"));
    register_account_commands(*this);
    if (config_.get_bool("server", "clock_control")) {
        log_.warn("[server] clock_control is on: havenctl can move this server's clock");
        admin_.add("clock advance", 1, [this](const AdminRequest& r, const AdminDone& done) {
            long long seconds = 0;
            const auto& w = r.words[2];
            auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), seconds);
            if (ec != std::errc{} || p != w.data() + w.size() || seconds < 0) {
                done({false, "seconds must be a non-negative number"});
                return;
            }
            clock_.advance(std::chrono::seconds(seconds));
            clock_advanced.emit();
            done({true, "clock advanced by " + w + " s"});
        });
    }
}

Server::~Server() {
    // Unload in reverse order so later modules can rely on earlier services while unloading.
    // Hooks, timers and signal connections go first, so none of them can reach a module's
    // state once it is being destroyed.
    while (!modules_.empty()) {
        modules_.back().context->release();
        modules_.back().state.reset();
        modules_.pop_back();
    }
    // Offline messages accepted while another process held the database are still in memory:
    // give the lock a bounded time to go (SIGTERM must not hang), then report what is lost.
    if (offline_ && offline_->queued() > 0) {
        if (auto lost = offline_->flush_for_shutdown(std::chrono::seconds(5)); lost > 0) {
            log_.error("storage: database still locked at shutdown; ", lost,
                       " queued offline message(s) could not be written");
        } else {
            log_.info("storage: queued offline messages written at shutdown");
        }
    }
    pool_.join();
}

bool Server::user_exists(std::string_view localpart) {
    if (!sessions_.of(localpart).empty()) {
        return true;
    }
    return users_->exists(localpart);
}

void Server::load_modules() {
    const auto& enabled = config_.get_list("modules", "enabled");
    for (const auto& info : registry_.all()) {
        if (std::find(enabled.begin(), enabled.end(), info.name) == enabled.end()) {
            continue;
        }
        // A module that declares its own "enabled" switch can be turned off in its section.
        bool has_switch = std::any_of(info.options.begin(), info.options.end(),
                                      [&](const OptionSpec& o) {
                                          return o.section == info.name && o.key == "enabled";
                                      });
        if (has_switch && !config_.get_bool(info.name, "enabled")) {
            continue;
        }
        Loaded l;
        l.context = std::make_unique<ModuleContext>(*this, info);
        l.state = info.load(*l.context);
        modules_.push_back(std::move(l));
        log_.debug("loaded module ", info.name);
    }
    // Startup (migrations above) may wait the default 2 s for a lock; from now on the event
    // loop serves clients and must never wait that long (issue 10 §6, server/storage/README.md).
    db_->set_busy_timeout(
        std::chrono::milliseconds(config_.get_int("storage", "busy_timeout_ms")));
}

bool Server::add_service_domain(const std::string& domain) {
    if (domain == domain_) {
        return false;
    }
    return service_domains_.insert(domain).second;
}

std::vector<std::string> Server::loaded_modules() const {
    std::vector<std::string> out;
    for (const auto& m : modules_) {
        out.push_back(m.context->name());
    }
    return out;
}

void Server::offload(std::function<void()> work, std::function<void()> done) {
    boost::asio::post(pool_, [this, work = std::move(work), done = std::move(done)]() mutable {
        // An exception must not end the pool thread (that would terminate the process). `done`
        // still runs, so whoever waits for the result is not left hanging: work that failed
        // leaves its result at the caller's "failed" default.
        std::string failure;
        try {
            work();
        } catch (const std::exception& e) {
            failure = e.what();
        } catch (...) {
            failure = "unknown exception";
        }
        boost::asio::post(io_, [this, failure = std::move(failure), done = std::move(done)] {
            if (!failure.empty()) {
                log().error("offloaded work failed: ", failure);
            }
            done();
        });
    });
}

std::size_t Server::close_sessions_of(const std::string& localpart, std::string_view condition,
                                      std::string_view text, std::uint64_t keep) {
    auto sessions = sessions_.of(localpart);  // copy: closing a session unbinds it
    std::size_t closed = 0;
    for (const auto& s : sessions) {
        if (s->id() != keep) {
            s->close(condition, text);
            ++closed;
        }
    }
    return closed;
}

void Server::delete_user(const std::string& localpart) {
    // Takes the write lock first: if another process holds the database, this throws (busy)
    // before any session is closed or any module forgot the user.
    storage::Transaction tx(*db_);
    user_deleted.emit(localpart);
    close_sessions_of(localpart, "not-authorized", "account deleted");
    users_->remove(localpart);  // cascades to every per-user table
    tx.commit();
}

// ---- ModuleRegistry / ModuleContext ----

const ModuleInfo* ModuleRegistry::find(std::string_view name) const {
    for (const auto& m : modules_) {
        if (m.name == name) {
            return &m;
        }
    }
    return nullptr;
}

void ModuleRegistry::attach(const config::SchemaRegistry& schema) {
    for (auto& m : modules_) {
        const auto* s = schema.find(m.name);
        if (s == nullptr) {
            throw std::logic_error("module " + m.name + " has no HAVEN_MODULE_OPTIONS entry");
        }
        m.description = s->description;
        m.options = s->options;
    }
}

ModuleContext::ModuleContext(Server& server, const ModuleInfo& info)
    : server_(server), info_(info) {}

ModuleContext::~ModuleContext() { release(); }

void ModuleContext::release() {
    for (auto& t : timers_) {
        t->timer.cancel();
    }
    for (auto id : hooks_) {
        server_.bus().unhook(id);
    }
    for (auto& d : disconnects_) {
        d();
    }
    auto remove = [](std::vector<std::string>& list, const std::vector<std::string>& mine) {
        for (const auto& f : mine) {
            if (auto it = std::find(list.begin(), list.end(), f); it != list.end()) {
                list.erase(it);
            }
        }
    };
    remove(server_.features(), features_);
    remove(server_.account_features(), account_features_);
    for (auto id : stream_extensions_) {
        server_.stream_extensions().remove(id);
    }
    stream_extensions_.clear();
    timers_.clear();
    hooks_.clear();
    disconnects_.clear();
    features_.clear();
    account_features_.clear();
}

const Logger& ModuleContext::log() const { return server_.log(); }

void ModuleContext::add_stream_extension(StreamExtension extension) {
    stream_extensions_.push_back(server_.stream_extensions().add(std::move(extension)));
}

void ModuleContext::hook(std::string_view event, StanzaHandler handler, int priority) {
    hooks_.push_back(server_.bus().hook(event, priority, std::move(handler)));
}

void ModuleContext::hook(StanzaKind kind, RouteTarget target, StanzaHandler handler,
                         int priority) {
    hook(event_name(kind, target, false), std::move(handler), priority);
}

void ModuleContext::hook_outbound(StanzaKind kind, RouteTarget target, StanzaHandler handler,
                                  int priority) {
    hook(event_name(kind, target, true), std::move(handler), priority);
}

void ModuleContext::serve_domain(const std::string& domain) {
    if (!server_.add_service_domain(domain)) {
        throw std::runtime_error("domain " + domain + " is already served");
    }
    own_connection([&s = server_, domain] { s.remove_service_domain(domain); });
}

void ModuleContext::hook_iq(IqType type, Target target, std::string_view ns,
                            StanzaHandler handler, int priority) {
    std::string name = type == IqType::Get ? "iq-get/" : "iq-set/";
    name += target == Target::Host ? "host/" : "bare/";
    name += ns;
    hook(name, std::move(handler), priority);
}

void ModuleContext::admin_command(std::string verb, std::size_t args, AdminHandler handler) {
    const auto id = server_.admin().add(std::move(verb), args, std::move(handler));
    own_connection([&s = server_, id] { s.admin().remove(id); });
}

void ModuleContext::add_feature(std::string feature) {
    auto& list = server_.features();
    if (std::find(list.begin(), list.end(), feature) == list.end()) {
        list.push_back(feature);
        features_.push_back(std::move(feature));
    }
}

void ModuleContext::add_account_feature(std::string feature) {
    auto& list = server_.account_features();
    if (std::find(list.begin(), list.end(), feature) == list.end()) {
        list.push_back(feature);
        account_features_.push_back(std::move(feature));
    }
}

bool ModuleContext::opt_bool(std::string_view key) const {
    return server_.config().get_bool(info_.name, key);
}
std::int64_t ModuleContext::opt_int(std::string_view key) const {
    return server_.config().get_int(info_.name, key);
}
const std::string& ModuleContext::opt_string(std::string_view key) const {
    return server_.config().get_string(info_.name, key);
}
const std::vector<std::string>& ModuleContext::opt_list(std::string_view key) const {
    return server_.config().get_list(info_.name, key);
}

void ModuleContext::every(std::chrono::milliseconds interval, std::function<void()> fn) {
    auto ticker = std::make_unique<Ticker>(server_.io(), log(), interval, std::move(fn));
    ticker->arm();
    timers_.push_back(std::move(ticker));
}

void ModuleContext::Ticker::arm() {
    timer.expires_after(interval);
    // On cancellation (unload) the handler runs after the Ticker is gone: check ec first.
    timer.async_wait([this](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        // A module's periodic job that throws is logged; the timer keeps running.
        try {
            fn();
        } catch (const std::exception& e) {
            log.error("periodic job failed: ", e.what());
        } catch (...) {
            log.error("periodic job failed: unknown exception");
        }
        arm();
    });
}

}  // namespace haven
