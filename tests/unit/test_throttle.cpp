// LoginThrottle: failure windows, lockouts and the memory bound, on a manual clock.
#include "server/auth/login_throttle.hpp"

#include <doctest/doctest.h>

#include <string>

using haven::auth::LoginThrottle;
using namespace std::chrono_literals;

namespace {

LoginThrottle::Config small_config() {
    LoginThrottle::Config c;
    c.max_failures_per_account = 3;
    c.max_failures_per_address = 5;
    c.window = 60s;
    c.lockout = 300s;
    return c;
}

}  // namespace

TEST_CASE("defaults match the documented policy") {
    const LoginThrottle::Config c;
    CHECK(c.max_failures_per_account == 5);
    CHECK(c.max_failures_per_address == 20);
    CHECK(c.window == std::chrono::seconds(60));
    CHECK(c.max_entries == 100'000);
}

TEST_CASE("per-account failures lock the account for the lockout period") {
    LoginThrottle t(small_config());
    auto now = LoginThrottle::Clock::time_point{} + 1000h;
    CHECK(t.allowed("alice", "10.0.0.1", now));
    t.record_failure("alice", "10.0.0.1", now);
    t.record_failure("alice", "10.0.0.2", now + 1s);
    CHECK(t.allowed("alice", "10.0.0.3", now + 2s));
    t.record_failure("alice", "10.0.0.3", now + 2s);
    CHECK_FALSE(t.allowed("alice", "10.0.0.9", now + 3s));  // from any address
    CHECK(t.allowed("bob", "10.0.0.1", now + 3s));          // other accounts unaffected
    CHECK_FALSE(t.allowed("alice", "10.0.0.9", now + 2s + 299s));
    CHECK(t.allowed("alice", "10.0.0.9", now + 2s + 300s));
}

TEST_CASE("failures older than the window are forgotten") {
    LoginThrottle t(small_config());
    auto now = LoginThrottle::Clock::time_point{} + 1000h;
    t.record_failure("alice", "a", now);
    t.record_failure("alice", "a", now + 30s);
    t.record_failure("alice", "a", now + 61s);  // new window: count restarts at 1
    CHECK(t.allowed("alice", "a", now + 62s));
    t.record_failure("alice", "a", now + 70s);
    CHECK(t.allowed("alice", "a", now + 71s));
    t.record_failure("alice", "a", now + 80s);
    CHECK_FALSE(t.allowed("alice", "a", now + 81s));
}

TEST_CASE("per-address failures across many accounts lock the address") {
    LoginThrottle t(small_config());
    auto now = LoginThrottle::Clock::time_point{} + 1000h;
    for (int i = 0; i < 5; ++i) {
        CHECK(t.allowed("user" + std::to_string(i), "192.0.2.7", now));
        t.record_failure("user" + std::to_string(i), "192.0.2.7", now);
    }
    CHECK_FALSE(t.allowed("fresh", "192.0.2.7", now + 1s));
    CHECK(t.allowed("fresh", "192.0.2.8", now + 1s));
}

TEST_CASE("success clears the account but not the address") {
    LoginThrottle t(small_config());
    auto now = LoginThrottle::Clock::time_point{} + 1000h;
    t.record_failure("alice", "x", now);
    t.record_failure("alice", "x", now);
    t.record_success("alice", "x");
    t.record_failure("alice", "x", now + 1s);
    t.record_failure("alice", "x", now + 1s);
    CHECK(t.allowed("alice", "y", now + 2s));  // 2 since success, cap is 3
    t.record_failure("alice", "x", now + 2s);  // address now at 5 failures
    CHECK_FALSE(t.allowed("bob", "x", now + 3s));
}

TEST_CASE("lockout of zero still refuses until the window ends") {
    auto c = small_config();
    c.lockout = 0s;
    LoginThrottle t(c);
    auto now = LoginThrottle::Clock::time_point{} + 1000h;
    for (int i = 0; i < 3; ++i) {
        t.record_failure("alice", "a", now);
    }
    CHECK_FALSE(t.allowed("alice", "a", now + 59s));
    CHECK(t.allowed("alice", "a", now + 60s));
}

TEST_CASE("prune drops entries that can no longer matter") {
    LoginThrottle t(small_config());
    auto now = LoginThrottle::Clock::time_point{} + 1000h;
    t.record_failure("alice", "a", now);
    t.record_failure("bob", "b", now + 100s);
    CHECK(t.size() == 4);
    t.prune(now + 299s);
    CHECK(t.size() == 4);
    t.prune(now + 300s);  // alice/a: window and lockout both long gone
    CHECK(t.size() == 2);
    t.prune(now + 400s);
    CHECK(t.size() == 0);
}

TEST_CASE("memory stays bounded, evicting the longest idle entries") {
    auto c = small_config();
    c.max_entries = 100;
    LoginThrottle t(c);
    auto now = LoginThrottle::Clock::time_point{} + 1000h;
    for (int i = 0; i < 3; ++i) {
        t.record_failure("victim", "attacker", now);
    }
    CHECK_FALSE(t.allowed("victim", "elsewhere", now));
    // A flood of fresh addresses cannot evict the account's lockout: separate tables.
    for (int i = 0; i < 1000; ++i) {
        t.record_failure("victim", "addr" + std::to_string(i), now + 1s);
    }
    CHECK(t.size() <= 200);
    CHECK_FALSE(t.allowed("victim", "elsewhere", now + 2s));
    // A flood of account names is bounded too; the oldest goes first.
    for (int i = 0; i < 1000; ++i) {
        t.record_failure("name" + std::to_string(i), "x", now + 3s);
    }
    CHECK(t.size() <= 200);
    CHECK(t.allowed("victim", "elsewhere", now + 4s));  // evicted: the documented trade-off
}
