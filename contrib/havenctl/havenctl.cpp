// havenctl: the admin CLI (accounts, roles, grants). A command that changes state goes to the
// running havend over its control socket, so it has taken effect (sessions closed, roles
// applied) when havenctl returns; with no server running, havenctl works on the database.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <sodium.h>

#include "contrib/havenctl/control_client.hpp"

#include "modules/functional_addresses/inquiry_store.hpp"
#include "modules/peersupport/grant_store.hpp"
#include "server/auth/precis.hpp"
#include "server/core/accounts.hpp"
#include "server/config/schema.hpp"
#include "server/core/server.hpp"
#include "server/storage/data_dir_lock.hpp"
#include "server/storage/database.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/secret_box.hpp"
#include "server/storage/user_store.hpp"
#include "server/xmpp/jid.hpp"

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: havenctl --config FILE COMMAND\n"
                 "  user add JID [--role member|supporter|admin] --password-stdin\n"
                 "  user passwd JID --password-stdin\n"
                 "  user delete JID\n"
                 "  user list\n"
                 "  user role JID ROLE\n"
                 "  grant list [JID]\n"
                 "  grant end SUPPORTER_JID MEMBER_JID\n");
    return 2;
}

int fail(const std::string& msg) {
    std::fprintf(stderr, "havenctl: %s\n", msg.c_str());
    return 1;
}

