// SQLite connection: cached prepared statements, transactions, numbered per-component migrations.
#include "server/storage/database.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <limits>

#include "server/storage/schema.hpp"

namespace haven::storage {
namespace {

constexpr std::chrono::milliseconds default_busy_timeout{2000};

// SQL text carries no user data (values are bound), so a prefix of it is safe in messages.
std::string sql_excerpt(std::string_view sql) {
    constexpr std::size_t max = 60;
    std::string out(sql.substr(0, max));
    std::replace_if(
        out.begin(), out.end(), [](unsigned char c) { return std::isspace(c); }, ' ');
    return sql.size() > max ? out + "..." : out;
}

[[noreturn]] void fail_db(sqlite3* db, std::string_view what, int rc) {
    std::string msg = "storage: ";
    msg += what;
    msg += ": ";
    msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw StorageError(msg, rc);
}

// SQLite creates files with 0644 (less umask); the database holds credential hashes and
// personal data, so create it 0600 ourselves. SQLite gives -wal/-shm the main file's mode.
void create_private(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ::close(fd);
    }
    // Any other failure (exists, no permission) is left to sqlite3_open_v2 to report.
}

}  // namespace

// --- Statement ---

void Statement::Finalize::operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }

Statement::Statement(sqlite3* db, std::string_view sql, Database* owner)
    : db_(db), owner_(owner) {
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw StorageError("storage: SQL text too long");
    }
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    // PERSISTENT: these statements live for the whole connection (lookaside memory hint).
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &raw, &tail);
    stmt_.reset(raw);
    if (rc != SQLITE_OK) {
        fail_db(db, "prepare '" + sql_excerpt(sql) + "'", rc);
    }
    if (raw == nullptr) {
        throw StorageError("storage: empty SQL statement");
    }
    // prepare compiles only the first statement; silently dropping the rest would be a bug.
    const std::string_view rest(tail, sql.data() + sql.size() - tail);
    if (!std::all_of(rest.begin(), rest.end(), [](unsigned char c) { return std::isspace(c); })) {
        throw StorageError("storage: more than one statement in '" + sql_excerpt(sql) + "'");
    }
}

void Statement::fail(std::string_view what, int rc) const {
    std::string context(what);
    context += " '";
    context += sql_excerpt(sqlite3_sql(stmt_.get()));
    context += "'";
    fail_db(db_, context, rc);
}

Statement& Statement::bind(int index, std::int64_t value) {
    const int rc = sqlite3_bind_int64(stmt_.get(), index, value);
    if (rc != SQLITE_OK) {
        fail("bind", rc);
    }
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    // A null data() would bind SQL NULL; an empty string must stay an empty string.
    const char* data = text.data() != nullptr ? text.data() : "";
    const int rc =
        sqlite3_bind_text64(stmt_.get(), index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    if (rc != SQLITE_OK) {
        fail("bind", rc);
    }
    return *this;
}

Statement& Statement::bind(int index, Blob blob) {
    const char* data = blob.bytes.data() != nullptr ? blob.bytes.data() : "";
    const int rc =
        sqlite3_bind_blob64(stmt_.get(), index, data, blob.bytes.size(), SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) {
        fail("bind", rc);
    }
    return *this;
}

Statement& Statement::bind_null(int index) {
    const int rc = sqlite3_bind_null(stmt_.get(), index);
    if (rc != SQLITE_OK) {
        fail("bind", rc);
    }
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    std::string msg = "storage: step '";
    msg += sql_excerpt(sqlite3_sql(stmt_.get()));
    msg += "': ";
    msg += sqlite3_errmsg(db_);  // read before reset, which may replace it
    sqlite3_reset(stmt_.get());
    if (owner_ != nullptr && ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)) {
        owner_->note_busy();
    }
    throw StorageError(msg, rc);
}

std::int64_t Statement::column_int64(int column) const {
    return sqlite3_column_int64(stmt_.get(), column);
}

std::string Statement::column_text(int column) const {
    // Order matters: fetch the pointer first, then the byte count of that representation.
    const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
    const int size = sqlite3_column_bytes(stmt_.get(), column);
    return text != nullptr ? std::string(reinterpret_cast<const char*>(text), size) : std::string();
}

