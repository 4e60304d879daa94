// UserStore: accounts, their role and SCRAM credentials (RFC 5802 / RFC 7677 stored keys).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/storage/database.hpp"

namespace haven::storage {

// What SCRAM needs to verify a client without knowing the password (RFC 5802 §3).
struct ScramRecord {
    std::string salt;
    std::uint32_t iterations = 0;
    std::string stored_key, server_key;
};

struct UserRecord {
    std::string localpart;  // already normalised (RFC 7622) by the caller
    std::string role = "member";
    std::optional<ScramRecord> sha1, sha256;  // absent: that mechanism is not offered
    std::int64_t created = 0;                 // unix seconds
};

struct UserSummary {
    std::string localpart;
    std::string role;
};

class UserStore {
public:
    explicit UserStore(Database& db) : db_(db) {}

    bool create(const UserRecord& record);  // false if the localpart is taken
    std::optional<UserRecord> get(std::string_view localpart) const;
    bool exists(std::string_view localpart) const;
    // Replaces both records; nullopt clears one (e.g. retire SCRAM-SHA-1). false: no such user.
    bool set_credentials(std::string_view localpart, const std::optional<ScramRecord>& sha1,
                         const std::optional<ScramRecord>& sha256);
    bool set_role(std::string_view localpart, std::string_view role);  // false: no such user
    std::vector<UserSummary> list() const;                             // ordered by localpart
    // Erases the account and, through ON DELETE CASCADE, every row any table keeps for it, in
    // one atomic statement. Other users' roster items pointing at this user are theirs to keep.
    bool remove(std::string_view localpart);
    std::size_t count() const;

private:
    Database& db_;
};

}  // namespace haven::storage