std::string read_password() {
    std::string line;
    std::getline(std::cin, line);
    if (!line.empty() && line.back() == '\r') {
        line.pop_back();
    }
    return line;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string config_path;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--config" && i + 1 < args.size()) {
            config_path = args[i + 1];
            args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
            break;
        }
    }
    if (config_path.empty() || args.size() < 2) {
        return usage();
    }
    if (sodium_init() < 0) {
        return fail("libsodium failed to initialise");
    }
    // The config schema only: havenctl validates the whole file but links no module code.
    haven::config::SchemaRegistry schema;
    haven::config::register_builtin_schemas(schema);
    try {
        auto config = haven::config::Config::load_file(config_path, haven::all_options(schema));
        auto domain = haven::Jid::parse(config.get_string("server", "domain"));
        if (!domain) {
            return fail("[server] domain: invalid");
        }
        auto local_of = [&](const std::string& jid) -> std::optional<std::string> {
            auto j = haven::Jid::parse(jid.find('@') == std::string::npos
                                           ? jid + "@" + domain->domain()
                                           : jid);
            if (!j || j->local().empty() || j->domain() != domain->domain()) {
                return std::nullopt;
            }
            return j->local();
        };

        const auto& group = args[0];
        const auto& cmd = args[1];
        auto has = [&](const char* flag) {
            return std::find(args.begin(), args.end(), flag) != args.end();
        };

        // The commands that change state, checked and put into the control socket's words.
        std::vector<std::string> words;
        std::string secret;
        // Kept by the running server only (its clock, the group schedule): passed on as typed,
        // "group meeting add ..." as "meeting add ...".
        bool server_only = false;
        if (group == "clock" || (group == "group" && cmd == "meeting" && args.size() >= 3)) {
            words.assign(group == "group" ? args.begin() + 1 : args.begin(), args.end());
            server_only = true;
        } else if (group == "grant" && cmd == "end" && args.size() >= 4) {
            auto s = local_of(args[2]);
            auto m = local_of(args[3]);
            if (!s || !m) {
                return fail("not JIDs of this server");
            }
            words = {"grant", "end", *s, *m};
        } else if (group == "user" && args.size() >= 3 &&
                   (cmd == "add" || cmd == "passwd" || cmd == "delete" || cmd == "role")) {
            auto local = local_of(args[2]);
            if (!local) {
                return fail("not a JID of this server: " + args[2]);
            }
            words = {"user", cmd, *local};
            if (cmd == "add" || cmd == "passwd") {
                if (!has("--password-stdin")) {
                    return fail("pass the password on standard input with --password-stdin");
                }
                if (cmd == "add") {
                    std::string role = "member";
                    if (auto it = std::find(args.begin(), args.end(), "--role");
                        it != args.end()) {
                        if (it + 1 == args.end() || !haven::valid_role(*(it + 1))) {
                            return fail("--role must be member, supporter or admin");
                        }
                        role = *(it + 1);
                    }
                    words.push_back(role);
                }
                secret = read_password();
            } else if (cmd == "role") {
                if (args.size() < 4 || !haven::valid_role(args[3])) {
                    return fail("role must be member, supporter or admin");
                }
                words.push_back(args[3]);
            }
        }
        if (!words.empty()) {
            // PBKDF2 for add/passwd runs in the server: allow it time on a loaded machine.
            auto answer = haven::ctl::ask_server(haven::control_socket_path(config), words,
                                                 secret, std::chrono::seconds(60));
            if (answer) {
                std::fill(secret.begin(), secret.end(), '\0');
                if (!answer->ok) {
                    return fail(answer->text);
                }
                std::printf("%s\n", answer->text.c_str());
                return 0;
            }
            if (server_only) {
                return fail("havend is not running; this command needs the running server");
            }
        }

        // No server runs (or the command only reads): the database directly. A change holds
        // the data directory's lock shared, so that a server cannot start halfway through it
        // (and miss it); reads need no lock (WAL readers never block the server).
        std::filesystem::path dir = config.get_string("server", "data_dir");
        std::filesystem::create_directories(dir);
        std::optional<haven::storage::DataDirLock> data_lock;
        if (!words.empty()) {
            data_lock = haven::storage::DataDirLock::try_lock(
                dir, haven::storage::DataDirLock::Mode::Shared);
            if (!data_lock) {
                return fail("havend is starting or stopping on " + dir.string() + "; try again");
            }
        }
        // The key file too: the rows that say who talks to whom are sealed (issue 11).
        auto box = haven::storage::SecretBox::load_or_create(haven::storage_key_path(config));
        auto db = haven::storage::Database::open(dir / "haven.sqlite", box);
        haven::storage::UserStore users(*db);
        haven::Accounts accounts(
            users, static_cast<std::uint32_t>(config.get_int("sasl", "scram_iterations")),
            haven::load_or_create_secret(dir / "scram.secret"));
        if (group == "grant") {
            haven::peersupport::GrantStore grants(*db, box);
            const auto& d = domain->domain();
            if (cmd == "list") {
                std::optional<std::string> who;
                if (args.size() >= 3) {
                    who = local_of(args[2]);
                    if (!who) {
                        return fail("not a JID of this server: " + args[2]);
                    }
                }
                auto list = who ? grants.list(std::string_view(*who)) : grants.list();
                for (const auto& g : list) {
                    std::printf("%s@%s -> %s@%s created=%lld last_activity=%lld\n",
                                g.supporter.c_str(), d.c_str(), g.member.c_str(), d.c_str(),
                                static_cast<long long>(g.created),
                                static_cast<long long>(g.last_activity));
                }
                return 0;
            }
            if (cmd == "end" && args.size() >= 4) {
                auto s = local_of(args[2]);
                auto m = local_of(args[3]);
                if (!s || !m) {
                    return fail("not JIDs of this server");
                }
                haven::storage::RosterStore roster(*db, box);
                if (!haven::peersupport::end_grant_records(*db, grants, roster, d, *s, *m)) {
                    return fail("no such grant");
                }
                std::printf("ended the conversation grant %s@%s -> %s@%s\n", s->c_str(),
                            d.c_str(), m->c_str(), d.c_str());
                return 0;
            }
            return usage();
        }
        if (group != "user") {
            return usage();
        }
        if (cmd == "list") {
            for (const auto& u : users.list()) {
                std::printf("%s@%s %s\n", u.localpart.c_str(), domain->domain().c_str(),
                            u.role.c_str());
            }
            return 0;
        }
        if (args.size() < 3) {
            return usage();
        }
        auto local = local_of(args[2]);
        if (!local) {
            return fail("not a JID of this server: " + args[2]);
        }
        if (cmd == "add" || cmd == "passwd") {
            const std::string role = cmd == "add" ? words.at(3) : std::string("member");
            auto password = haven::auth::prepare_password(secret);
            if (!password) {
                return fail("the password is empty or contains characters not allowed");
            }
            auto creds = accounts.derive(*password);
            if (cmd == "add") {
                if (!accounts.create(*local, creds, role)) {
                    return fail("account exists: " + args[2]);
                }
                std::printf("created %s@%s (%s)\n", local->c_str(), domain->domain().c_str(),
                            role.c_str());
            } else {
                if (!accounts.set_credentials(*local, creds)) {
                    return fail("no such account: " + args[2]);
                }
                std::printf("password changed for %s@%s\n", local->c_str(),
                            domain->domain().c_str());
            }
            return 0;
        }
        if (cmd == "delete") {
            // What the running server's modules would erase besides the cascading rows: the
            // grants on either side, the inquiries sent, the claims held (open again).
            haven::storage::Transaction tx(*db);
            haven::peersupport::GrantStore grants(*db, box);
            haven::storage::RosterStore roster(*db, box);
            haven::peersupport::end_grants_of_account(*db, grants, roster, domain->domain(),
                                                      *local);
            haven::functional_addresses::InquiryStore inquiries(*db, box);
            const std::string jid = *local + "@" + domain->domain();
            inquiries.remove_sender(jid);
            inquiries.release_claims(jid, static_cast<std::int64_t>(std::time(nullptr)));
            if (!users.remove(*local)) {
                return fail("no such account: " + args[2]);
            }
            tx.commit();
            std::printf("deleted %s@%s and all of its data\n", local->c_str(),
                        domain->domain().c_str());
            return 0;
        }
        if (cmd == "role") {
            // The admin's role now, not the config's: a later config change leaves it alone.
            haven::storage::KeyValueStore kv(*db, box);
            haven::peersupport::forget_config_role(kv, *local);
            if (!users.set_role(*local, args[3])) {
                return fail("no such account: " + args[2]);
            }
            std::printf("%s@%s is now %s\n", local->c_str(), domain->domain().c_str(),
                        args[3].c_str());
            return 0;
        }
        return usage();
    } catch (const std::exception& e) {
        return fail(e.what());
    }
}
