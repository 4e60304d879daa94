// KeyValueStore: small per-user values (vCard, private XML, block lists), sealed at rest.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::storage {

// Rows exist only for accounts (FK with cascade): entities without an account keep their data
// in their own module's tables. A row holds the owner, the store name, a keyed hash of the key
// and the sealed (key, value): keys are often JIDs (subscription markers), so they are personal
// data too (schema "core" 2).
class KeyValueStore {
public:
    // `box` must outlive the store.
    KeyValueStore(Database& db, const SecretBox& box) : db_(db), box_(box) {}

    // Throws StorageError for a sealed value this store cannot open (no or wrong key).
    std::optional<std::string> get(std::string_view user, std::string_view store,
                                   std::string_view key) const;
    void put(std::string_view user, std::string_view store, std::string_view key,
             std::string_view value);
    bool remove(std::string_view user, std::string_view store, std::string_view key);
    // Opens every value of the store: for the small stores that need their keys listed.
    std::vector<std::string> list_keys(std::string_view user, std::string_view store) const;
    std::size_t count(std::string_view user, std::string_view store) const;
    // Key and stored size (bytes, as written: sealed values include the seal) of each value,
    // for byte quotas.
    std::vector<std::pair<std::string, std::size_t>> value_sizes(std::string_view user,
                                                                 std::string_view store) const;
    std::size_t remove_store(std::string_view user, std::string_view store);

private:
    std::string key_hash(std::string_view user, std::string_view store,
                         std::string_view key) const;
    // (key, value); throws StorageError when the row does not open with this key for this row.
    std::optional<std::pair<std::string, std::string>> open_row(std::string_view user,
                                                                std::string_view store,
                                                                std::string_view key_h,
                                                                std::string_view sealed) const;

    Database& db_;
    const SecretBox& box_;
};

}  // namespace haven::storage
