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
constexpr std::array<std::string_view, 1> migrations{
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
    CREATE INDEX fa_inquiries_claimed_by ON fa_inquiries(claimed_by);)sql",
};

State parse_state(std::string_view s) {
    if (s == "claimed") {
        return State::Claimed;
    }
    if (s == "closed") {
        return State::Closed;
    }
    return State::Open;
}

Inquiry read(const storage::Statement& st) {
    Inquiry i;
    i.token = st.column_text(0);
    i.address = st.column_text(1);
    i.sender = st.column_text(2);
    i.state = parse_state(st.column_text(3));
    i.claimed_by = st.column_text(4);
    i.created = st.column_int64(5);
    i.updated = st.column_int64(6);
    return i;
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

InquiryStore::InquiryStore(storage::Database& db) : db_(db) {
    db_.migrate("functional_addresses", migrations);
}

std::optional<Inquiry> InquiryStore::find(std::string_view token) const {
    auto& st = db_.prepare_cached(
        "SELECT token, address, sender, state, claimed_by, created, updated "
        "FROM fa_inquiries WHERE token = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, token);
    if (!st.step()) {
        return std::nullopt;
    }
    return read(st);
}

std::optional<Inquiry> InquiryStore::active(std::string_view address,
                                            std::string_view sender) const {
    auto& st = db_.prepare_cached(
        "SELECT token, address, sender, state, claimed_by, created, updated "
        "FROM fa_inquiries WHERE address = ?1 AND sender = ?2 AND state != 'closed'");
    storage::ScopedReset guard(st);
    st.bind(1, address).bind(2, sender);
    if (!st.step()) {
        return std::nullopt;
    }
    return read(st);
}

std::vector<Inquiry> InquiryStore::list_active() const {
    auto& st = db_.prepare_cached(
        "SELECT token, address, sender, state, claimed_by, created, updated "
        "FROM fa_inquiries WHERE state != 'closed' ORDER BY created, token");
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
            change(db_,
                   "INSERT INTO fa_inquiries (token, address, sender, state, claimed_by, "
                   "created, updated) VALUES (?1, ?2, ?3, 'open', NULL, ?4, ?4)",
                   std::string_view(token), address, sender, now);
            return Inquiry{token, std::string(address), std::string(sender), State::Open, {}, now,
                           now};
        }
    }
    throw storage::StorageError("functional_addresses: no free inquiry token");
}

bool InquiryStore::claim(std::string_view token, std::string_view staff, std::int64_t now) {
    return change(db_,
                  "UPDATE fa_inquiries SET state = 'claimed', claimed_by = ?2, updated = ?3 "
                  "WHERE token = ?1 AND state = 'open'",
                  token, staff, now) == 1;
}

bool InquiryStore::reassign(std::string_view token, std::string_view from, std::string_view to,
                            std::int64_t now) {
    return change(db_,
                  "UPDATE fa_inquiries SET state = 'claimed', claimed_by = ?3, updated = ?4 "
                  "WHERE token = ?1 AND (state = 'open' OR (state = 'claimed' AND "
                  "(?2 = '' OR claimed_by = ?2)))",
                  token, from, to, now) == 1;
}

bool InquiryStore::close(std::string_view token, std::int64_t now) {
    return change(db_,
                  "UPDATE fa_inquiries SET state = 'closed', updated = ?2 "
                  "WHERE token = ?1 AND state != 'closed'",
                  token, now) == 1;
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

std::size_t InquiryStore::remove_sender(std::string_view sender) {
    return static_cast<std::size_t>(
        change(db_, "DELETE FROM fa_inquiries WHERE sender = ?1", sender));
}

std::size_t InquiryStore::release_claims(std::string_view staff, std::int64_t now) {
    return static_cast<std::size_t>(
        change(db_,
               "UPDATE fa_inquiries SET state = 'open', claimed_by = NULL, updated = ?2 "
               "WHERE claimed_by = ?1 AND state = 'claimed'",
               staff, now));
}

std::size_t InquiryStore::purge_closed(std::int64_t cutoff) {
    return static_cast<std::size_t>(
        change(db_, "DELETE FROM fa_inquiries WHERE state = 'closed' AND updated < ?1", cutoff));
}

}  // namespace haven::functional_addresses
