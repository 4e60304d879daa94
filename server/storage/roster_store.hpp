// RosterStore: RFC 6121 roster items and subscription state, with a XEP-0237 version per user.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::storage {

struct RosterItem {
    std::string contact;  // bare JID string, normalised by the caller
    std::string name;
    std::string subscription = "none";  // none | to | from | both (RFC 6121 §2.1.2.5)
    bool ask_out = false;               // we sent subscribe, no answer yet
    bool ask_in = false;                // they sent subscribe, user not yet answered
    std::vector<std::string> groups;    // a set: returned sorted, duplicates collapse
    std::string pending_subscribe;      // inbound subscribe to re-deliver (RFC 6121 §3.1.3)
};

// At rest a row holds the owner, a keyed hash of the contact and one sealed record (schema
// "core" 2): the file alone shows how many items an account has, not who they are.
class RosterStore {
public:
    // `box` must outlive the store.
    RosterStore(Database& db, const SecretBox& box) : db_(db), box_(box) {}

    std::vector<RosterItem> get_all(std::string_view user) const;  // ordered by contact
    std::optional<RosterItem> get(std::string_view user, std::string_view contact) const;
    std::size_t count(std::string_view user) const;  // without opening the items
    // Inserts or replaces the item (groups included). Returns the new roster version.
    std::int64_t put(std::string_view user, const RosterItem& item);
    // Returns the new roster version, or 0 when there was no such item (nothing changed).
    std::int64_t remove(std::string_view user, std::string_view contact);
    // 0 until the roster first changes. Versions only grow, also across delete and re-create of
    // the account (see bump_version), so a client's cached roster is never wrongly reused.
    std::int64_t get_version(std::string_view user) const;

private:
    std::int64_t bump_version(std::string_view user);
    std::string contact_hash(std::string_view user, std::string_view contact) const;
    RosterItem open_item(std::string_view user, std::string_view contact_h,
                         std::string_view sealed) const;

    Database& db_;
    const SecretBox& box_;
};

}  // namespace haven::storage
