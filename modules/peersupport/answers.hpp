// Outstanding staff requests to members: what a member may answer without a grant.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/core/router.hpp"

namespace haven::peersupport {

// A member without a grant may still answer what a staff resource sent them (an IQ result to a
// version query, an error for a presence it could not take), but nothing else: without this book
// an "answer" addressed to any supporter would carry any text. Each entry is one stanza with an
// id that really went from one staff full JID to one member; an answer consumes it. Bounded in
// count (the oldest entries go first) and in time.
class AnswerBook {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t max_entries = 4096;
    static constexpr std::chrono::seconds lifetime{120};

    // `staff` is the requester's full JID as stamped by the router; `member` the localpart.
    void sent(std::string_view staff, std::string_view member, StanzaKind kind,
              std::string_view id, Clock::time_point now);
    // True (and forgets the entry) if `member`'s stanza of `kind` with `id`, addressed to
    // `staff`, answers an outstanding request.
    bool take(std::string_view staff, std::string_view member, StanzaKind kind,
              std::string_view id, Clock::time_point now);
    std::size_t size() const { return entries_.size(); }

private:
    static std::string key(std::string_view staff, std::string_view member, StanzaKind kind,
                           std::string_view id);
    void expire(Clock::time_point now);

    std::unordered_map<std::string, Clock::time_point> entries_;  // key -> when it was sent
    std::deque<std::pair<Clock::time_point, std::string>> order_;  // oldest first
};

}  // namespace haven::peersupport
