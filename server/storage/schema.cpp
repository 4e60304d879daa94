// Numbered migrations of the "core" component: accounts, roster, offline messages, key-value.
#include "server/storage/schema.hpp"

#include <array>

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

constexpr std::array<std::string_view, 1> steps{step1};

}  // namespace

std::span<const std::string_view> core_migrations() { return steps; }

}  // namespace haven::storage
