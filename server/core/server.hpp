// Server: owns the host's state (config, storage, sessions, event bus, modules) on one executor.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "server/auth/login_throttle.hpp"
#include "server/config/config.hpp"
#include "server/core/accounts.hpp"
#include "server/core/admin_commands.hpp"
#include "server/core/clock.hpp"
#include "server/core/event_bus.hpp"
#include "server/core/log.hpp"
#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/session_registry.hpp"
#include "server/core/stream_extension.hpp"
#include "server/core/texts.hpp"

namespace haven {

namespace storage {
class Database;
class UserStore;
class RosterStore;
class OfflineStore;
class KeyValueStore;
class SecretBox;
}  // namespace storage

// Every option the core itself declares ([server], [tls], [c2s], [sasl], [limits], ...).
std::vector<config::OptionSpec> core_options();
// Core options + every compiled-in module's options + [modules] enabled. The same list from
// the schema alone (havenctl) and from the loaded registry (havend, which attached it).
std::vector<config::OptionSpec> all_options(const config::SchemaRegistry& schema);
std::vector<config::OptionSpec> all_options(const ModuleRegistry& registry);
// Where havend listens for havenctl ([server] control_socket, default data_dir/control.sock).
std::filesystem::path control_socket_path(const config::Config& config);
// The at-rest key ([storage] key_file, default data_dir/storage.key); havenctl needs it too.
std::filesystem::path storage_key_path(const config::Config& config);

class Server;
// The core's own admin commands: user add/passwd/delete/role (server/core/admin_accounts.cpp).
void register_account_commands(Server& server);

class Server {
public:
    Server(boost::asio::io_context& io, config::Config config, const ModuleRegistry& registry);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    boost::asio::io_context& io() { return io_; }
    const config::Config& config() const { return config_; }
    const Logger& log() const { return log_; }
    const std::string& domain() const { return domain_; }
    const Jid& host_jid() const { return host_jid_; }
    bool is_local(const Jid& jid) const { return jid.domain() == domain_; }
    // Domains modules host beside domain() (RouteTarget::Service): a MUC service, later upload.
    bool serves(std::string_view domain) const { return service_domains_.contains(domain); }
    // False when the domain is the server's own or already served.
    bool add_service_domain(const std::string& domain);
    void remove_service_domain(const std::string& domain) { service_domains_.erase(domain); }
    const std::set<std::string, std::less<>>& service_domains() const { return service_domains_; }

    EventBus& bus() { return bus_; }
    Clock& clock() { return clock_; }
    const Clock& clock() const { return clock_; }
    Router& router() { return router_; }
    SessionRegistry& sessions() { return sessions_; }
    const Texts& texts() const { return texts_; }
    Texts& texts() { return texts_; }  // modules add their texts at load

    storage::Database& db() { return *db_; }
    storage::UserStore& users() { return *users_; }
    storage::RosterStore& roster() { return *roster_; }
    storage::OfflineStore& offline() { return *offline_; }
    storage::KeyValueStore& kv() { return *kv_; }
    // For modules' own tables: seal their rows and find them by keyed hashes, as the core does.
    const storage::SecretBox& secret_box() const { return *secret_box_; }
    bool user_exists(std::string_view localpart);
    Accounts& accounts() { return *accounts_; }
    auth::LoginThrottle& throttle() { return throttle_; }
    // What havenctl can ask of the running server (the control socket).
    AdminCommands& admin() { return admin_; }

    // Loads the modules the config enables; called once after construction.
    void load_modules();
    std::vector<std::string> loaded_modules() const;

    // Disco features of the server and of account bare JIDs (XEP-0030).
    std::vector<std::string>& features() { return features_; }
    std::vector<std::string>& account_features() { return account_features_; }
    // What modules add to client streams (stream features, their own top-level elements).
    StreamExtensions& stream_extensions() { return stream_extensions_; }

    // CPU-heavy work (PBKDF2) off the event loop; `done` runs back on the core executor.
    void offload(std::function<void()> work, std::function<void()> done);

    // Typed services modules offer each other (e.g. the roster service) without linking.
    template <class T>
    void provide(T* service) {
        services_[std::type_index(typeid(T))] = service;
    }
    template <class T>
    T* service() const {
        auto it = services_.find(std::type_index(typeid(T)));
        return it == services_.end() ? nullptr : static_cast<T*>(it->second);
    }
    template <class T>
    void withdraw() {
        services_.erase(std::type_index(typeid(T)));
    }

    // Lifecycle signals.
    Signal<Session&> resource_bound;
    Signal<Session&> session_closed;
    Signal<Session&> initial_presence;      // emitted by the presence module
    Signal<const std::string&> user_created;  // localpart
    Signal<const std::string&> user_deleted;  // localpart; emitted before data is erased
    // An account's role was set by an admin (or it was created with one): modules that keep
    // roles in memory re-read them now, not at their next poll.
    Signal<const std::string&> role_changed;  // localpart
    // SIGHUP re-read the config file (already validated). Options read at startup keep their
    // values; modules pick what they can apply at runtime from the new config.
    Signal<const config::Config&> reloaded;
    // The clock was moved (tests, [server] clock_control): schedules look again at once.
    Signal<> clock_advanced;
    // A message went to offline storage for a local user (localpart, the stanza as stored):
    // emitted by the offline module, so that others can tell the user something waits.
    Signal<const std::string&, const Element&> offline_stored;

    // Deletes an account and everything stored for it; open sessions are closed.
    void delete_user(const std::string& localpart);
    // Closes every session of the account with a stream error, except the one with id `keep`
    // (0: none). Returns how many were closed.
    std::size_t close_sessions_of(const std::string& localpart, std::string_view condition,
                                  std::string_view text, std::uint64_t keep = 0);

private:
    boost::asio::io_context& io_;
    config::Config config_;
    Logger log_;
    std::string domain_;
    Jid host_jid_;
    const ModuleRegistry& registry_;
    EventBus bus_;
    Clock clock_;
    SessionRegistry sessions_;
    Router router_;
    Texts texts_;
    std::unique_ptr<storage::SecretBox> secret_box_;
    std::unique_ptr<storage::Database> db_;
    std::unique_ptr<storage::UserStore> users_;
    std::unique_ptr<storage::RosterStore> roster_;
    std::unique_ptr<storage::OfflineStore> offline_;
    std::unique_ptr<storage::KeyValueStore> kv_;
    std::unique_ptr<Accounts> accounts_;
    auth::LoginThrottle throttle_;
    AdminCommands admin_;
    std::vector<std::string> features_;
    std::vector<std::string> account_features_;
    StreamExtensions stream_extensions_;
    std::unordered_map<std::type_index, void*> services_;
    std::set<std::string, std::less<>> service_domains_;
    boost::asio::thread_pool pool_{2};
    struct Loaded {
        std::unique_ptr<ModuleContext> context;
        std::shared_ptr<void> state;
    };
    std::vector<Loaded> modules_;
};

}  // namespace haven
