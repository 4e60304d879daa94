// KeyValueStore: small per-user values (vCard, private XML, block lists), optionally encrypted.
#include "server/storage/kv_store.hpp"

namespace haven::storage {

std::optional<std::string> KeyValueStore::get(std::string_view user, std::string_view store,
                                              std::string_view key) const {
    auto& st = db_.prepare_cached(
        "SELECT value, sealed FROM kv WHERE user = ?1 AND store = ?2 AND key = ?3");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store).bind(3, key);
    if (!st.step()) {
        return std::nullopt;
    }
    std::string value = st.column_blob(0);
    if (st.column_int64(1) == 0) {
        return value;
    }
    if (box_ == nullptr) {
        throw StorageError("storage: kv value in '" + std::string(store) +
                           "' is encrypted but this store has no key");
    }
    auto plain = box_->open(value);
    if (!plain) {
        throw StorageError("storage: kv value in '" + std::string(store) +
                           "' does not decrypt: wrong key file?");
    }
    return plain;
}

void KeyValueStore::put(std::string_view user, std::string_view store, std::string_view key,
                        std::string_view value) {
    const std::string sealed = box_ != nullptr ? box_->seal(value) : std::string();
    auto& st = db_.prepare_cached(
        "INSERT INTO kv(user, store, key, value, sealed) VALUES(?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT(user, store, key) DO UPDATE SET value = excluded.value,"
        " sealed = excluded.sealed");
    ScopedReset guard(st);
    st.bind(1, user)
        .bind(2, store)
        .bind(3, key)
        .bind(4, Blob{box_ != nullptr ? std::string_view(sealed) : value})
        .bind(5, std::int64_t{box_ != nullptr});
    st.step();
}

bool KeyValueStore::remove(std::string_view user, std::string_view store, std::string_view key) {
    auto& st = db_.prepare_cached("DELETE FROM kv WHERE user = ?1 AND store = ?2 AND key = ?3");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store).bind(3, key);
    st.step();
    return db_.changes() == 1;
}

std::vector<std::string> KeyValueStore::list_keys(std::string_view user,
                                                  std::string_view store) const {
    auto& st = db_.prepare_cached("SELECT key FROM kv WHERE user = ?1 AND store = ?2 ORDER BY key");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store);
    std::vector<std::string> keys;
    while (st.step()) {
        keys.push_back(st.column_text(0));
    }
    return keys;
}

std::vector<std::pair<std::string, std::size_t>> KeyValueStore::value_sizes(
    std::string_view user, std::string_view store) const {
    auto& st = db_.prepare_cached(
        "SELECT key, length(value) FROM kv WHERE user = ?1 AND store = ?2 ORDER BY key");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store);
    std::vector<std::pair<std::string, std::size_t>> out;
    while (st.step()) {
        out.emplace_back(st.column_text(0), static_cast<std::size_t>(st.column_int64(1)));
    }
    return out;
}

std::size_t KeyValueStore::remove_store(std::string_view user, std::string_view store) {
    auto& st = db_.prepare_cached("DELETE FROM kv WHERE user = ?1 AND store = ?2");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store);
    st.step();
    return static_cast<std::size_t>(db_.changes());
}

}  // namespace haven::storage
