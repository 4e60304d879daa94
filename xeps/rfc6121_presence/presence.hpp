// RFC 6121 §3-§4 presence, split by task: presence.cpp (roster state and sending),
// broadcast.cpp (a client's own presence, §4.2-§4.5), subscriptions.cpp (presence with 'to' and
// everything routed to a local account: subscriptions §3, probes §4.3, directed presence §4.6).
//
// Subscription stanzas a client sends are processed twice, as the RFC splits the work between
// two servers: the outbound rules update the sender's roster (pre-presence/*), then the stanza
// is routed from the sender's bare JID and the inbound rules update the contact's roster
// (presence/bare, presence/full). Both halves run here when both accounts are local; a remote
// contact gets the routed stanza from whatever handles presence/remote (s2s, later).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/roster_store.hpp"

namespace haven::xeps::presence {

using storage::RosterItem;

// Directed presence is remembered per session so it can be revoked (RFC 6121 §4.6.3); past
// this many targets a session's further directed presence is delivered but not tracked.
constexpr std::size_t max_directed = 1000;

// A pending subscription request is stored in the recipient's roster and replayed at each of
// their logins (RFC 6121 §3.1.3). Any account may send one, so its payload (status, nick) is
// kept only up to this size (a nick and a status are a few hundred bytes); a larger request is
// kept without payload instead of storing, and replaying, a whole max_stanza_bytes stanza per
// requester.
constexpr std::size_t max_pending_subscribe_bytes = 2048;
// Requests from JIDs that are not in the roster (hidden rows) kept per user, for the same
// reason: max_pending_requests × max_pending_subscribe_bytes stays within the send queue's
// burst allowance when they are replayed at login.
constexpr std::size_t max_pending_requests = 1000;

inline bool has_from(const RosterItem& i) {
    return i.subscription == "from" || i.subscription == "both";
}
inline bool has_to(const RosterItem& i) {
    return i.subscription == "to" || i.subscription == "both";
}
inline void set_subscription(RosterItem& i, bool to, bool from) {
    i.subscription = to ? (from ? "both" : "to") : (from ? "from" : "none");
}

inline bool is_subscription(std::string_view type) {
    return type == "subscribe" || type == "subscribed" || type == "unsubscribe" ||
           type == "unsubscribed";
}

// One contact in one user's roster, with the flags kept beside the roster row.
struct Entry {
    RosterItem item;
    bool stored = false;    // a roster row exists
    bool hidden = false;    // the row only holds a pending-in request (roster_kv::hidden)
    bool had_flag = false;  // the roster_kv::hidden flag is set
    bool approved = false;  // pre-approved (roster_kv::approved)
    bool was_approved = false;

    bool empty() const {
        return item.subscription == "none" && !item.ask_out && !item.ask_in && !approved;
    }
};

class Presence {
public:
    explicit Presence(ModuleContext& m);

private:
    // ---- roster state ----

    Entry load(std::string_view local, const std::string& contact);
    // The user's roster holds [roster] max_items items (hidden rows not counted).
    bool roster_full(std::string_view local);
    bool kv_flag(std::string_view local, std::string_view store, const std::string& contact);
    void set_kv_flag(std::string_view local, std::string_view store, const std::string& contact,
                     bool was, bool now);
    // Stores the entry (a hidden one that no longer holds anything is deleted) and, when asked
    // and the item is in the user's roster, pushes it (RFC 6121 §2.1.6).
    void save(std::string_view local, Entry& e, bool push);

    // ---- sending ----

    static Element presence(std::string_view type, const std::string& from, const std::string& to);
    void route(Element stanza) { server_.router().route(std::move(stanza)); }
    // The current presence of each available resource of `local`, addressed to `to`.
    std::size_t send_presence_of(std::string_view local, const std::string& to,
                                 std::string_view only_resource = {});
    // RFC 6121 §3.2.2, §3.3.3: the contact must stop seeing `local`'s resources as available.
    void send_unavailable_of(std::string_view local, const std::string& to);

    // ---- client presence without 'to': broadcast (RFC 6121 §4.2, §4.4, §4.5) ----

    Flow outbound_broadcast(StanzaEvent& e);
    void available(Session& session, const Element& stanza);
    // RFC 6121 §4.5.2 and §4.6.3: unavailable presence to the subscribers and own resources
    // (when the session was available) and to everyone that got directed presence.
    void unavailable(Session& session, const Element& stanza, bool was_available);
    void closed_(Session& session);
    void user_deleted(const std::string& local);

    // ---- client presence with 'to' ----

    Flow outbound_addressed(StanzaEvent& e);
    // RFC 6121 §3.1.2, §3.2.2, §3.3.2, §3.4 (and Appendix A.2): the user's side.
    void outbound_subscription(StanzaEvent& e);

    // ---- stanzas for a local account (routed; not straight from its client) ----

    Flow inbound(StanzaEvent& e);
    // RFC 6121 §4.3.2: presence goes only to those the account approved (or itself).
    void inbound_probe(StanzaEvent& e);

    Server& server_;
    std::size_t max_roster_items_;
    std::unordered_set<std::uint64_t> announced_;  // sessions initial_presence was emitted for
};

}  // namespace haven::xeps::presence