std::string Statement::column_blob(int column) const {
    const void* data = sqlite3_column_blob(stmt_.get(), column);
    const int size = sqlite3_column_bytes(stmt_.get(), column);
    return data != nullptr ? std::string(static_cast<const char*>(data), size) : std::string();
}

bool Statement::column_is_null(int column) const {
    return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

void Statement::reset() noexcept {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
}

// --- Database ---

void Database::Close::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

std::unique_ptr<Database> Database::open(const std::filesystem::path& path,
                                         const SecretBox& box) {
    const std::string name = path.string();
    const bool in_memory = name == ":memory:";
    if (!in_memory) {
        create_private(path);
    }
    sqlite3* raw = nullptr;
    // NOMUTEX: one thread per connection by contract, so SQLite's own mutex is pure overhead.
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
#ifdef SQLITE_OPEN_EXRESCODE
    flags |= SQLITE_OPEN_EXRESCODE;
#endif
    const int rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
    std::unique_ptr<sqlite3, Close> handle(raw);  // open allocates a handle even on failure
    if (rc != SQLITE_OK) {
        fail_db(raw, "open " + name, rc);
    }
    auto db = std::make_unique<Database>(Passkey{}, std::move(handle));
    db->configure(in_memory);
    db->migrate("core", core_migrations(box));
    return db;
}

Database::Database(Passkey, std::unique_ptr<sqlite3, Close> db) : db_(std::move(db)) {}

Database::~Database() {
    cache_.clear();
    // Recommended before closing a long-lived connection; bounded so it never stalls shutdown.
    sqlite3_exec(db_.get(), "PRAGMA analysis_limit=400; PRAGMA optimize;", nullptr, nullptr,
                 nullptr);
}

void Database::configure(bool in_memory) {
    sqlite3_extended_result_codes(db_.get(), 1);
    set_busy_timeout(default_busy_timeout);
    exec("PRAGMA foreign_keys=ON");
    {
        // Account deletion relies on ON DELETE CASCADE: refuse a build that ignores FKs.
        auto& st = prepare_cached("PRAGMA foreign_keys");
        ScopedReset guard(st);
        if (!st.step() || st.column_int64(0) != 1) {
            throw StorageError("storage: this SQLite build does not enforce foreign keys");
        }
    }
    if (!in_memory) {
        auto& st = prepare_cached("PRAGMA journal_mode=WAL");
        ScopedReset guard(st);
        // WAL lets the admin CLI read while the server writes; without it (e.g. some network
        // file systems) every access could block the core thread, so fail loudly instead.
        if (!st.step() || st.column_text(0) != "wal") {
            throw StorageError("storage: cannot enable WAL journal mode on this file system");
        }
    }
    // secure_delete=FAST zeroes freed content when that costs no extra I/O: deleted accounts
    // should not linger in free pages. journal_size_limit stops the WAL file staying huge
    // after a burst. trusted_schema=OFF: never run functions named in a tampered schema.
    exec(
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA secure_delete=FAST;"
        "PRAGMA journal_size_limit=67108864;"
        "PRAGMA trusted_schema=OFF;"
        "CREATE TABLE IF NOT EXISTS schema_version("
        "  component TEXT PRIMARY KEY NOT NULL,"
        "  version INTEGER NOT NULL"
        ") WITHOUT ROWID;");
}

Statement& Database::prepare_cached(std::string_view sql) {
    end_fast_fail_if_due();
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
        it = cache_.emplace(std::string(sql), std::make_unique<Statement>(db_.get(), sql, this))
                 .first;
    } else {
        it->second->reset();
    }
    return *it->second;
}

void Database::exec(std::string_view sql) {
    const std::string text(sql);
    char* error = nullptr;
    const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
        std::string msg = "storage: exec '" + sql_excerpt(sql) + "': ";
        msg += error != nullptr ? error : sqlite3_errstr(rc);
        sqlite3_free(error);
        throw StorageError(msg, rc);
    }
}

int Database::schema_version(std::string_view component) {
    auto& st = prepare_cached("SELECT version FROM schema_version WHERE component = ?1");
    ScopedReset guard(st);
    st.bind(1, component);
    return st.step() ? static_cast<int>(st.column_int64(0)) : 0;
}

void Database::migrate(std::string_view component, std::span<const std::string_view> steps) {
    std::vector<Migration> plain;
    plain.reserve(steps.size());
    for (auto sql : steps) {
        plain.push_back(Migration{sql});
    }
    migrate(component, plain);
}

