// GrantStore: persisted conversation grants in the module's own table.
#include "modules/peersupport/grant_store.hpp"

#include "server/storage/kv_store.hpp"

#include <array>

namespace haven::peersupport {
namespace {

// Both sides reference accounts with ON DELETE CASCADE: deleting either account erases the
// grant with everything else of that user.
constexpr std::array<std::string_view, 1> migrations{
    R"sql(CREATE TABLE peersupport_grants (
        supporter TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
        member TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
        created INTEGER NOT NULL,
        last_activity INTEGER NOT NULL,
        PRIMARY KEY (supporter, member)
    ) WITHOUT ROWID;
    CREATE INDEX peersupport_grants_member ON peersupport_grants(member);)sql",
};

Grant read(const storage::Statement& st) {
    return Grant{st.column_text(0), st.column_text(1), st.column_int64(2), st.column_int64(3)};
}

}  // namespace

GrantStore::GrantStore(storage::Database& db) : db_(db) { db_.migrate("peersupport", migrations); }

bool GrantStore::create(std::string_view supporter, std::string_view member, std::int64_t now) {
    auto& st = db_.prepare_cached(
        "INSERT OR IGNORE INTO peersupport_grants (supporter, member, created, last_activity) "
        "VALUES (?1, ?2, ?3, ?3)");
    storage::ScopedReset guard(st);
    st.bind(1, supporter).bind(2, member).bind(3, now);
    st.step();
    return db_.changes() > 0;
}

bool GrantStore::exists(std::string_view supporter, std::string_view member) const {
    auto& st = db_.prepare_cached(
        "SELECT 1 FROM peersupport_grants WHERE supporter = ?1 AND member = ?2");
    storage::ScopedReset guard(st);
    st.bind(1, supporter).bind(2, member);
    return st.step();
}

bool GrantStore::remove(std::string_view supporter, std::string_view member) {
    auto& st = db_.prepare_cached(
        "DELETE FROM peersupport_grants WHERE supporter = ?1 AND member = ?2");
    storage::ScopedReset guard(st);
    st.bind(1, supporter).bind(2, member);
    st.step();
    return db_.changes() > 0;
}

void GrantStore::touch(std::string_view supporter, std::string_view member, std::int64_t now) {
    auto& st = db_.prepare_cached(
        "UPDATE peersupport_grants SET last_activity = ?3 WHERE supporter = ?1 AND member = ?2");
    storage::ScopedReset guard(st);
    st.bind(1, supporter).bind(2, member).bind(3, now);
    st.step();
}

std::vector<Grant> GrantStore::list(std::optional<std::string_view> localpart) const {
    std::vector<Grant> out;
    if (localpart) {
        auto& st = db_.prepare_cached(
            "SELECT supporter, member, created, last_activity FROM peersupport_grants "
            "WHERE supporter = ?1 OR member = ?1 ORDER BY supporter, member");
        storage::ScopedReset guard(st);
        st.bind(1, *localpart);
        while (st.step()) {
            out.push_back(read(st));
        }
        return out;
    }
    auto& st = db_.prepare_cached(
        "SELECT supporter, member, created, last_activity FROM peersupport_grants "
        "ORDER BY supporter, member");
    storage::ScopedReset guard(st);
    while (st.step()) {
        out.push_back(read(st));
    }
    return out;
}

std::vector<Grant> GrantStore::idle_since(std::int64_t cutoff) const {
    std::vector<Grant> out;
    auto& st = db_.prepare_cached(
        "SELECT supporter, member, created, last_activity FROM peersupport_grants "
        "WHERE last_activity < ?1");
    storage::ScopedReset guard(st);
    st.bind(1, cutoff);
    while (st.step()) {
        out.push_back(read(st));
    }
    return out;
}

namespace {
std::string bare(std::string_view local, std::string_view domain) {
    std::string j(local);
    j += '@';
    j += domain;
    return j;
}
}  // namespace

bool open_grant_records(storage::Database& db, GrantStore& grants, storage::RosterStore& roster,
                        std::string_view domain, std::string_view supporter,
                        std::string_view member, const GrantRoster& names, std::int64_t now) {
    storage::Transaction tx(db);
    bool created = grants.create(supporter, member, now);
    if (!created) {
        grants.touch(supporter, member, now);
        tx.commit();
        return false;
    }
    storage::RosterItem for_member;
    for_member.contact = bare(supporter, domain);
    if (auto existing = roster.get(member, for_member.contact)) {
        for_member = *existing;
    }
    for_member.name = names.supporter_name;
    for_member.subscription = "both";
    for_member.ask_out = for_member.ask_in = false;
    for_member.pending_subscribe.clear();
    for_member.groups = {names.group};
    roster.put(member, for_member);

    storage::RosterItem for_supporter;
    for_supporter.contact = bare(member, domain);
    if (auto existing = roster.get(supporter, for_supporter.contact)) {
        for_supporter = *existing;
    }
    if (for_supporter.name.empty()) {
        for_supporter.name = names.member_name;
    }
    for_supporter.subscription = "both";
    for_supporter.ask_out = for_supporter.ask_in = false;
    for_supporter.pending_subscribe.clear();
    if (for_supporter.groups.empty()) {
        for_supporter.groups = {names.group};
    }
    roster.put(supporter, for_supporter);
    tx.commit();
    return true;
}

bool end_grant_records(storage::Database& db, GrantStore& grants, storage::RosterStore& roster,
                       std::string_view domain, std::string_view supporter,
                       std::string_view member) {
    storage::Transaction tx(db);
    if (!grants.remove(supporter, member)) {
        return false;
    }
    roster.remove(member, bare(supporter, domain));
    roster.remove(supporter, bare(member, domain));
    tx.commit();
    return true;
}

void forget_config_role(storage::Database& db, std::string_view localpart) {
    storage::KeyValueStore(db).remove(localpart, config_role_store, config_role_key);
}

}  // namespace haven::peersupport
