// NoticeStore: the module's tables (see notice_store.hpp).
#include "modules/email_notices/notice_store.hpp"

#include <array>

#include "server/storage/error.hpp"

namespace haven::email_notices {
namespace {

constexpr std::string_view step1 =
    R"sql(CREATE TABLE email_addresses (
        user TEXT PRIMARY KEY NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
        address BLOB NOT NULL,                  -- sealed to the user
        confirmed INTEGER NOT NULL DEFAULT 0,
        code_h BLOB NOT NULL DEFAULT x'',       -- keyed hash of the pending code
        code_expires INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        lang TEXT NOT NULL DEFAULT 'en',        -- the language the mails are written in
        waiting_since INTEGER NOT NULL DEFAULT 0,
        last_notice INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE email_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
        mail BLOB NOT NULL,                     -- sealed pack(to, subject, body)
        next_try INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX email_outbox_due ON email_outbox(next_try);)sql";

std::string address_row(std::string_view user) {
    return storage::pack({"email_address", user});
}
std::string mail_row(std::string_view user) {
    return storage::pack({"email_outbox", user});
}

}  // namespace

NoticeStore::NoticeStore(storage::Database& db, const storage::SecretBox& box)
    : db_(db), box_(box) {
    const std::array<storage::Migration, 1> steps{storage::Migration{step1}};
    db_.migrate("email_notices", steps);
}

std::string NoticeStore::code_hash(const std::string& user, const std::string& code) const {
    return box_.lookup(storage::pack({"email_code", user, code}));
}

namespace {
constexpr std::string_view columns =
    "user, address, confirmed, code_h, code_expires, attempts, lang, waiting_since, last_notice";

AddressRecord read_record(const storage::Statement& st, const storage::SecretBox& box) {
    AddressRecord r;
    r.user = st.column_text(0);
    auto address = box.open(st.column_blob(1), address_row(r.user));
    if (!address) {
        throw storage::StorageError("email_notices: an address does not decrypt: wrong key?");
    }
    r.address = std::move(*address);
    r.confirmed = st.column_int64(2) != 0;
    r.code_h = st.column_blob(3);
    r.code_expires = st.column_int64(4);
    r.attempts = static_cast<int>(st.column_int64(5));
    r.lang = st.column_text(6);
    r.waiting_since = st.column_int64(7);
    r.last_notice = st.column_int64(8);
    return r;
}
}  // namespace

std::optional<AddressRecord> NoticeStore::get(const std::string& user) const {
    auto& st = db_.prepare_cached("SELECT " + std::string(columns) +
                                  " FROM email_addresses WHERE user = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(user));
    if (!st.step()) {
        return std::nullopt;
    }
    return read_record(st, box_);
}

void NoticeStore::put(const AddressRecord& r) {
    auto& st =
        db_.prepare_cached("INSERT OR REPLACE INTO email_addresses (" + std::string(columns) +
                           ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(r.user))
        .bind(2, storage::Blob{box_.seal(r.address, address_row(r.user))})
        .bind(3, static_cast<std::int64_t>(r.confirmed ? 1 : 0))
        .bind(4, storage::Blob{r.code_h})
        .bind(5, r.code_expires)
        .bind(6, static_cast<std::int64_t>(r.attempts))
        .bind(7, std::string_view(r.lang))
        .bind(8, r.waiting_since)
        .bind(9, r.last_notice);
    st.step();
}

bool NoticeStore::remove(const std::string& user) {
    storage::Transaction tx(db_);
    {
        auto& st = db_.prepare_cached("DELETE FROM email_outbox WHERE user = ?1");
        storage::ScopedReset guard(st);
        st.bind(1, std::string_view(user));
        st.step();
    }
    auto& st = db_.prepare_cached("DELETE FROM email_addresses WHERE user = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(user));
    st.step();
    const bool removed = db_.changes() > 0;
    tx.commit();
    return removed;
}

std::vector<AddressRecord> NoticeStore::confirmed() const {
    std::vector<AddressRecord> out;
    auto& st = db_.prepare_cached("SELECT " + std::string(columns) +
                                  " FROM email_addresses WHERE confirmed = 1");
    storage::ScopedReset guard(st);
    while (st.step()) {
        out.push_back(read_record(st, box_));
    }
    return out;
}

void NoticeStore::set_waiting(const std::string& user, std::int64_t since) {
    auto& st = db_.prepare_cached("UPDATE email_addresses SET waiting_since = ?2 WHERE user = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(user)).bind(2, since);
    st.step();
}

void NoticeStore::set_notified(const std::string& user, std::int64_t at) {
    auto& st = db_.prepare_cached(
        "UPDATE email_addresses SET waiting_since = 0, last_notice = ?2 WHERE user = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(user)).bind(2, at);
    st.step();
}

void NoticeStore::add_mail(const std::string& user, const std::string& to,
                           const std::string& subject, const std::string& body,
                           std::int64_t next_try) {
    auto& st =
        db_.prepare_cached("INSERT INTO email_outbox (user, mail, next_try) VALUES (?1, ?2, ?3)");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(user))
        .bind(2, storage::Blob{box_.seal(storage::pack({to, subject, body}), mail_row(user))})
        .bind(3, next_try);
    st.step();
}

std::optional<OutboxMail> NoticeStore::next_due(std::int64_t now) const {
    auto& st = db_.prepare_cached(
        "SELECT id, user, mail, next_try, attempts FROM email_outbox WHERE next_try <= ?1 "
        "ORDER BY next_try, id LIMIT 1");
    storage::ScopedReset guard(st);
    st.bind(1, now);
    if (!st.step()) {
        return std::nullopt;
    }
    OutboxMail m;
    m.id = st.column_int64(0);
    m.user = st.column_text(1);
    auto plain = box_.open(st.column_blob(2), mail_row(m.user));
    auto parts = plain ? storage::unpack(*plain) : std::nullopt;
    if (!parts || parts->size() != 3) {
        throw storage::StorageError("email_notices: a queued mail does not decrypt: wrong key?");
    }
    m.to = (*parts)[0];
    m.subject = (*parts)[1];
    m.body = (*parts)[2];
    m.next_try = st.column_int64(3);
    m.attempts = static_cast<int>(st.column_int64(4));
    return m;
}

void NoticeStore::mail_sent(std::int64_t id) {
    auto& st = db_.prepare_cached("DELETE FROM email_outbox WHERE id = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, id);
    st.step();
}

void NoticeStore::mail_failed(std::int64_t id, std::int64_t next_try) {
    auto& st = db_.prepare_cached(
        "UPDATE email_outbox SET attempts = attempts + 1, next_try = ?2 WHERE id = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, id).bind(2, next_try);
    st.step();
}

std::size_t NoticeStore::outbox_size() const {
    auto& st = db_.prepare_cached("SELECT COUNT(*) FROM email_outbox");
    storage::ScopedReset guard(st);
    st.step();
    return static_cast<std::size_t>(st.column_int64(0));
}

}  // namespace haven::email_notices
