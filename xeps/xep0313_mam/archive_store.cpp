// ArchiveStore: the archive table (see archive_store.hpp).
#include "xeps/xep0313_mam/archive_store.hpp"

#include <algorithm>
#include <array>
#include <functional>

#include "server/storage/error.hpp"

namespace haven::xeps::mam {
namespace {

constexpr std::string_view step1 =
    R"sql(CREATE TABLE mam_archive (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- archive order
        user TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
        id TEXT NOT NULL,                       -- XEP-0359 stanza-id (random)
        stamp INTEGER NOT NULL,                 -- unix seconds: filters and retention
        with_bare BLOB NOT NULL,                -- lookup(pack("mam_with", user, bare JID))
        with_full BLOB NOT NULL,                -- lookup(pack("mam_with", user, full JID))
        payload BLOB NOT NULL                   -- sealed to (user, id)
    );
    CREATE UNIQUE INDEX mam_archive_id ON mam_archive(user, id);
    CREATE INDEX mam_archive_with ON mam_archive(user, with_bare, seq);
    CREATE INDEX mam_archive_stamp ON mam_archive(stamp);)sql";

std::string payload_row(std::string_view user, std::string_view id) {
    return storage::pack({"mam_archive", user, id});
}

}  // namespace

ArchiveStore::ArchiveStore(storage::Database& db, const storage::SecretBox& box)
    : db_(db), box_(box) {
    const std::array<storage::Migration, 1> steps{storage::Migration{step1}};
    db_.migrate("mam", steps);
}

std::string ArchiveStore::with_hash(const std::string& user, const std::string& jid) const {
    return box_.lookup(storage::pack({"mam_with", user, jid}));
}

void ArchiveStore::add(const std::string& user, const std::string& id, std::int64_t stamp,
                       const std::string& with_bare, const std::string& with_full,
                       const std::string& payload) {
    auto& st = db_.prepare_cached(
        "INSERT INTO mam_archive (user, id, stamp, with_bare, with_full, payload) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    storage::ScopedReset guard(st);
    const auto bare_h = with_hash(user, with_bare);
    const auto full_h = with_hash(user, with_full);
    const auto sealed = box_.seal(payload, payload_row(user, id));
    st.bind(1, std::string_view(user))
        .bind(2, std::string_view(id))
        .bind(3, stamp)
        .bind(4, storage::Blob{bare_h})
        .bind(5, storage::Blob{full_h})
        .bind(6, storage::Blob{sealed});
    st.step();
}

std::optional<std::int64_t> ArchiveStore::seq_of(const std::string& user,
                                                 const std::string& id) const {
    auto& st = db_.prepare_cached("SELECT seq FROM mam_archive WHERE user = ?1 AND id = ?2");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(user)).bind(2, std::string_view(id));
    if (!st.step()) {
        return std::nullopt;
    }
    return st.column_int64(0);
}

std::optional<ArchivePage> ArchiveStore::query(const std::string& user,
                                               const ArchiveQuery& q) const {
    // The statement is built from a fixed set of clauses (never from input), so each shape
    // is prepared once and cached; values are always bound.
    std::string sql = "SELECT seq, id, stamp, payload FROM mam_archive WHERE user = ?1";
    std::vector<std::function<void(storage::Statement&, int)>> binds;
    auto clause = [&](std::string_view text, std::function<void(storage::Statement&, int)> b) {
        sql += " AND ";
        sql += text;
        sql += std::to_string(binds.size() + 2);
        binds.push_back(std::move(b));
    };
    if (!q.with.empty()) {
        clause(q.with_full ? "with_full = ?" : "with_bare = ?",
               [h = with_hash(user, q.with)](storage::Statement& st, int i) {
                   st.bind(i, storage::Blob{h});
               });
    }
    if (q.start) {
        clause("stamp >= ?", [v = *q.start](storage::Statement& st, int i) { st.bind(i, v); });
    }
    if (q.end) {
        clause("stamp <= ?", [v = *q.end](storage::Statement& st, int i) { st.bind(i, v); });
    }
    auto bound = [&](const std::optional<std::string>& id, std::string_view op) -> bool {
        if (!id) {
            return true;
        }
        auto seq = seq_of(user, *id);
        if (!seq) {
            return false;
        }
        clause(op, [v = *seq](storage::Statement& st, int i) { st.bind(i, v); });
        return true;
    };
    if (!bound(q.after_id, "seq > ?") || !bound(q.before_id, "seq < ?") ||
        !bound(q.rsm_after, "seq > ?") ||
        !bound(q.rsm_before && !q.rsm_before->empty() ? q.rsm_before : std::nullopt, "seq < ?")) {
        return std::nullopt;
    }
    if (!q.ids.empty()) {
        sql += " AND id IN (";
        for (std::size_t i = 0; i < q.ids.size(); ++i) {
            sql += (i ? ", ?" : "?") + std::to_string(binds.size() + 2);
            binds.push_back([&id = q.ids[i]](storage::Statement& st, int n) {
                st.bind(n, std::string_view(id));
            });
        }
        sql += ")";
    }
    const bool backwards = q.rsm_before.has_value();
    sql += backwards ? " ORDER BY seq DESC" : " ORDER BY seq ASC";
    sql += " LIMIT " + std::to_string(q.max + 1);  // one more: is there anything beyond?

    auto& st = db_.prepare_cached(sql);
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(user));
    for (std::size_t i = 0; i < binds.size(); ++i) {
        binds[i](st, static_cast<int>(i + 2));
    }
    ArchivePage page;
    bool more = false;
    while (st.step()) {
        if (page.items.size() == q.max) {
            more = true;  // the extra row: the page is not the last in this direction
            break;
        }
        ArchivedMessage m;
        m.id = st.column_text(1);
        m.stamp = st.column_int64(2);
        auto plain = box_.open(st.column_blob(3), payload_row(user, m.id));
        if (!plain) {
            throw storage::StorageError("mam: an archived message does not decrypt: wrong key?");
        }
        m.payload = std::move(*plain);
        page.items.push_back(std::move(m));
    }
    page.complete = !more;
    if (backwards) {
        std::reverse(page.items.begin(), page.items.end());
    }
    return page;
}

std::size_t ArchiveStore::remove_older_than(std::int64_t stamp) {
    auto& st = db_.prepare_cached("DELETE FROM mam_archive WHERE stamp < ?1");
    storage::ScopedReset guard(st);
    st.bind(1, stamp);
    st.step();
    return static_cast<std::size_t>(db_.changes());
}

std::size_t ArchiveStore::count(const std::string& user) const {
    auto& st = db_.prepare_cached("SELECT COUNT(*) FROM mam_archive WHERE user = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(user));
    st.step();
    return static_cast<std::size_t>(st.column_int64(0));
}

}  // namespace haven::xeps::mam
