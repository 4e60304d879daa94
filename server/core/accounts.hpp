// Accounts: credentials and roles of local users, bridging SASL records and the user store.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/auth/credentials.hpp"
#include "server/storage/user_store.hpp"

namespace haven {

inline constexpr std::string_view roles[] = {"member", "supporter", "admin"};
bool valid_role(std::string_view role);

class Accounts {
public:
    Accounts(storage::UserStore& users, std::uint32_t iterations, std::string fake_salt_secret)
        : users_(users), iterations_(iterations), fake_salt_secret_(std::move(fake_salt_secret)) {}

    std::optional<auth::ScramCredential> scram(std::string_view localpart, auth::HashAlg alg) const;
    bool exists(std::string_view localpart) const { return users_.exists(localpart); }
    // "member" for unknown accounts too: callers that care check exists() first.
    std::string role(std::string_view localpart) const;

    // PBKDF2 runs here: call off the event loop (Server::offload) or from the admin CLI.
    auth::CredentialSet derive(std::string_view password) const;
    bool create(std::string_view localpart, const auth::CredentialSet& creds,
                std::string_view role = "member");
    bool set_credentials(std::string_view localpart, const auth::CredentialSet& creds);

    std::uint32_t iterations() const { return iterations_; }
    const std::string& fake_salt_secret() const { return fake_salt_secret_; }
    storage::UserStore& store() { return users_; }

private:
    storage::UserStore& users_;
    std::uint32_t iterations_;
    std::string fake_salt_secret_;
};

// The secret for SCRAM fake salts (unknown users look like real ones), kept in the data
// directory so the fake salt of a name stays the same across restarts.
std::string load_or_create_secret(const std::filesystem::path& file);

}  // namespace haven
