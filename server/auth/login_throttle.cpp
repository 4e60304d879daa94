// Login throttling: fixed windows of failures per account and per address, with a lockout.
#include "server/auth/login_throttle.hpp"

#include <algorithm>

namespace haven::auth {

LoginThrottle::LoginThrottle(Config config) : config_(config) {}

bool LoginThrottle::allowed(std::string_view account, std::string_view address,
                            Clock::time_point now) const {
    return !blocked(accounts_, account, config_.max_failures_per_account, now) &&
           !blocked(addresses_, address, config_.max_failures_per_address, now);
}

void LoginThrottle::record_failure(std::string_view account, std::string_view address,
                                   Clock::time_point now) {
    fail(accounts_, account, config_.max_failures_per_account, now);
    fail(addresses_, address, config_.max_failures_per_address, now);
}

void LoginThrottle::record_success(std::string_view account, std::string_view /*address*/) {
    if (auto it = accounts_.index.find(account); it != accounts_.index.end()) {
        accounts_.order.erase(it->second);
        accounts_.index.erase(it);
    }
}

void LoginThrottle::prune(Clock::time_point now) {
    prune(accounts_, now);
    prune(addresses_, now);
}

bool LoginThrottle::blocked(const Table& table, std::string_view key, unsigned max,
                            Clock::time_point now) const {
    const auto it = table.index.find(key);
    if (it == table.index.end()) {
        return false;
    }
    const Entry& e = *it->second;
    return now < e.locked_until || (e.failures >= max && now - e.window_start < config_.window);
}

void LoginThrottle::fail(Table& table, std::string_view key, unsigned max,
                         Clock::time_point now) {
    auto it = table.index.find(key);
    if (it == table.index.end()) {
        // Bounded memory: a flood of distinct names or addresses evicts the longest-idle
        // entries instead of growing without limit. Accounts and addresses live in separate
        // tables so a flood of addresses cannot evict account lockouts.
        prune(table, now);
        while (table.size() >= std::max<std::size_t>(config_.max_entries, 1)) {
            table.index.erase(table.order.front().key);
            table.order.pop_front();
        }
        table.order.push_back(Entry{std::string(key), 0, now, {}, now});
        it = table.index.emplace(table.order.back().key, std::prev(table.order.end())).first;
    } else {
        table.order.splice(table.order.end(), table.order, it->second);  // now most recent
    }
    Entry& e = *it->second;
    if (now - e.window_start >= config_.window) {
        e.failures = 0;
        e.window_start = now;
    }
    e.last_failure = now;
    if (++e.failures >= max) {
        e.locked_until = std::max(e.locked_until, now + config_.lockout);
    }
}

void LoginThrottle::prune(Table& table, Clock::time_point now) {
    // An entry matters until both its window and its lockout have run out; both are measured
    // from its last failure at the latest, and the list is ordered by last failure.
    const auto keep = std::max(config_.window, config_.lockout);
    while (!table.order.empty() && now - table.order.front().last_failure >= keep) {
        table.index.erase(table.order.front().key);
        table.order.pop_front();
    }
}

}  // namespace haven::auth
