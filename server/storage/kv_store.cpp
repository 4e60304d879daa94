// KeyValueStore: small per-user values (vCard, private XML, block lists), sealed at rest.
#include "server/storage/kv_store.hpp"

namespace haven::storage {

std::string KeyValueStore::key_hash(std::string_view user, std::string_view store,
                                    std::string_view key) const {
    return box_.lookup(pack({"kv", user, store, key}));
}

std::optional<std::pair<std::string, std::string>> KeyValueStore::open_row(
    std::string_view user, std::string_view store, std::string_view key_h,
    std::string_view sealed) const {
    auto record = box_.open(sealed, pack({"kv", user, store, key_h}));
    auto parts = record ? unpack(*record) : std::nullopt;
    if (!parts || parts->size() != 2) {
        throw StorageError("storage: kv value in '" + std::string(store) +
                           "' does not decrypt: wrong key file?");
    }
    return std::pair{std::move((*parts)[0]), std::move((*parts)[1])};
}

std::optional<std::string> KeyValueStore::get(std::string_view user, std::string_view store,
                                              std::string_view key) const {
    const std::string h = key_hash(user, store, key);
    auto& st = db_.prepare_cached(
        "SELECT value FROM kv WHERE user = ?1 AND store = ?2 AND key_h = ?3");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store).bind(3, Blob{h});
    if (!st.step()) {
        return std::nullopt;
    }
    return std::move(open_row(user, store, h, st.column_blob(0))->second);
}

void KeyValueStore::put(std::string_view user, std::string_view store, std::string_view key,
                        std::string_view value) {
    const std::string h = key_hash(user, store, key);
    const std::string sealed = box_.seal(pack({key, value}), pack({"kv", user, store, h}));
    auto& st = db_.prepare_cached(
        "INSERT INTO kv(user, store, key_h, value) VALUES(?1, ?2, ?3, ?4)"
        " ON CONFLICT(user, store, key_h) DO UPDATE SET value = excluded.value");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store).bind(3, Blob{h}).bind(4, Blob{sealed});
    st.step();
}

bool KeyValueStore::remove(std::string_view user, std::string_view store, std::string_view key) {
    auto& st =
        db_.prepare_cached("DELETE FROM kv WHERE user = ?1 AND store = ?2 AND key_h = ?3");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store).bind(3, Blob{key_hash(user, store, key)});
    st.step();
    return db_.changes() == 1;
}

std::vector<std::pair<std::string, std::size_t>> KeyValueStore::value_sizes(
    std::string_view user, std::string_view store) const {
    auto& st = db_.prepare_cached("SELECT key_h, value FROM kv WHERE user = ?1 AND store = ?2");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store);
    std::vector<std::pair<std::string, std::size_t>> out;
    while (st.step()) {
        const std::string sealed = st.column_blob(1);
        out.emplace_back(std::move(open_row(user, store, st.column_blob(0), sealed)->first),
                         sealed.size());
    }
    // Keys are only known once opened: sort here, as the callers expect.
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> KeyValueStore::list_keys(std::string_view user,
                                                  std::string_view store) const {
    std::vector<std::string> keys;
    for (auto& [key, size] : value_sizes(user, store)) {
        keys.push_back(std::move(key));
    }
    return keys;
}

std::size_t KeyValueStore::count(std::string_view user, std::string_view store) const {
    auto& st = db_.prepare_cached("SELECT count(*) FROM kv WHERE user = ?1 AND store = ?2");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store);
    st.step();
    return static_cast<std::size_t>(st.column_int64(0));
}

std::size_t KeyValueStore::remove_store(std::string_view user, std::string_view store) {
    auto& st = db_.prepare_cached("DELETE FROM kv WHERE user = ?1 AND store = ?2");
    ScopedReset guard(st);
    st.bind(1, user).bind(2, store);
    st.step();
    return static_cast<std::size_t>(db_.changes());
}

}  // namespace haven::storage
