// Clock: the server's one notion of wall-clock time, so that tests can move it.
#pragma once

#include <chrono>
#include <cstdint>

namespace haven {

// Unix seconds for timestamps, expiry and schedules. Steady time for timeouts stays with
// std::chrono::steady_clock where it is used. The offset exists for tests (a meeting window,
// history by age) that must not sleep; the running server never sets it.
class Clock {
public:
    std::int64_t unix_seconds() const {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() +
               offset_;
    }
    void advance(std::chrono::seconds by) { offset_ += by.count(); }

private:
    std::int64_t offset_ = 0;
};

}  // namespace haven
