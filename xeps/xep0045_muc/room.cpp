// XEP-0045 rooms as data and rules (see room.hpp).
#include "xeps/xep0045_muc/room.hpp"

#include <algorithm>

namespace haven::xeps::muc {

std::string_view name(Affiliation a) {
    switch (a) {
        case Affiliation::Owner: return "owner";
        case Affiliation::Admin: return "admin";
        case Affiliation::Member: return "member";
        case Affiliation::None: return "none";
        case Affiliation::Outcast: return "outcast";
    }
    return "none";
}

std::string_view name(Role r) {
    switch (r) {
        case Role::Moderator: return "moderator";
        case Role::Participant: return "participant";
        case Role::Visitor: return "visitor";
        case Role::None: return "none";
    }
    return "none";
}

std::optional<Affiliation> parse_affiliation(std::string_view s) {
    for (auto a : {Affiliation::Owner, Affiliation::Admin, Affiliation::Member, Affiliation::None,
                   Affiliation::Outcast}) {
        if (name(a) == s) {
            return a;
        }
    }
    return std::nullopt;
}

std::optional<Role> parse_role(std::string_view s) {
    for (auto r : {Role::Moderator, Role::Participant, Role::Visitor, Role::None}) {
        if (name(r) == s) {
            return r;
        }
    }
    return std::nullopt;
}

int rank(Affiliation a) {
    switch (a) {
        case Affiliation::Owner: return 4;
        case Affiliation::Admin: return 3;
        case Affiliation::Member: return 2;
        case Affiliation::None: return 1;
        case Affiliation::Outcast: return 0;
    }
    return 0;
}

int rank(Role r) {
    switch (r) {
        case Role::Moderator: return 3;
        case Role::Participant: return 2;
        case Role::Visitor: return 1;
        case Role::None: return 0;
    }
    return 0;
}

std::string_view name(PmPolicy p) {
    switch (p) {
        case PmPolicy::Anyone: return "anyone";
        case PmPolicy::Participants: return "participants";
        case PmPolicy::Moderators: return "moderators";
        case PmPolicy::None: return "none";
    }
    return "anyone";
}

std::optional<PmPolicy> parse_pm_policy(std::string_view s) {
    for (auto p : {PmPolicy::Anyone, PmPolicy::Participants, PmPolicy::Moderators, PmPolicy::None}) {
        if (name(p) == s) {
            return p;
        }
    }
    return std::nullopt;
}

Affiliation Room::affiliation(const Jid& bare) const {
    auto it = affiliations_.find(bare);
    return it == affiliations_.end() ? Affiliation::None : it->second;
}

void Room::set_affiliation(const Jid& bare, Affiliation a) {
    if (a == Affiliation::None) {
        affiliations_.erase(bare);
    } else {
        affiliations_[bare] = a;
    }
}

std::vector<Jid> Room::with_affiliation(Affiliation a) const {
    std::vector<Jid> out;
    for (const auto& [jid, aff] : affiliations_) {
        if (aff == a) {
            out.push_back(jid);
        }
    }
    return out;
}

Occupant* Room::by_nick(std::string_view nick) {
    auto it = occupants_.find(nick);
    return it == occupants_.end() ? nullptr : &it->second;
}

const Occupant* Room::by_nick(std::string_view nick) const {
    auto it = occupants_.find(nick);
    return it == occupants_.end() ? nullptr : &it->second;
}

Occupant* Room::by_session(const Jid& full) {
    for (auto& [nick, o] : occupants_) {
        if (o.sessions.contains(full)) {
            return &o;
        }
    }
    return nullptr;
}

Occupant* Room::by_bare(const Jid& bare) {
    for (auto& [nick, o] : occupants_) {
        if (o.bare == bare) {
            return &o;
        }
    }
    return nullptr;
}

JoinError Room::may_join(const Jid& who, std::string_view nick, std::string_view password,
                         std::size_t service_max) const {
    const auto aff = affiliation(who.bare());
    if (const auto* o = by_nick(nick); o && o->bare != who.bare()) {
        return JoinError::NickConflict;  // §7.2.9
    }
    if (const auto* o = by_nick(nick); o && o->sessions.contains(who)) {
        return JoinError::None;  // already in: a presence update
    }
    if (locked_ && aff != Affiliation::Owner) {
        return JoinError::Locked;  // §10.1.1: a locked room does not exist for others yet
    }
    if (aff == Affiliation::Outcast) {
        return JoinError::Banned;  // §7.2.7
    }
    if (config_.members_only && rank(aff) < rank(Affiliation::Member)) {
        return JoinError::MembersOnly;  // §7.2.6
    }
    if (!config_.password.empty() && password != config_.password &&
        rank(aff) < rank(Affiliation::Admin)) {
        return JoinError::Password;  // §7.2.5 (owners and admins are let in, as Prosody does)
    }
    const auto* same_account = by_nick(nick);
    std::size_t limit = config_.max_users == 0 ? service_max : std::min(config_.max_users, service_max);
    if (!same_account && occupants_.size() >= limit && rank(aff) < rank(Affiliation::Admin)) {
        return JoinError::Full;  // §7.2.10; admins and owners still get in
    }
    return JoinError::None;
}

Role Room::default_role(Affiliation a) const {
    switch (a) {
        case Affiliation::Owner:
        case Affiliation::Admin: return Role::Moderator;
        case Affiliation::Member: return Role::Participant;
        case Affiliation::None: return config_.moderated ? Role::Visitor : Role::Participant;
        case Affiliation::Outcast: return Role::None;
    }
    return Role::None;
}

std::pair<Occupant*, bool> Room::add_session(const Jid& full, std::string nick, Element presence,
                                             std::string occupant_id) {
    auto [it, fresh] = occupants_.try_emplace(nick);
    auto& o = it->second;
    if (fresh) {
        o.nick = std::move(nick);
        o.bare = full.bare();
        o.role = default_role(affiliation(o.bare));
        o.occupant_id = std::move(occupant_id);
    }
    o.sessions.insert(full);
    o.latest = full;
    o.presence = std::move(presence);
    return {&o, fresh};
}

bool Room::remove_session(const Jid& full) {
    for (auto it = occupants_.begin(); it != occupants_.end(); ++it) {
        auto& o = it->second;
        if (o.sessions.erase(full) > 0) {
            if (o.sessions.empty()) {
                occupants_.erase(it);
                return true;
            }
            if (o.latest == full) {
                o.latest = *o.sessions.begin();
            }
            return false;
        }
    }
    return false;
}

void Room::remove_occupant(std::string_view nick) {
    if (auto it = occupants_.find(nick); it != occupants_.end()) {
        occupants_.erase(it);
    }
}

Occupant& Room::rename(std::string_view from, std::string to) {
    auto node = occupants_.extract(occupants_.find(from));
    node.key() = to;
    node.mapped().nick = std::move(to);
    auto it = occupants_.insert(std::move(node)).position;
    return it->second;
}

// XEP-0045 §8.2-§8.5 (moderators: kick and voice for participants and visitors), §9.6-§9.7 and
// §10.8-§10.9 (moderator role: admins and owners). Nobody acts on someone with a higher
// affiliation, and moderators among admins/owners cannot be kicked or muted (§8.2 and §8.4:
// "not-allowed" for an admin or owner).
bool Room::may_set_role(Affiliation actor_aff, Role actor_role, Affiliation target_aff,
                        Role target_role, Role to) {
    if (actor_role != Role::Moderator) {
        return false;
    }
    if (rank(target_aff) >= rank(Affiliation::Admin) || rank(target_aff) > rank(actor_aff)) {
        // Admins and owners keep their moderator role while they are admins or owners, and
        // nobody acts on someone whose affiliation is above their own (§8.2: a moderator who
        // is no member cannot kick a member).
        return false;
    }
    if (to == Role::Moderator || target_role == Role::Moderator) {
        return rank(actor_aff) >= rank(Affiliation::Admin);
    }
    return true;
}

// §9 (admins: member, none, outcast for those below admin) and §10 (owners: anything).
bool Room::may_set_affiliation(Affiliation actor, Affiliation target, Affiliation to) {
    if (actor == Affiliation::Owner) {
        return true;
    }
    if (actor != Affiliation::Admin) {
        return false;
    }
    return rank(target) < rank(Affiliation::Admin) && rank(to) < rank(Affiliation::Admin);
}

bool Room::may_private_message(Role sender) const {
    switch (config_.allow_pm) {
        case PmPolicy::Anyone: return true;
        case PmPolicy::Participants: return rank(sender) >= rank(Role::Participant);
        case PmPolicy::Moderators: return sender == Role::Moderator;
        case PmPolicy::None: return false;
    }
    return false;
}

void Room::add_history(Element message, std::int64_t now) {
    if (config_.history_length == 0) {
        history_.clear();
        history_bytes_ = 0;
        return;
    }
    const auto chars = xml::serialize(message).size();
    history_bytes_ += chars;
    history_.push_back(HistoryEntry{std::move(message), now, chars});
    while (history_.size() > config_.history_length || history_bytes_ > max_history_bytes) {
        history_bytes_ -= history_.front().chars;
        history_.pop_front();
    }
}

std::vector<const HistoryEntry*> Room::history(const HistoryRequest& req, std::int64_t now) const {
    std::vector<const HistoryEntry*> out;
    std::size_t chars = 0;
    // Newest first, so the limits keep the latest messages; reversed at the end.
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
        if (req.max_stanzas && out.size() >= *req.max_stanzas) {
            break;
        }
        if (req.seconds && it->stamp < now - *req.seconds) {
            break;
        }
        if (req.since && it->stamp < *req.since) {
            break;
        }
        if (req.max_chars && chars + it->chars > *req.max_chars) {
            break;
        }
        chars += it->chars;
        out.push_back(&*it);
    }
    std::reverse(out.begin(), out.end());
    return out;
}

}  // namespace haven::xeps::muc
