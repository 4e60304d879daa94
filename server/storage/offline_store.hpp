// OfflineStore: XEP-0160 messages held for offline users, encrypted at rest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::storage {

struct OfflineMessage {
    std::int64_t id = 0;     // unique, never reused (usable as a XEP-0013 node)
    std::int64_t stamp = 0;  // unix seconds, for the XEP-0203 delay
    std::string payload;     // the serialised stanza, decrypted
};

class OfflineStore {
public:
    // `box` must outlive the store.
    OfflineStore(Database& db, const SecretBox& box) : db_(db), box_(box) {}

    // Stores nothing and returns false when the user already holds `quota` messages or has no
    // account (e.g. deleted meanwhile); the caller then bounces the message.
    bool push(std::string_view user, std::int64_t stamp, std::string_view payload,
              std::size_t quota);
    // Oldest first. Throws StorageError if a payload does not decrypt (wrong key file).
    std::vector<OfflineMessage> list(std::string_view user) const;
    // Ids of other users are ignored. Returns how many were removed.
    std::size_t remove(std::string_view user, std::span<const std::int64_t> ids);
    std::size_t count(std::string_view user) const;
    // Retention: drops every message older than `stamp`, for all users. Returns the count.
    std::size_t remove_older_than(std::int64_t stamp);

private:
    Database& db_;
    const SecretBox& box_;
};

}  // namespace haven::storage
