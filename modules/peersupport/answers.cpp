// Outstanding staff requests to members (see answers.hpp).
#include "modules/peersupport/answers.hpp"

namespace haven::peersupport {

std::string AnswerBook::key(std::string_view staff, std::string_view member, StanzaKind kind,
                            std::string_view id) {
    // NUL cannot occur in a JID or an XML attribute value, so the parts cannot run together.
    std::string k;
    k.reserve(staff.size() + member.size() + id.size() + 4);
    k += staff;
    k += '\0';
    k += member;
    k += '\0';
    k += static_cast<char>('0' + static_cast<int>(kind));
    k += id;
    return k;
}

void AnswerBook::expire(Clock::time_point now) {
    while (!order_.empty() &&
           (order_.front().first + lifetime <= now || order_.size() > max_entries)) {
        auto it = entries_.find(order_.front().second);
        // A key sent again later has a newer time: only the matching record removes it.
        if (it != entries_.end() && it->second == order_.front().first) {
            entries_.erase(it);
        }
        order_.pop_front();
    }
}

void AnswerBook::sent(std::string_view staff, std::string_view member, StanzaKind kind,
                      std::string_view id, Clock::time_point now) {
    if (id.empty() || id.size() > 256) {
        return;  // nothing an answer could name (or not worth keeping)
    }
    auto k = key(staff, member, kind, id);
    entries_[k] = now;
    order_.emplace_back(now, std::move(k));
    expire(now);
}

bool AnswerBook::take(std::string_view staff, std::string_view member, StanzaKind kind,
                      std::string_view id, Clock::time_point now) {
    expire(now);
    if (id.empty()) {
        return false;
    }
    return entries_.erase(key(staff, member, kind, id)) == 1;
}

}  // namespace haven::peersupport
