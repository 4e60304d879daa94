// XEP-0045 rooms as data and rules: affiliations, roles, occupants, configuration, history.
// No I/O here: the service (service.hpp) turns these decisions into stanzas, so the privilege
// tables of XEP-0045 §5 are unit-tested on their own (tests/unit/test_muc_room.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "server/xml/element.hpp"
#include "server/xmpp/jid.hpp"

namespace haven::xeps::muc {

using xml::Element;

// Affiliations kept per room (members of a big group, bans): a bound on the record's size.
inline constexpr std::size_t max_affiliations = 10000;
// A room's history in bytes (as serialised), besides its count: a few big messages must not
// make every room hold megabytes.
inline constexpr std::size_t max_history_bytes = 256 * 1024;

// XEP-0045 §5.2, highest first.
enum class Affiliation { Owner, Admin, Member, None, Outcast };
// XEP-0045 §5.1, highest first.
enum class Role { Moderator, Participant, Visitor, None };

std::string_view name(Affiliation a);
std::string_view name(Role r);
std::optional<Affiliation> parse_affiliation(std::string_view s);
std::optional<Role> parse_role(std::string_view s);
// Higher affiliations compare greater: rank(Owner) > rank(Admin) > ... > rank(Outcast).
int rank(Affiliation a);
int rank(Role r);

// Who may send private messages inside the room (muc#roomconfig_allowpm).
enum class PmPolicy { Anyone, Participants, Moderators, None };
std::string_view name(PmPolicy p);
std::optional<PmPolicy> parse_pm_policy(std::string_view s);

struct RoomConfig {
    std::string name;
    std::string description;
    std::string lang;
    bool persistent = false;
    bool public_room = true;
    bool members_only = false;
    bool moderated = false;
    bool non_anonymous = false;  // muc#roomconfig_whois = anyone
    bool allow_invites = false;  // occupants below admin may invite (mediated invitations)
    bool change_subject = false; // participants may set the subject
    PmPolicy allow_pm = PmPolicy::Anyone;
    std::string password;        // empty: not password-protected
    std::size_t max_users = 0;   // 0: the service's limit
    std::size_t history_length = 20;
};

// One nick in the room. Several sessions of the same account may share it (XEP-0045 §7.2.9
// leaves this to the service; phone and desktop in one room are the common case): the room
// sees one occupant, each session gets every stanza.
struct Occupant {
    std::string nick;
    Jid bare;                 // the real bare JID
    std::set<Jid> sessions;   // real full JIDs joined as this nick
    Jid latest;               // the session that sent `presence` (its JID is the item's jid)
    Element presence;         // the client's payload (show, status, caps) as last sent
    Role role = Role::Participant;
    std::string occupant_id;  // XEP-0421, stable per (room, account)
};

struct HistoryEntry {
    Element message;  // as broadcast (from room/nick), without delay
    std::int64_t stamp = 0;  // unix seconds
    std::size_t chars = 0;
};

struct HistoryRequest {
    std::optional<std::size_t> max_stanzas;
    std::optional<std::size_t> max_chars;
    std::optional<std::int64_t> seconds;
    std::optional<std::int64_t> since;  // unix seconds
};

// Why a join is refused (XEP-0045 §7.2: the error each case gets).
enum class JoinError {
    None,
    Locked,            // item-not-found (§7.2.12... a locked room does not exist for others)
    Banned,            // forbidden, auth
    MembersOnly,       // registration-required, auth
    Password,          // not-authorized, auth
    NickConflict,      // conflict, cancel
    Full,              // service-unavailable, wait
};

class Room {
public:
    explicit Room(Jid jid) : jid_(std::move(jid)) {}

    const Jid& jid() const { return jid_; }
    RoomConfig& config() { return config_; }
    const RoomConfig& config() const { return config_; }

    // Locked rooms (created with the MUC <x/>, not yet configured) admit only their owners.
    bool locked() const { return locked_; }
    void set_locked(bool v) { locked_ = v; }

