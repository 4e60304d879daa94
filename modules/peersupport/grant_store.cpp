// GrantStore: persisted conversation grants in the module's own table.
#include "modules/peersupport/grant_store.hpp"

#include <algorithm>
#include <array>
#include <tuple>

#include "server/storage/kv_store.hpp"

namespace haven::peersupport {
namespace {

// Step 1 had both sides in the clear, each referencing accounts ON DELETE CASCADE. Step 2
// (issue 11, privacy at rest): a grant is a keyed hash of the pair plus the sealed pair, so
// the file alone does not say who supports whom. Without the foreign keys, the module (and
// havenctl) erase an account's grants themselves: remove_account().
constexpr std::string_view step1 =
    R"sql(CREATE TABLE peersupport_grants (
        supporter TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
        member TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
        created INTEGER NOT NULL,
        last_activity INTEGER NOT NULL,
        PRIMARY KEY (supporter, member)
    ) WITHOUT ROWID;
    CREATE INDEX peersupport_grants_member ON peersupport_grants(member);)sql";

constexpr std::string_view step2 =
    R"sql(ALTER TABLE peersupport_grants RENAME TO peersupport_grants_v1;
    -- pair_h = lookup(pack("grant", supporter, member)); parties = sealed pack(supporter,
    -- member), bound to pair_h. The times stay readable: expiry selects on them.
    CREATE TABLE peersupport_grants (
        pair_h BLOB PRIMARY KEY NOT NULL,
        parties BLOB NOT NULL,
        created INTEGER NOT NULL,
        last_activity INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX peersupport_grants_activity ON peersupport_grants(last_activity);)sql";

constexpr std::string_view columns = "pair_h, parties, created, last_activity";

}  // namespace

GrantStore::GrantStore(storage::Database& db, const storage::SecretBox& box)
    : db_(db), box_(box) {
    const std::array<storage::Migration, 2> steps{
        storage::Migration{step1}, storage::Migration{step2, [this](storage::Database&) {
                                       seal_v1_rows();
                                   }}};
    db_.migrate("peersupport", steps);
}

void GrantStore::seal_v1_rows() {
    auto& st = db_.prepare_cached(
        "SELECT supporter, member, created, last_activity FROM peersupport_grants_v1");
    {
        storage::ScopedReset guard(st);
        while (st.step()) {
            const auto supporter = st.column_text(0);
            const auto member = st.column_text(1);
            create(supporter, member, st.column_int64(2));
            touch(supporter, member, st.column_int64(3));
        }
    }
    db_.exec("DROP TABLE peersupport_grants_v1");
}

std::string GrantStore::pair_hash(std::string_view supporter, std::string_view member) const {
    return box_.lookup(storage::pack({"grant", supporter, member}));
}

Grant GrantStore::read(const storage::Statement& st) const {
    const std::string h = st.column_blob(0);
    auto record = box_.open(st.column_blob(1), storage::pack({"grant", h}));
    auto parts = record ? storage::unpack(*record) : std::nullopt;
    if (!parts || parts->size() != 2) {
        throw storage::StorageError("peersupport: a grant does not decrypt: wrong key file?");
    }
    return Grant{std::move((*parts)[0]), std::move((*parts)[1]), st.column_int64(2),
                 st.column_int64(3)};
}

bool GrantStore::create(std::string_view supporter, std::string_view member, std::int64_t now) {
    const std::string h = pair_hash(supporter, member);
    auto& st = db_.prepare_cached(
        "INSERT OR IGNORE INTO peersupport_grants (pair_h, parties, created, last_activity) "
        "VALUES (?1, ?2, ?3, ?3)");
    storage::ScopedReset guard(st);
    st.bind(1, storage::Blob{h})
        .bind(2, storage::Blob{box_.seal(storage::pack({supporter, member}),
                                         storage::pack({"grant", h}))})
        .bind(3, now);
    st.step();
    return db_.changes() > 0;
}

bool GrantStore::exists(std::string_view supporter, std::string_view member) const {
    auto& st = db_.prepare_cached("SELECT 1 FROM peersupport_grants WHERE pair_h = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, storage::Blob{pair_hash(supporter, member)});
    return st.step();
}

bool GrantStore::remove(std::string_view supporter, std::string_view member) {
    auto& st = db_.prepare_cached("DELETE FROM peersupport_grants WHERE pair_h = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, storage::Blob{pair_hash(supporter, member)});
    st.step();
    return db_.changes() > 0;
}

void GrantStore::touch(std::string_view supporter, std::string_view member, std::int64_t now) {
    auto& st = db_.prepare_cached(
        "UPDATE peersupport_grants SET last_activity = ?2 WHERE pair_h = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, storage::Blob{pair_hash(supporter, member)}).bind(2, now);
    st.step();
}

std::vector<Grant> GrantStore::list(std::optional<std::string_view> localpart) const {
    // Nothing to select on without opening the rows: read them all (grants are few, and
    // the module keeps them in memory), then filter and order as before.
    std::vector<Grant> out;
    auto& st = db_.prepare_cached(std::string("SELECT ") + std::string(columns) +
                                  " FROM peersupport_grants");
    storage::ScopedReset guard(st);
    while (st.step()) {
        auto g = read(st);
        if (!localpart || g.supporter == *localpart || g.member == *localpart) {
            out.push_back(std::move(g));
        }
    }
    std::sort(out.begin(), out.end(), [](const Grant& a, const Grant& b) {
        return std::tie(a.supporter, a.member) < std::tie(b.supporter, b.member);
    });
    return out;
}

std::vector<Grant> GrantStore::idle_since(std::int64_t cutoff) const {
    std::vector<Grant> out;
    auto& st = db_.prepare_cached(std::string("SELECT ") + std::string(columns) +
                                  " FROM peersupport_grants WHERE last_activity < ?1");
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

std::vector<Grant> end_grants_of_account(storage::Database& db, GrantStore& grants,
                                         storage::RosterStore& roster, std::string_view domain,
                                         std::string_view localpart) {
    storage::Transaction tx(db);
    auto ended = grants.list(localpart);
    for (const auto& g : ended) {
        end_grant_records(db, grants, roster, domain, g.supporter, g.member);
    }
    tx.commit();
    return ended;
}

void forget_config_role(storage::KeyValueStore& kv, std::string_view localpart) {
    kv.remove(localpart, config_role_store, config_role_key);
}

}  // namespace haven::peersupport