void Database::migrate(std::string_view component, std::span<const Migration> steps) {
    const auto target = static_cast<int>(steps.size());
    // Common case first, without the write lock: every start and every admin CLI call gets here.
    if (schema_version(component) == target) {
        return;
    }
    bool converted = false;
    for (;;) {
        Transaction tx(*this);
        // Re-read under the write lock: another process may have migrated meanwhile.
        const int current = schema_version(component);
        if (current > target) {
            throw StorageError("storage: schema of '" + std::string(component) +
                               "' is at version " + std::to_string(current) +
                               " but this build knows only " + std::to_string(target) +
                               ": refusing to run on a newer database");
        }
        if (current == target) {
            break;
        }
        const auto& step = steps[static_cast<std::size_t>(current)];
        try {
            exec(step.sql);
            if (step.convert) {
                step.convert(*this);
                converted = true;
            }
        } catch (const StorageError& e) {
            throw StorageError("storage: migration '" + std::string(component) + "' step " +
                                   std::to_string(current + 1) + " failed: " + e.what(),
                               e.code());
        }
        auto& st = prepare_cached(
            "INSERT INTO schema_version(component, version) VALUES(?1, ?2)"
            " ON CONFLICT(component) DO UPDATE SET version = excluded.version");
        ScopedReset guard(st);
        st.bind(1, component).bind(2, std::int64_t{current} + 1);
        st.step();
        tx.commit();
    }
    if (converted && !in_transaction()) {
        // The replaced rows' pages are free but still hold their old bytes: rewrite the file
        // and empty the WAL. Copies made before (backups) keep them; the README says so.
        exec("PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
    }
}

std::int64_t Database::data_version() {
    auto& st = prepare_cached("PRAGMA data_version");
    ScopedReset guard(st);
    if (!st.step()) {
        throw StorageError("storage: PRAGMA data_version returned nothing");
    }
    return st.column_int64(0);
}

void Database::set_busy_timeout(std::chrono::milliseconds timeout) {
    const auto ms = std::clamp<std::chrono::milliseconds::rep>(timeout.count(), 0, 60'000);
    busy_timeout_ = std::chrono::milliseconds(ms);
    // While failing fast (note_busy) the connection keeps 0 until the period ends.
    sqlite3_busy_timeout(db_.get(), fast_fail_ ? 0 : static_cast<int>(ms));
}

void Database::note_busy() {
    constexpr std::chrono::milliseconds fast_fail_period{200};
    if (busy_timeout_.count() == 0) {
        return;  // already failing at once
    }
    sqlite3_busy_timeout(db_.get(), 0);
    fast_fail_ = true;
    fast_fail_until_ = std::chrono::steady_clock::now() + fast_fail_period;
}

void Database::end_fast_fail_if_due() {
    if (fast_fail_ && std::chrono::steady_clock::now() >= fast_fail_until_) {
        sqlite3_busy_timeout(db_.get(), static_cast<int>(busy_timeout_.count()));
        fast_fail_ = false;
    }
}

std::int64_t Database::changes() const { return sqlite3_changes64(db_.get()); }

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }

bool Database::in_transaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }

// --- Transaction ---

// One savepoint name suffices: transactions are scoped objects, so they nest strictly (LIFO) and
// ROLLBACK TO / RELEASE always address the innermost savepoint of that name.
Transaction::Transaction(Database& db) : db_(db), nested_(db.in_transaction()) {
    auto& st = db_.prepare_cached(nested_ ? "SAVEPOINT haven_tx" : "BEGIN IMMEDIATE");
    ScopedReset guard(st);
    st.step();
}

void Transaction::commit() {
    auto& st = db_.prepare_cached(nested_ ? "RELEASE haven_tx" : "COMMIT");
    ScopedReset guard(st);
    st.step();
    done_ = true;
}

Transaction::~Transaction() {
    if (done_) {
        return;
    }
    // Never throws: if SQLite already rolled back on its own (e.g. disk full), these just fail.
    if (nested_) {
        sqlite3_exec(db_.db_.get(), "ROLLBACK TO haven_tx; RELEASE haven_tx;", nullptr, nullptr,
                     nullptr);
    } else if (db_.in_transaction()) {
        sqlite3_exec(db_.db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

}  // namespace haven::storage
