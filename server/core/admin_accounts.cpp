// The account commands of the control socket: havenctl's "user add/passwd/delete/role" done by
// the running server, so each takes effect before havenctl returns (sessions closed, roles
// re-read by the modules that care) instead of whenever the server next looks at the database.
#include <memory>
#include <optional>

#include <sodium.h>

#include "server/auth/precis.hpp"
#include "server/core/admin_commands.hpp"
#include "server/core/server.hpp"
#include "server/storage/error.hpp"
#include "server/storage/user_store.hpp"
#include "server/xmpp/jid.hpp"

namespace haven {

namespace {

// The localpart as the rest of the server stores it (havenctl sends what the admin typed).
std::optional<std::string> account_name(const Server& server, const std::string& word) {
    auto j = Jid::make(word, server.domain(), "");
    if (!j || j->local().empty()) {
        return std::nullopt;
    }
    return j->local();
}

AdminReply no_account(const std::string& word) { return {false, "no such account: " + word}; }

// PBKDF2 off the loop, then `then(credentials)` back on it; a password that PRECIS refuses or
// a failed derivation answers at once.
void with_credentials(Server& server, const std::string& secret, const AdminDone& done,
                      std::function<void(const auth::CredentialSet&)> then) {
    auto password = auth::prepare_password(secret);
    if (!password) {
        done({false, "the password is empty or contains characters not allowed"});
        return;
    }
    auto creds = std::make_shared<std::optional<auth::CredentialSet>>();
    auto pw = std::make_shared<std::string>(std::move(*password));
    sodium_memzero(password->data(), password->size());
    server.offload(
        [creds, pw, &accounts = server.accounts()] {
            *creds = accounts.derive(*pw);
            sodium_memzero(pw->data(), pw->size());
        },
        [&server, creds, done, then = std::move(then)] {
            if (!*creds) {
                done({false, "the password could not be hashed; see the server log"});
                return;
            }
            // Back on the loop but outside the router's guard: nothing may escape to io.run(),
            // and havenctl must hear how it ended (a locked database is worth a retry).
            try {
                then(**creds);
            } catch (const storage::StorageError& e) {
                server.log().warn("control: storing the account failed: ", e.what());
                done({false, e.busy() ? "the database is locked by another process; try again"
                                      : "the server could not store this; see its log"});
            } catch (const std::exception& e) {
                server.log().error("control: account command failed: ", e.what());
                done({false, "the server could not do this; see its log"});
            }
        });
}

}  // namespace

void register_account_commands(Server& server) {
    auto& admin = server.admin();
    const std::string& domain = server.domain();

    admin.add("user add", 2, [&server, &domain](const AdminRequest& r, const AdminDone& done) {
        auto local = account_name(server, r.words[2]);
        if (!local) {
            done({false, "not a valid account name: " + r.words[2]});
            return;
        }
        const std::string role = r.words[3];
        if (!valid_role(role)) {
            done({false, "role must be member, supporter or admin"});
            return;
        }
        with_credentials(server, r.secret, done,
                         [&server, &domain, local = *local, role,
                          done](const auth::CredentialSet& creds) {
                             if (!server.accounts().create(local, creds, role)) {
                                 done({false, "account exists: " + local + "@" + domain});
                                 return;
                             }
                             server.user_created.emit(local);
                             server.role_changed.emit(local);
                             done({true, "created " + local + "@" + domain + " (" + role + ")"});
                         });
    });

    admin.add("user passwd", 1, [&server, &domain](const AdminRequest& r, const AdminDone& done) {
        auto local = account_name(server, r.words[2]);
        if (!local || !server.user_exists(*local)) {
            done(no_account(r.words[2]));
            return;
        }
        with_credentials(server, r.secret, done,
                         [&server, &domain, local = *local, done](const auth::CredentialSet& c) {
                             if (!server.accounts().set_credentials(local, c)) {
                                 done({false, "no such account: " + local + "@" + domain});
                                 return;
                             }
                             // As for a compromised account: whoever logged in with the old
                             // password is out now (RFC 6120 §4.9.3.16 <reset/>).
                             auto n = server.close_sessions_of(local, "reset", "password changed");
                             done({true, "password changed for " + local + "@" + domain + "; " +
                                             std::to_string(n) + " session(s) closed"});
                         });
    });

    admin.add("user delete", 1, [&server, &domain](const AdminRequest& r, const AdminDone& done) {
        auto local = account_name(server, r.words[2]);
        if (!local || !server.user_exists(*local)) {
            done(no_account(r.words[2]));
            return;
        }
        server.delete_user(*local);  // closes its sessions (not-authorized) first
        done({true, "deleted " + *local + "@" + domain + " and all of its data"});
    });

    admin.add("user role", 2, [&server, &domain](const AdminRequest& r, const AdminDone& done) {
        auto local = account_name(server, r.words[2]);
        if (!local) {
            done(no_account(r.words[2]));
            return;
        }
        const std::string& role = r.words[3];
        if (!valid_role(role)) {
            done({false, "role must be member, supporter or admin"});
            return;
        }
        if (!server.users().set_role(*local, role)) {
            done(no_account(r.words[2]));
            return;
        }
        server.role_changed.emit(*local);
        done({true, *local + "@" + domain + " is now " + role});
    });
}

}  // namespace haven
