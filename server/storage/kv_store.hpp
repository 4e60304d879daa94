// KeyValueStore: small per-user values (vCard, private XML, block lists), optionally encrypted.
#pragma once

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
// in their own module's tables. Each row records whether it was sealed, so a store can switch
// encryption on later and old plaintext rows stay readable (and get sealed on their next put).
class KeyValueStore {
public:
    // With `box` (which must outlive the store), values are written encrypted. Use it for
    // personal data such as vCards.
    explicit KeyValueStore(Database& db, const SecretBox* box = nullptr) : db_(db), box_(box) {}

    // Throws StorageError for a sealed value this store cannot open (no or wrong key).
    std::optional<std::string> get(std::string_view user, std::string_view store,
                                   std::string_view key) const;
    void put(std::string_view user, std::string_view store, std::string_view key,
             std::string_view value);
    bool remove(std::string_view user, std::string_view store, std::string_view key);
    std::vector<std::string> list_keys(std::string_view user, std::string_view store) const;
    // Key and stored size (bytes, as written: sealed values include the seal) of each value,
    // for byte quotas.
    std::vector<std::pair<std::string, std::size_t>> value_sizes(std::string_view user,
                                                                 std::string_view store) const;
    std::size_t remove_store(std::string_view user, std::string_view store);

private:
    Database& db_;
    const SecretBox* box_;
};

}  // namespace haven::storage
