// InquiryStore: the fa_inquiries table (own migrations) and the state changes of an inquiry.
#include "modules/functional_addresses/inquiry_store.hpp"

#include <array>

#include <sodium.h>

#include "server/storage/error.hpp"

namespace haven::functional_addresses {
namespace {

// The sender is a bare JID, not an accounts row (remote senders come with federation), so
// account deletion is handled by the module (remove_sender); the partial unique index keeps
// at most one active inquiry per (address, sender).
constexpr std::string_view step1 =
    R"sql(CREATE TABLE fa_inquiries (
        token TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        sender TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'claimed', 'closed')),
        claimed_by TEXT,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX fa_inquiries_active ON fa_inquiries(address, sender)
        WHERE state != 'closed';
    CREATE INDEX fa_inquiries_sender ON fa_inquiries(sender);
    CREATE INDEX fa_inquiries_claimed_by ON fa_inquiries(claimed_by);)sql";

// Step 2 (issue 11, privacy at rest): who wrote to which address and who took it are sealed.
// thread_h = lookup(pack("fa-thread", address, sender)) finds the active inquiry of a sender;
// closing replaces it with random bytes, so closed inquiries of one person cannot be linked.
// record = sealed pack(address, sender, claimed_by), bound to the token.
constexpr std::string_view step2 =
    R"sql(ALTER TABLE fa_inquiries RENAME TO fa_inquiries_v1;
    CREATE TABLE fa_inquiries (
        token TEXT PRIMARY KEY,
        thread_h BLOB NOT NULL,
        record BLOB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'claimed', 'closed')),
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX fa_inquiries_thread ON fa_inquiries(thread_h) WHERE state != 'closed';
    CREATE INDEX fa_inquiries_state ON fa_inquiries(state, created);)sql";

constexpr std::string_view select_columns =
    "SELECT token, record, state, created, updated FROM fa_inquiries ";

State parse_state(std::string_view s) {
    if (s == "claimed") {
        return State::Claimed;
    }
    if (s == "closed") {
        return State::Closed;
    }
    return State::Open;
}

// Runs one INSERT/UPDATE/DELETE with `args` bound to ?1, ?2, ... in order; returns the number of
// rows it changed (a conditional UPDATE that matched nothing: 0).
template <typename... Args>
std::int64_t change(storage::Database& db, std::string_view sql, const Args&... args) {
    auto& st = db.prepare_cached(sql);
    storage::ScopedReset guard(st);
    int index = 0;
    (st.bind(++index, args), ...);
    st.step();
    return db.changes();
}

std::string random_hash() {
    std::string out(storage::SecretBox::lookup_size, '\0');
    randombytes_buf(out.data(), out.size());
    return out;
}

}  // namespace

std::string_view state_name(State s) {
    switch (s) {
        case State::Open:
            return "open";
        case State::Claimed:
            return "claimed";
        case State::Closed:
            return "closed";
    }
    return "open";
}

std::string random_token(std::size_t length) {
    static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string out;
    out.reserve(length);
    for (std::size_t i = 0; i < length; ++i) {
        out.push_back(alphabet[randombytes_uniform(static_cast<std::uint32_t>(alphabet.size()))]);
    }
    return out;
}

InquiryStore::InquiryStore(storage::Database& db, const storage::SecretBox& box)
    : db_(db), box_(box) {
    const std::array<storage::Migration, 2> steps{
        storage::Migration{step1},
        storage::Migration{step2, [this](storage::Database&) { seal_v1_rows(); }}};
    db_.migrate("functional_addresses", steps);
}

void InquiryStore::seal_v1_rows() {
    auto& st = db_.prepare_cached(
        "SELECT token, address, sender, state, claimed_by, created, updated "
        "FROM fa_inquiries_v1");
    {
        storage::ScopedReset guard(st);
        while (st.step()) {
            Inquiry i;
            i.token = st.column_text(0);
            i.address = st.column_text(1);
            i.sender = st.column_text(2);
            i.state = parse_state(st.column_text(3));
            i.claimed_by = st.column_text(4);
            i.created = st.column_int64(5);
            i.updated = st.column_int64(6);
            insert(i);
        }
    }
    db_.exec("DROP TABLE fa_inquiries_v1");
}

std::string InquiryStore::thread_hash(std::string_view address, std::string_view sender) const {
    return box_.lookup(storage::pack({"fa-thread", address, sender}));
}

std::string InquiryStore::seal(const Inquiry& i) const {
    return box_.seal(storage::pack({i.address, i.sender, i.claimed_by}),
                     storage::pack({"fa_inquiries", i.token}));
}

void InquiryStore::insert(const Inquiry& i) {
    const std::string thread =
        i.state == State::Closed ? random_hash() : thread_hash(i.address, i.sender);
    change(db_,
           "INSERT INTO fa_inquiries (token, thread_h, record, state, created, updated) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
           std::string_view(i.token), storage::Blob{thread}, storage::Blob{seal(i)},
           state_name(i.state), i.created, i.updated);
}

Inquiry InquiryStore::read(const storage::Statement& st) const {
    Inquiry i;
    i.token = st.column_text(0);
    auto record = box_.open(st.column_blob(1), storage::pack({"fa_inquiries", i.token}));
    auto parts = record ? storage::unpack(*record) : std::nullopt;
    if (!parts || parts->size() != 3) {
        throw storage::StorageError(
            "functional_addresses: an inquiry does not decrypt: wrong key file?");
    }
    i.address = std::move((*parts)[0]);
    i.sender = std::move((*parts)[1]);
    i.claimed_by = std::move((*parts)[2]);
    i.state = parse_state(st.column_text(2));
    i.created = st.column_int64(3);
    i.updated = st.column_int64(4);
    return i;
}

