// UserStore: accounts, their role and SCRAM credentials (RFC 5802 / RFC 7677 stored keys).
#include "server/storage/user_store.hpp"

namespace haven::storage {
namespace {

// Binds salt, iterations, stored key, server key at first..first+3 (NULLs when absent).
void bind_scram(Statement& st, int first, const std::optional<ScramRecord>& scram) {
    if (!scram) {
        for (int i = 0; i < 4; ++i) {
            st.bind_null(first + i);
        }
        return;
    }
    st.bind(first, Blob{scram->salt})
        .bind(first + 1, static_cast<std::int64_t>(scram->iterations))
        .bind(first + 2, Blob{scram->stored_key})
        .bind(first + 3, Blob{scram->server_key});
}

std::optional<ScramRecord> read_scram(const Statement& st, int first) {
    if (st.column_is_null(first)) {
        return std::nullopt;
    }
    return ScramRecord{st.column_blob(first),
                       static_cast<std::uint32_t>(st.column_int64(first + 1)),
                       st.column_blob(first + 2), st.column_blob(first + 3)};
}

}  // namespace

bool UserStore::create(const UserRecord& record) {
    auto& st = db_.prepare_cached(
        "INSERT INTO accounts(localpart, role, sha1_salt, sha1_iter, sha1_stored, sha1_server,"
        " sha256_salt, sha256_iter, sha256_stored, sha256_server, created)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        " ON CONFLICT(localpart) DO NOTHING");
    ScopedReset guard(st);
    st.bind(1, record.localpart).bind(2, record.role.empty() ? "member" : record.role);
    bind_scram(st, 3, record.sha1);
    bind_scram(st, 7, record.sha256);
    st.bind(11, record.created);
    st.step();
    return db_.changes() == 1;
}

std::optional<UserRecord> UserStore::get(std::string_view localpart) const {
    auto& st = db_.prepare_cached(
        "SELECT localpart, role, sha1_salt, sha1_iter, sha1_stored, sha1_server,"
        " sha256_salt, sha256_iter, sha256_stored, sha256_server, created"
        " FROM accounts WHERE localpart = ?1");
    ScopedReset guard(st);
    st.bind(1, localpart);
    if (!st.step()) {
        return std::nullopt;
    }
    return UserRecord{st.column_text(0), st.column_text(1), read_scram(st, 2), read_scram(st, 6),
                      st.column_int64(10)};
}

bool UserStore::exists(std::string_view localpart) const {
    auto& st = db_.prepare_cached("SELECT 1 FROM accounts WHERE localpart = ?1");
    ScopedReset guard(st);
    st.bind(1, localpart);
    return st.step();
}

bool UserStore::set_credentials(std::string_view localpart, const std::optional<ScramRecord>& sha1,
                                const std::optional<ScramRecord>& sha256) {
    auto& st = db_.prepare_cached(
        "UPDATE accounts SET sha1_salt = ?2, sha1_iter = ?3, sha1_stored = ?4, sha1_server = ?5,"
        " sha256_salt = ?6, sha256_iter = ?7, sha256_stored = ?8, sha256_server = ?9"
        " WHERE localpart = ?1");
    ScopedReset guard(st);
    st.bind(1, localpart);
    bind_scram(st, 2, sha1);
    bind_scram(st, 6, sha256);
    st.step();
    return db_.changes() == 1;
}

bool UserStore::set_role(std::string_view localpart, std::string_view role) {
    auto& st = db_.prepare_cached("UPDATE accounts SET role = ?2 WHERE localpart = ?1");
    ScopedReset guard(st);
    st.bind(1, localpart).bind(2, role);
    st.step();
    return db_.changes() == 1;
}

std::vector<UserSummary> UserStore::list() const {
    auto& st = db_.prepare_cached("SELECT localpart, role FROM accounts ORDER BY localpart");
    ScopedReset guard(st);
    std::vector<UserSummary> out;
    while (st.step()) {
        out.push_back({st.column_text(0), st.column_text(1)});
    }
    return out;
}

bool UserStore::remove(std::string_view localpart) {
    auto& st = db_.prepare_cached("DELETE FROM accounts WHERE localpart = ?1");
    ScopedReset guard(st);
    st.bind(1, localpart);
    st.step();
    // changes() counts only the accounts row, not the cascaded ones.
    return db_.changes() == 1;
}

std::size_t UserStore::count() const {
    auto& st = db_.prepare_cached("SELECT count(*) FROM accounts");
    ScopedReset guard(st);
    st.step();
    return static_cast<std::size_t>(st.column_int64(0));
}

}  // namespace haven::storage
