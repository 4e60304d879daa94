// SQLite connection: cached prepared statements, transactions, numbered per-component migrations.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/core/string_map.hpp"
#include "server/storage/error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace haven::storage {

// Tags a byte string so that it binds as a BLOB rather than TEXT.
struct Blob {
    std::string_view bytes;
};

// One prepared statement. Values are bound by copy (SQLITE_TRANSIENT), so the caller's strings
// need not outlive the call. Indices are 1-based for bind, 0-based for columns, as in SQLite.
class Database;

class Statement {
public:
    // `owner` (optional) is told when a step meets a lock held by another connection.
    Statement(sqlite3* db, std::string_view sql, Database* owner = nullptr);
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, Blob blob);
    // A named function, not bind(int, nullptr_t): a literal 0 would make bind(i, 0) ambiguous.
    Statement& bind_null(int index);

    // true: a row is available; false: done. Throws StorageError (and resets) on failure.
    bool step();

    std::int64_t column_int64(int column) const;
    std::string column_text(int column) const;  // NULL reads as ""
    std::string column_blob(int column) const;  // NULL reads as ""
    bool column_is_null(int column) const;

    // Resets and clears bindings. A statement stopped after a row keeps its read transaction
    // open (stale snapshot, WAL checkpoints blocked) until reset: see ScopedReset.
    void reset() noexcept;

private:
    struct Finalize {
        void operator()(sqlite3_stmt* stmt) const noexcept;
    };
    [[noreturn]] void fail(std::string_view what, int rc) const;

    sqlite3* db_;
    Database* owner_;
    std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

// Resets a cached statement when the scope ends, also on exceptions.
class ScopedReset {
public:
    explicit ScopedReset(Statement& statement) : statement_(statement) {}
    ~ScopedReset() { statement_.reset(); }
    ScopedReset(const ScopedReset&) = delete;
    ScopedReset& operator=(const ScopedReset&) = delete;

private:
    Statement& statement_;
};

class SecretBox;

// One step of a component's schema history: SQL, then (optionally) code that converts rows the
// SQL alone cannot (e.g. re-sealing them), in the same transaction.
struct Migration {
    std::string_view sql;
    std::function<void(Database&)> convert = {};
};

// One connection. Not thread-safe (opened SQLITE_OPEN_NOMUTEX, statement cache unsynchronised):
// the server uses it from the core executor only; the admin CLI opens its own.
// Every connection must come from open(): cascading deletes rely on the pragmas set there.
class Database {
    struct Passkey {
        explicit Passkey() = default;
    };
    struct Close {
        void operator()(sqlite3* db) const noexcept;
    };

public:
    // Opens (creating with mode 0600 if absent) a database file, or ":memory:". Sets WAL,
    // synchronous=NORMAL (a commit survives kill -9 of the process; only power loss can drop the
    // last commits), busy_timeout 2000 ms, foreign_keys=ON, and applies the "core" migrations,
    // which seal rows with `box` (it must stay the same key for the life of the file).
    static std::unique_ptr<Database> open(const std::filesystem::path& path, const SecretBox& box);

    Database(Passkey, std::unique_ptr<sqlite3, Close> db);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Returns the cached statement for this exact SQL text, reset and with bindings cleared.
    // Pass fixed SQL (the cache never shrinks) and don't re-enter the same SQL while iterating it.
    Statement& prepare_cached(std::string_view sql);

    // Runs one or more statements without results (DDL, pragmas).
    void exec(std::string_view sql);

    // Brings `component` to version steps.size(): step i (0-based) is applied once, in its own
    // transaction together with bumping schema_version to i + 1. Never edit or reorder a shipped
    // step; append new ones. Throws if the database is newer than the steps this build knows.
    // Module tables holding per-user rows must declare
    //   FOREIGN KEY(user) REFERENCES accounts(localpart) ON DELETE CASCADE
    // and be indexed on that column, so UserStore::remove erases them too.
    // A step with `convert` code is followed, after its commit, by a checkpoint and VACUUM, so
    // that the rows it replaced (e.g. plaintext) do not linger in free pages or the WAL.
    void migrate(std::string_view component, std::span<const Migration> steps);
    void migrate(std::string_view component, std::span<const std::string_view> steps);
    int schema_version(std::string_view component);

    // PRAGMA data_version: changes when ANOTHER connection (e.g. the admin CLI) committed since
    // the last call; this connection's own commits don't change it.
    std::int64_t data_version();

    // How long a statement waits for another connection's lock before failing with a busy
    // StorageError. open() sets 2000 ms (right for the admin CLI); havend's event loop sets a
    // few ms ([storage] busy_timeout_ms) so that no write can stall message routing.
    void set_busy_timeout(std::chrono::milliseconds timeout);
    std::chrono::milliseconds busy_timeout() const { return busy_timeout_; }

    std::int64_t changes() const;  // rows changed by the last INSERT/UPDATE/DELETE
    std::int64_t last_insert_rowid() const;

private:
    friend class Transaction;
    friend class Statement;
    bool in_transaction() const;
    // After one statement waited the full busy timeout in vain, the next ones fail at once for
    // a short while: a lock held for seconds costs the loop one busy timeout, not one per write.
    void note_busy();
    void end_fast_fail_if_due();
    void configure(bool in_memory);

    std::unique_ptr<sqlite3, Close> db_;  // declared first: statements are finalised before close
    StringMap<std::unique_ptr<Statement>> cache_;
    std::chrono::milliseconds busy_timeout_{0};
    bool fast_fail_ = false;
    std::chrono::steady_clock::time_point fast_fail_until_{};
};

// Sets a busy timeout for one scope (e.g. 0 for a retry that must not wait), then restores it.
class ScopedBusyTimeout {
public:
    ScopedBusyTimeout(Database& db, std::chrono::milliseconds timeout)
        : db_(db), saved_(db.busy_timeout()) {
        db_.set_busy_timeout(timeout);
    }
    ~ScopedBusyTimeout() { db_.set_busy_timeout(saved_); }
    ScopedBusyTimeout(const ScopedBusyTimeout&) = delete;
    ScopedBusyTimeout& operator=(const ScopedBusyTimeout&) = delete;

private:
    Database& db_;
    std::chrono::milliseconds saved_;
};

// BEGIN IMMEDIATE (takes the write lock up front, so a read-then-write never fails half way with
// SQLITE_BUSY); rolls back unless commit() was called. Nested inside another transaction it
// becomes a SAVEPOINT, so store methods compose with a caller's transaction.
class Transaction {
public:
    explicit Transaction(Database& db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit();

private:
    Database& db_;
    bool nested_;
    bool done_ = false;
};

}  // namespace haven::storage
