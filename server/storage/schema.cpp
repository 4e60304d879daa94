// Numbered migrations of the "core" component: accounts, roster, offline messages, key-value.
#include "server/storage/schema.hpp"

#include <map>
#include <utility>

#include "server/storage/kv_store.hpp"
#include "server/storage/offline_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::storage {
namespace {

// Every per-user table references accounts(localpart) ON DELETE CASCADE and leads its primary
// key (or an index) with the user column, so deleting an account is one indexed statement that
// erases everything. This means roster, offline and kv rows exist only for real accounts; other
// addressable entities (functional addresses, MUC rooms) get tables of their own module.
constexpr std::string_view step1 = R"sql(
CREATE TABLE accounts(
  localpart TEXT PRIMARY KEY NOT NULL,
  role TEXT NOT NULL DEFAULT 'member',
  sha1_salt BLOB, sha1_iter INTEGER, sha1_stored BLOB, sha1_server BLOB,
  sha256_salt BLOB, sha256_iter INTEGER, sha256_stored BLOB, sha256_server BLOB,
  created INTEGER NOT NULL
);

CREATE TABLE roster(
  user TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
  contact TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  subscription TEXT NOT NULL DEFAULT 'none'
    CHECK(subscription IN ('none', 'to', 'from', 'both')),
  ask_out INTEGER NOT NULL DEFAULT 0,
  ask_in INTEGER NOT NULL DEFAULT 0,
  pending_subscribe TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(user, contact)
) WITHOUT ROWID;

-- Groups live in their own table: a group name is arbitrary XML text (newlines included), and
-- shared-group features can query it later.
CREATE TABLE roster_groups(
  user TEXT NOT NULL,
  contact TEXT NOT NULL,
  grp TEXT NOT NULL,
  PRIMARY KEY(user, contact, grp),
  FOREIGN KEY(user, contact) REFERENCES roster(user, contact) ON DELETE CASCADE
) WITHOUT ROWID;

-- XEP-0237 roster versioning: bumped in the same transaction as every roster change.
CREATE TABLE roster_version(
  user TEXT PRIMARY KEY NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
  version INTEGER NOT NULL
) WITHOUT ROWID;

-- XEP-0160. AUTOINCREMENT: ids are handed to clients (XEP-0013 nodes) and must never be reused.
-- payload = nonce || crypto_secretbox ciphertext (see SecretBox).
CREATE TABLE offline(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
  stamp INTEGER NOT NULL,
  payload BLOB NOT NULL
);
CREATE INDEX offline_user ON offline(user, id);

-- vCards, private XML, block lists. sealed = 1: value is SecretBox output.
CREATE TABLE kv(
  user TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
  store TEXT NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  sealed INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(user, store, key)
) WITHOUT ROWID;
)sql";

// Issue 11, privacy at rest: who is in whose roster and which contacts a key-value row is
// about (pending and pre-approved subscriptions are keyed by JID) no longer stand in the clear.
// Rows are found by keyed hashes (SecretBox::lookup) and everything else of a row is one sealed
// record bound to that row; offline payloads are re-sealed with their owner bound.
constexpr std::string_view step2 = R"sql(
ALTER TABLE roster_groups RENAME TO roster_groups_v1;
ALTER TABLE roster RENAME TO roster_v1;
ALTER TABLE kv RENAME TO kv_v1;

-- contact_h = lookup(pack("roster", user, contact)): per user, so the same contact in two
-- rosters gives two unrelated hashes. item = sealed record (see RosterStore).
CREATE TABLE roster(
  user TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
  contact_h BLOB NOT NULL,
  item BLOB NOT NULL,
  PRIMARY KEY(user, contact_h)
) WITHOUT ROWID;

-- vCards, private XML, block lists, subscription markers. key_h = lookup(pack("kv", user,
-- store, key)); value = sealed pack(key, value), bound to (user, store, key_h).
CREATE TABLE kv(
  user TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
  store TEXT NOT NULL,
  key_h BLOB NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY(user, store, key_h)
) WITHOUT ROWID;
)sql";

void seal_core_rows(Database& db, const SecretBox& box) {
    auto unreadable = [](std::string_view what) {
        return StorageError("storage: an existing " + std::string(what) +
                            " does not decrypt with this key file: restore the right one");
    };
    {
        // Old groups first, keyed by (user, contact), then each item written the new way.
        std::map<std::pair<std::string, std::string>, std::vector<std::string>> groups;
        auto& gs = db.prepare_cached("SELECT user, contact, grp FROM roster_groups_v1");
        ScopedReset gguard(gs);
        while (gs.step()) {
            groups[{gs.column_text(0), gs.column_text(1)}].push_back(gs.column_text(2));
        }
        RosterStore roster(db, box);
        auto& st = db.prepare_cached(
            "SELECT user, contact, name, subscription, ask_out, ask_in, pending_subscribe"
            " FROM roster_v1");
        ScopedReset guard(st);
        while (st.step()) {
            const std::string user = st.column_text(0);
            RosterItem item;
            item.contact = st.column_text(1);
            item.name = st.column_text(2);
            item.subscription = st.column_text(3);
            item.ask_out = st.column_int64(4) != 0;
            item.ask_in = st.column_int64(5) != 0;
            item.pending_subscribe = st.column_text(6);
            if (auto it = groups.find({user, item.contact}); it != groups.end()) {
                item.groups = std::move(it->second);
            }
            roster.put(user, item);
        }
    }
    {
        KeyValueStore kv(db, box);
        auto& st = db.prepare_cached("SELECT user, store, key, value, sealed FROM kv_v1");
        ScopedReset guard(st);
        while (st.step()) {
            std::string value = st.column_blob(3);
            if (st.column_int64(4) != 0) {
                auto plain = box.open_legacy(value);
                if (!plain) {
                    throw unreadable("key-value row");
                }
                value = std::move(*plain);
            }
            kv.put(st.column_text(0), st.column_text(1), st.column_text(2), value);
        }
    }
    // Read all first: updating rows of the table a statement is still stepping through is
    // undefined in SQLite.
    std::vector<std::pair<std::int64_t, std::string>> resealed;
    {
        auto& st = db.prepare_cached("SELECT id, user, payload FROM offline");
        ScopedReset guard(st);
        while (st.step()) {
            auto plain = box.open_legacy(st.column_blob(2));
            if (!plain) {
                throw unreadable("offline message");
            }
            resealed.emplace_back(st.column_int64(0),
                                  box.seal(*plain, offline_row(st.column_text(1))));
        }
    }
    auto& up = db.prepare_cached("UPDATE offline SET payload = ?2 WHERE id = ?1");
    for (const auto& [id, payload] : resealed) {
        ScopedReset guard(up);
        up.bind(1, id).bind(2, Blob{payload});
        up.step();
    }
    db.exec("DROP TABLE roster_groups_v1; DROP TABLE roster_v1; DROP TABLE kv_v1;");
}

}  // namespace

std::vector<Migration> core_migrations(const SecretBox& box) {
    return {Migration{step1}, Migration{step2, [&box](Database& db) { seal_core_rows(db, box); }}};
}

}  // namespace haven::storage
