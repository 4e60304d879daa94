// SessionRegistry: the bound resources of each local account.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/core/session.hpp"
#include "server/core/string_map.hpp"

namespace haven {

class SessionRegistry {
public:
    // Binds `session` (its JID already set). Returns the session it replaces when the resource
    // was taken (RFC 6120 §7.7.2.2: the server terminates the old session with <conflict/>).
    SessionPtr bind(const SessionPtr& session);
    void unbind(const Session& session);
    // Puts `now` where `old` was (XEP-0198 resumption: the same resource, a new stream).
    void replace(const Session& old, const SessionPtr& now);

    Session* find(const Jid& full) const;
    // All bound sessions of an account (empty when offline).
    const std::vector<SessionPtr>& of(std::string_view localpart) const;
    // Available resources that get a message to the bare JID (RFC 6121 §8.5.2.1.1): those
    // with the highest non-negative priority.
    std::vector<Session*> message_targets(std::string_view localpart) const;
    std::vector<Session*> available(std::string_view localpart) const;
    std::size_t count() const { return count_; }
    template <class F>
    void for_each(F&& f) const {
        for (const auto& [local, list] : by_user_) {
            for (const auto& s : list) {
                f(*s);
            }
        }
    }

private:
    StringMap<std::vector<SessionPtr>> by_user_;
    std::size_t count_ = 0;
};

}  // namespace haven
