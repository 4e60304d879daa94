// XEP-0198 §4 acknowledgement arithmetic: the stanzas sent and not yet acknowledged, counted
// modulo 2^32 as the XEP requires, so that 'h' wraps around without losing the count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

namespace haven::xeps {

class UnackedQueue {
public:
    struct Item {
        std::string bytes;  // as written to the stream (resent as they are)
        bool reroute;       // a message to route again if it is never acknowledged
    };
    enum class Ack { Ok, TooHigh };

    // `base`: the count the first queued stanza follows (0 at <enable/>; tests start near
    // 2^32 to check the wrap-around).
    explicit UnackedQueue(std::uint32_t base = 0) : acked_(base) {}

    void push(std::string bytes, bool reroute) {
        bytes_ += bytes.size();
        items_.push_back({std::move(bytes), reroute});
    }
    // The peer handled `h` stanzas in all (mod 2^32): drops what that covers. An 'h' behind
    // the last one is an old, repeated ack (nothing to drop); one ahead of what was sent is a
    // protocol error (§4: the stream ends with undefined-condition).
    Ack ack(std::uint32_t h) {
        const std::uint32_t newly = h - acked_;  // modulo 2^32
        if (newly > items_.size()) {
            if (acked_ - h < (1u << 31)) {
                return Ack::Ok;  // an ack older than one already seen: nothing new
            }
            return Ack::TooHigh;
        }
        for (std::uint32_t i = 0; i < newly; ++i) {
            bytes_ -= items_.front().bytes.size();
            items_.pop_front();
        }
        acked_ = h;
        return Ack::Ok;
    }
    // Whether ack(h) would be accepted (checked before a resumption commits to anything).
    bool acceptable(std::uint32_t h) const {
        const std::uint32_t newly = h - acked_;
        return newly <= items_.size() || acked_ - h < (1u << 31);
    }
    // The count the peer should report once it has handled everything sent so far.
    std::uint32_t sent_count() const { return acked_ + static_cast<std::uint32_t>(items_.size()); }
    std::uint32_t acked() const { return acked_; }
    std::size_t size() const { return items_.size(); }
    std::size_t bytes() const { return bytes_; }
    const std::deque<Item>& items() const { return items_; }
    std::deque<Item> take() {
        bytes_ = 0;
        return std::exchange(items_, {});
    }

private:
    std::uint32_t acked_;
    std::deque<Item> items_;
    std::size_t bytes_ = 0;
};

}  // namespace haven::xeps
