// SessionRegistry: the bound resources of each local account.
#include "server/core/session_registry.hpp"

#include <algorithm>

namespace haven {

SessionPtr SessionRegistry::bind(const SessionPtr& session) {
    auto& list = by_user_[session->jid().local()];
    SessionPtr replaced;
    for (auto it = list.begin(); it != list.end(); ++it) {
        if ((*it)->jid().resource() == session->jid().resource()) {
            replaced = *it;
            list.erase(it);
            --count_;
            break;
        }
    }
    list.push_back(session);
    ++count_;
    return replaced;
}

void SessionRegistry::unbind(const Session& session) {
    auto it = by_user_.find(session.jid().local());
    if (it == by_user_.end()) {
        return;
    }
    auto& list = it->second;
    auto before = list.size();
    std::erase_if(list, [&](const SessionPtr& s) { return s.get() == &session; });
    count_ -= before - list.size();
    if (list.empty()) {
        by_user_.erase(it);
    }
}

void SessionRegistry::replace(const Session& old, const SessionPtr& now) {
    auto it = by_user_.find(old.jid().local());
    if (it == by_user_.end()) {
        return;
    }
    for (auto& s : it->second) {
        if (s.get() == &old) {
            s = now;
            return;
        }
    }
}

Session* SessionRegistry::find(const Jid& full) const {
    auto it = by_user_.find(full.local());
    if (it == by_user_.end()) {
        return nullptr;
    }
    for (const auto& s : it->second) {
        if (s->jid().resource() == full.resource()) {
            return s.get();
        }
    }
    return nullptr;
}

const std::vector<SessionPtr>& SessionRegistry::of(std::string_view localpart) const {
    static const std::vector<SessionPtr> none;
    auto it = by_user_.find(localpart);
    return it == by_user_.end() ? none : it->second;
}

std::vector<Session*> SessionRegistry::message_targets(std::string_view localpart) const {
    std::vector<Session*> out;
    int best = 0;
    for (const auto& s : of(localpart)) {
        if (!s->available || s->priority < 0) {
            continue;
        }
        if (out.empty() || s->priority > best) {
            out.clear();
            best = s->priority;
        }
        if (s->priority == best) {
            out.push_back(s.get());
        }
    }
    return out;
}

std::vector<Session*> SessionRegistry::available(std::string_view localpart) const {
    std::vector<Session*> out;
    for (const auto& s : of(localpart)) {
        if (s->available) {
            out.push_back(s.get());
        }
    }
    return out;
}

}  // namespace haven