std::optional<Inquiry> InquiryStore::find(std::string_view token) const {
    auto& st = db_.prepare_cached(std::string(select_columns) + "WHERE token = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, token);
    if (!st.step()) {
        return std::nullopt;
    }
    return read(st);
}

std::optional<Inquiry> InquiryStore::active(std::string_view address,
                                            std::string_view sender) const {
    auto& st = db_.prepare_cached(std::string(select_columns) +
                                  "WHERE thread_h = ?1 AND state != 'closed'");
    storage::ScopedReset guard(st);
    st.bind(1, storage::Blob{thread_hash(address, sender)});
    if (!st.step()) {
        return std::nullopt;
    }
    return read(st);
}

std::vector<Inquiry> InquiryStore::list_active() const {
    auto& st = db_.prepare_cached(std::string(select_columns) +
                                  "WHERE state != 'closed' ORDER BY created, token");
    storage::ScopedReset guard(st);
    std::vector<Inquiry> out;
    while (st.step()) {
        out.push_back(read(st));
    }
    return out;
}

Inquiry InquiryStore::create(std::string_view address, std::string_view sender, std::int64_t now,
                             const std::function<bool(std::string_view)>& taken) {
    // 36^4 tokens first; collisions are rare, and each round of failures buys a longer token.
    for (std::size_t length = 4; length <= 6; ++length) {
        for (int attempt = 0; attempt < 16; ++attempt) {
            auto token = random_token(length);
            if (find(token) || (taken && taken(token))) {
                continue;
            }
            Inquiry i{token, std::string(address), std::string(sender), State::Open, {}, now,
                      now};
            insert(i);
            return i;
        }
    }
    throw storage::StorageError("functional_addresses: no free inquiry token");
}

bool InquiryStore::set_claim(const Inquiry& i, std::string_view staff, std::int64_t now,
                             std::string_view condition) {
    Inquiry next = i;
    next.claimed_by = std::string(staff);
    next.state = staff.empty() ? State::Open : State::Claimed;
    // `condition` is fixed SQL from the callers below: the state the row must still be in.
    const std::string sql = "UPDATE fa_inquiries SET state = ?2, record = ?3, updated = ?4 "
                            "WHERE token = ?1 AND " +
                            std::string(condition);
    return change(db_, sql, std::string_view(i.token), state_name(next.state),
                  storage::Blob{seal(next)}, now) == 1;
}

bool InquiryStore::claim(std::string_view token, std::string_view staff, std::int64_t now) {
    // The UPDATE still matches only while the inquiry is open: one winner, even if two claims
    // read the same open row.
    auto i = find(token);
    return i && i->state == State::Open && set_claim(*i, staff, now, "state = 'open'");
}

bool InquiryStore::reassign(std::string_view token, std::string_view from, std::string_view to,
                            std::int64_t now) {
    // Who holds it is sealed, so the check is made here, under the write lock.
    storage::Transaction tx(db_);
    auto i = find(token);
    if (!i || i->state == State::Closed ||
        (i->state == State::Claimed && !from.empty() && i->claimed_by != from)) {
        return false;
    }
    if (!set_claim(*i, to, now, "state != 'closed'")) {
        return false;
    }
    tx.commit();
    return true;
}

bool InquiryStore::close(std::string_view token, std::int64_t now) {
    return change(db_,
                  "UPDATE fa_inquiries SET state = 'closed', thread_h = ?3, updated = ?2 "
                  "WHERE token = ?1 AND state != 'closed'",
                  token, now, storage::Blob{random_hash()}) == 1;
}

bool InquiryStore::touch(std::string_view token, std::int64_t now) {
    try {
        change(db_, "UPDATE fa_inquiries SET updated = ?2 WHERE token = ?1", token, now);
        return true;
    } catch (const storage::StorageError& e) {
        if (!e.busy()) {
            throw;
        }
        return false;
    }
}

std::vector<Inquiry> InquiryStore::all() const {
    auto& st = db_.prepare_cached(std::string(select_columns));
    storage::ScopedReset guard(st);
    std::vector<Inquiry> out;
    while (st.step()) {
        out.push_back(read(st));
    }
    return out;
}

std::size_t InquiryStore::remove_sender(std::string_view sender) {
    // Nothing to select on: open every row (account deletion is rare, closed rows are purged).
    storage::Transaction tx(db_);
    std::size_t removed = 0;
    for (const auto& i : all()) {
        if (i.sender == sender) {
            removed += static_cast<std::size_t>(
                change(db_, "DELETE FROM fa_inquiries WHERE token = ?1", std::string_view(i.token)));
        }
    }
    tx.commit();
    return removed;
}

std::size_t InquiryStore::release_claims(std::string_view staff, std::int64_t now) {
    storage::Transaction tx(db_);
    std::size_t released = 0;
    for (const auto& i : list_active()) {
        if (i.state == State::Claimed && i.claimed_by == staff &&
            set_claim(i, "", now, "state = 'claimed'")) {
            ++released;
        }
    }
    tx.commit();
    return released;
}

std::size_t InquiryStore::purge_closed(std::int64_t cutoff) {
    return static_cast<std::size_t>(
        change(db_, "DELETE FROM fa_inquiries WHERE state = 'closed' AND updated < ?1", cutoff));
}

}  // namespace haven::functional_addresses
