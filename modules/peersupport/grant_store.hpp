// GrantStore: persisted conversation grants (supporter S may be answered by member M).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/storage/database.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::peersupport {

struct Grant {
    std::string supporter;  // localpart
    std::string member;     // localpart
    std::int64_t created = 0;        // unix seconds
    std::int64_t last_activity = 0;  // unix seconds, for optional expiry
};

// At rest a grant is a keyed hash of (supporter, member), the sealed pair and its two times:
// the database alone shows how many grants exist and when they were used, not between whom.
class GrantStore {
public:
    // Applies the module's own migrations ("peersupport" component); `box` must outlive it.
    GrantStore(storage::Database& db, const storage::SecretBox& box);

    // True when the grant is new.
    bool create(std::string_view supporter, std::string_view member, std::int64_t now);
    bool exists(std::string_view supporter, std::string_view member) const;
    bool remove(std::string_view supporter, std::string_view member);
    void touch(std::string_view supporter, std::string_view member, std::int64_t now);
    // All grants, or those in which `localpart` takes part (either side).
    std::vector<Grant> list(std::optional<std::string_view> localpart = std::nullopt) const;
    std::vector<Grant> idle_since(std::int64_t cutoff) const;

private:
    std::string pair_hash(std::string_view supporter, std::string_view member) const;
    Grant read(const storage::Statement& st) const;
    void seal_v1_rows();

    storage::Database& db_;
    const storage::SecretBox& box_;
};

// The stored side of opening/ending a grant, shared by the module and havenctl: the grant row
// and the roster items on both sides (mutual subscription, RFC 6121 state "both"), in one
// transaction. Returns true when something changed.
struct GrantRoster {
    std::string group;           // roster group for both items, e.g. "Peer support"
    std::string supporter_name;  // how the member's roster shows the supporter
    std::string member_name;     // how the supporter's roster shows the member
};
bool open_grant_records(storage::Database& db, GrantStore& grants, storage::RosterStore& roster,
                        std::string_view domain, std::string_view supporter,
                        std::string_view member, const GrantRoster& names, std::int64_t now);
bool end_grant_records(storage::Database& db, GrantStore& grants, storage::RosterStore& roster,
                       std::string_view domain, std::string_view supporter,
                       std::string_view member);
// Account deletion: every grant on either side is ended as above, since each grant also put an
// item into the other account's roster (and no foreign key can reach the sealed pair).
// Returns the grants that were ended.
std::vector<Grant> end_grants_of_account(storage::Database& db, GrantStore& grants,
                                         storage::RosterStore& roster, std::string_view domain,
                                         std::string_view localpart);

// Whether an account's staff role came from [peersupport] supporters/admins: a marker in the
// account's own key-value store (erased with the account). The module sets it when it applies
// the config and demotes a marked account the config no longer lists, also at startup; a role
// set by an admin (havenctl, with or without a running server) clears it.
inline constexpr std::string_view config_role_store = "peersupport";
inline constexpr std::string_view config_role_key = "config-role";
void forget_config_role(storage::KeyValueStore& kv, std::string_view localpart);

}  // namespace haven::peersupport