    // --- affiliations (by bare JID, persisted) ---
    Affiliation affiliation(const Jid& bare) const;
    void set_affiliation(const Jid& bare, Affiliation a);
    const std::map<Jid, Affiliation>& affiliations() const { return affiliations_; }
    std::vector<Jid> with_affiliation(Affiliation a) const;
    std::size_t owner_count() const { return with_affiliation(Affiliation::Owner).size(); }

    // --- occupants ---
    Occupant* by_nick(std::string_view nick);
    const Occupant* by_nick(std::string_view nick) const;
    // The occupant one real full JID (a session) is joined as.
    Occupant* by_session(const Jid& full);
    Occupant* by_bare(const Jid& bare);
    const std::map<std::string, Occupant, std::less<>>& occupants() const { return occupants_; }
    std::map<std::string, Occupant, std::less<>>& occupants() { return occupants_; }
    std::size_t occupant_count() const { return occupants_.size(); }
    bool empty() const { return occupants_.empty(); }

    // XEP-0045 §7.2: whether `who` may enter as `nick`, given the password it sent.
    // `service_max` caps max_users. A session already joined is re-admitted (presence update).
    JoinError may_join(const Jid& who, std::string_view nick, std::string_view password,
                       std::size_t service_max) const;
    // The role an account gets on entering (§5.1: by affiliation and moderation).
    Role default_role(Affiliation a) const;
    // Adds the session as (or to) the occupant `nick`; returns the occupant and whether the
    // nick is new to the room (its presence must be broadcast as a join).
    std::pair<Occupant*, bool> add_session(const Jid& full, std::string nick, Element presence,
                                           std::string occupant_id);
    // Removes one session; returns true when that was its occupant's last (the nick left).
    bool remove_session(const Jid& full);
    void remove_occupant(std::string_view nick);
    // Moves an occupant to a new nick (nick change, §7.6). The caller checked the nick is free.
    Occupant& rename(std::string_view from, std::string to);

    // --- privileges (XEP-0045 §5.1.1, §5.2.1, §8, §9, §10) ---
    // May `actor` (its affiliation and role) set `target`'s role to `to`?
    static bool may_set_role(Affiliation actor_aff, Role actor_role, Affiliation target_aff,
                             Role target_role, Role to);
    // May an account with `actor` affiliation change `target`'s affiliation to `to`?
    static bool may_set_affiliation(Affiliation actor, Affiliation target, Affiliation to);
    bool may_set_subject(Role r) const {
        return r == Role::Moderator || (r == Role::Participant && config_.change_subject);
    }
    bool may_invite(Affiliation a) const {
        return !config_.members_only || config_.allow_invites || rank(a) >= rank(Affiliation::Admin);
    }
    bool may_private_message(Role sender) const;
    // Whether `viewer` sees real JIDs (semi-anonymous: moderators only; non-anonymous: all).
    bool sees_real_jids(Role viewer) const {
        return config_.non_anonymous || viewer == Role::Moderator;
    }

    // --- subject and history ---
    const std::string& subject() const { return subject_; }
    const std::string& subject_by() const { return subject_by_; }  // the nick that set it
    void set_subject(std::string subject, std::string by) {
        subject_ = std::move(subject);
        subject_by_ = std::move(by);
    }
    void add_history(Element message, std::int64_t now);
    // The entries a join with this request gets, oldest first (§7.2.15).
    std::vector<const HistoryEntry*> history(const HistoryRequest& req, std::int64_t now) const;
    void clear_history() {
        history_.clear();
        history_bytes_ = 0;
    }

private:
    Jid jid_;
    RoomConfig config_;
    bool locked_ = false;
    std::map<Jid, Affiliation> affiliations_;
    std::map<std::string, Occupant, std::less<>> occupants_;
    std::deque<HistoryEntry> history_;
    std::size_t history_bytes_ = 0;
    std::string subject_;
    std::string subject_by_;
};

}  // namespace haven::xeps::muc
