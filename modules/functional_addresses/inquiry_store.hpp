// InquiryStore: the inquiries of functional addresses and their state, in SQLite.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::functional_addresses {

enum class State { Open, Claimed, Closed };
std::string_view state_name(State s);

struct Inquiry {
    std::string token;    // [a-z0-9]{4,6}; the inquiry's JID is <address>+<token>@domain
    std::string address;  // localpart of the functional address
    std::string sender;   // bare JID of the person who wrote to the address
    State state = State::Open;
    std::string claimed_by;    // bare JID of the staff member handling it ("" while open)
    std::int64_t created = 0;  // unix seconds
    std::int64_t updated = 0;
};

// At rest an inquiry is its token, state and times, a keyed hash that finds the active inquiry
// of (address, sender), and the sealed (address, sender, claimed_by): the database alone does
// not say who wrote to which address or who took it.
class InquiryStore {
public:
    // Applies the module's own migrations ("functional_addresses" component); `box` must
    // outlive the store.
    InquiryStore(storage::Database& db, const storage::SecretBox& box);

    std::optional<Inquiry> find(std::string_view token) const;
    // The open or claimed inquiry of `sender` at `address`, if any (at most one exists).
    std::optional<Inquiry> active(std::string_view address, std::string_view sender) const;
    // Every open or claimed inquiry, oldest first.
    std::vector<Inquiry> list_active() const;

    // A new open inquiry with a fresh random token; `taken(token)` may veto tokens (e.g. when
    // an account "<address>+<token>" exists). Fails (throws) only if no token can be found.
    Inquiry create(std::string_view address, std::string_view sender, std::int64_t now,
                   const std::function<bool(std::string_view token)>& taken);
    // Open → claimed by `staff`. True for exactly one caller per inquiry: the UPDATE only
    // matches while the inquiry is still open, so concurrent claims resolve to one winner.
    bool claim(std::string_view token, std::string_view staff, std::int64_t now);
    // Open or claimed (by `from`, or by anyone when `from` is empty) → claimed by `to`.
    bool reassign(std::string_view token, std::string_view from, std::string_view to,
                  std::int64_t now);
    // Open or claimed → closed. True when it changed.
    bool close(std::string_view token, std::int64_t now);
    // Records activity (the inactivity expiry counts from it). Best effort: false, and nothing
    // thrown, while another process holds the database; a message must not be refused only
    // because its time could not be written, and the next one writes it.
    bool touch(std::string_view token, std::int64_t now);

    // Account deletion: the sender's inquiries go; a staff member's claims become open again.
    std::size_t remove_sender(std::string_view sender);
    std::size_t release_claims(std::string_view staff, std::int64_t now);
    // Data minimisation: closed inquiries older than `cutoff` are deleted.
    std::size_t purge_closed(std::int64_t cutoff);

private:
    std::string thread_hash(std::string_view address, std::string_view sender) const;
    std::string seal(const Inquiry& i) const;
    Inquiry read(const storage::Statement& st) const;
    void insert(const Inquiry& i);
    std::vector<Inquiry> all() const;
    // Writes `staff` as the claimer ("" = open again) if the row still meets `condition`.
    bool set_claim(const Inquiry& i, std::string_view staff, std::int64_t now,
                   std::string_view condition);
    void seal_v1_rows();

    storage::Database& db_;
    const storage::SecretBox& box_;
};

// 4 random characters of [a-z0-9] (libsodium), more after repeated collisions.
std::string random_token(std::size_t length);

}  // namespace haven::functional_addresses
