// Login throttling: bounds password guessing per account and per client address (RFC 6120 §13.9.2
// leaves the policy to the server; these are ours).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/core/string_map.hpp"

namespace haven::auth {

class LoginThrottle {
public:
    using Clock = std::chrono::steady_clock;

    struct Config {
        unsigned max_failures_per_account = 5;
        unsigned max_failures_per_address = 20;
        Clock::duration window = std::chrono::seconds(60);   // failures count within this
        Clock::duration lockout = std::chrono::minutes(5);   // refusal after reaching the cap
        std::size_t max_entries = 100'000;                   // per table: accounts, addresses
    };

    explicit LoginThrottle(Config config);

    // False while the account or the address is locked out. Check before running any SASL
    // exchange (and again before declaring success). Unknown names are counted and locked out
    // exactly like real accounts, so answering with temporary-auth-failure (as c2s does) does
    // not reveal whether an account exists.
    bool allowed(std::string_view account, std::string_view address, Clock::time_point now) const;

    // `address` is whatever key the caller throttles by, e.g. an IPv4 address or an IPv6 /64.
    void record_failure(std::string_view account, std::string_view address, Clock::time_point now);

    // Clears the account's failures only. The address keeps its count: otherwise an attacker
    // holding one valid account could reset its per-address budget between guesses at others.
    void record_success(std::string_view account, std::string_view address);

    // Drops entries that can no longer affect a decision. Cheap; call it from a periodic timer.
    void prune(Clock::time_point now);

    std::size_t size() const { return accounts_.size() + addresses_.size(); }

private:
    struct Entry {
        std::string key;
        unsigned failures = 0;
        Clock::time_point window_start;
        Clock::time_point locked_until;
        Clock::time_point last_failure;
    };

    // Least recently failed first, so both pruning and eviction work from the front in O(1).
    struct Table {
        std::list<Entry> order;
        StringMap<std::list<Entry>::iterator> index;

        std::size_t size() const { return index.size(); }
    };

    bool blocked(const Table& table, std::string_view key, unsigned max,
                 Clock::time_point now) const;
    void fail(Table& table, std::string_view key, unsigned max, Clock::time_point now);
    void prune(Table& table, Clock::time_point now);

    Config config_;
    Table accounts_;
    Table addresses_;
};

}  // namespace haven::auth
