// OfflineStore: XEP-0160 messages held for offline users, encrypted at rest.
#include "server/storage/offline_store.hpp"

#include <limits>

namespace haven::storage {

bool OfflineStore::push(std::string_view user, std::int64_t stamp, std::string_view payload,
                        std::size_t quota) {
    const std::string sealed = box_.seal(payload);
    // Quota check and insert in one statement: atomic without a transaction, even with the
    // admin CLI writing concurrently.
    auto& st = db_.prepare_cached(
        "INSERT INTO offline(user, stamp, payload) SELECT ?1, ?2, ?3"
        " WHERE EXISTS(SELECT 1 FROM accounts WHERE localpart = ?1)"
        " AND (SELECT count(*) FROM offline WHERE user = ?1) < ?4");
    ScopedReset guard(st);
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    st.bind(1, user)
        .bind(2, stamp)
        .bind(3, Blob{sealed})
        .bind(4, static_cast<std::int64_t>(quota < max ? quota : max));
    st.step();
    return db_.changes() == 1;
}

std::vector<OfflineMessage> OfflineStore::list(std::string_view user) const {
    auto& st =
        db_.prepare_cached("SELECT id, stamp, payload FROM offline WHERE user = ?1 ORDER BY id");
    ScopedReset guard(st);
    st.bind(1, user);
    std::vector<OfflineMessage> out;
    while (st.step()) {
        auto payload = box_.open(st.column_blob(2));
        if (!payload) {
            // Not skipped: silently losing messages would hide a misconfigured key file.
            throw StorageError("storage: offline message " + std::to_string(st.column_int64(0)) +
                               " does not decrypt: wrong key file?");
        }
        out.push_back({st.column_int64(0), st.column_int64(1), std::move(*payload)});
    }
    return out;
}

std::size_t OfflineStore::remove(std::string_view user, std::span<const std::int64_t> ids) {
    Transaction tx(db_);  // one commit (one fsync at checkpoint) for the whole batch
    auto& st = db_.prepare_cached("DELETE FROM offline WHERE id = ?1 AND user = ?2");
    std::size_t removed = 0;
    for (const std::int64_t id : ids) {
        ScopedReset guard(st);
        st.bind(1, id).bind(2, user);
        st.step();
        removed += static_cast<std::size_t>(db_.changes());
    }
    tx.commit();
    return removed;
}

std::size_t OfflineStore::count(std::string_view user) const {
    auto& st = db_.prepare_cached("SELECT count(*) FROM offline WHERE user = ?1");
    ScopedReset guard(st);
    st.bind(1, user);
    st.step();
    return static_cast<std::size_t>(st.column_int64(0));
}

std::size_t OfflineStore::remove_older_than(std::int64_t stamp) {
    auto& st = db_.prepare_cached("DELETE FROM offline WHERE stamp < ?1");
    ScopedReset guard(st);
    st.bind(1, stamp);
    st.step();
    return static_cast<std::size_t>(db_.changes());
}

}  // namespace haven::storage
