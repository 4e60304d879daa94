// XEP-0045 Multi-User Chat service: the module that hosts [muc] domain. Split by task:
// service.cpp (loading, routing, disco, rooms' lifetime), presence.cpp (enter, leave, nick
// change, §7.1-§7.3 and §7.6), messages.cpp (groupchat, subject, private messages, invitations,
// voice requests, forwarded IQs), admin.cpp (muc#admin and muc#owner, §8-§10), config_form.cpp
// (muc#roomconfig), room_store.cpp (persistence).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "xeps/xep0045_muc/muc.hpp"
#include "xeps/xep0045_muc/room.hpp"
#include "xeps/xep0045_muc/room_store.hpp"

namespace haven::xeps::muc {

// Status codes of XEP-0045 §15.6 that the service sends.
namespace status {
inline constexpr int non_anonymous = 100;
inline constexpr int config_changed = 104;
inline constexpr int self = 110;
inline constexpr int now_non_anonymous = 172;
inline constexpr int now_semi_anonymous = 173;
inline constexpr int created = 201;
inline constexpr int banned = 301;
inline constexpr int new_nick = 303;
inline constexpr int kicked = 307;
inline constexpr int affiliation_lost = 321;
inline constexpr int members_only = 322;
inline constexpr int shutdown = 332;
}  // namespace status

class Service final : public MucService {
public:
    explicit Service(ModuleContext& m);
    ~Service() override;

    const std::string& domain() const override { return domain_; }
    std::optional<OccupantInfo> occupant(const Jid& occupant_jid) const override;
    void set_creation_gate(CreationGate gate) override { creation_gate_ = std::move(gate); }
    void ensure_room(const Jid& room, const std::string& name,
                     const std::vector<Jid>& owners) override;
    bool has_room(const Jid& room) const override { return rooms_.contains(room); }
    std::string affiliation(const Jid& room, const Jid& account) const override;
    bool set_affiliation(const Jid& room, const Jid& account,
                         std::string_view affiliation) override;
    std::vector<Present> occupants(const Jid& room) const override;
    std::uint64_t add_join_listener(JoinListener listener) override {
        join_listeners_.emplace(next_handle_, std::move(listener));
        return next_handle_++;
    }
    void remove_join_listener(std::uint64_t handle) override { join_listeners_.erase(handle); }
    std::uint64_t add_info_provider(InfoProvider provider) override {
        info_providers_.emplace(next_handle_, std::move(provider));
        return next_handle_++;
    }
    void remove_info_provider(std::uint64_t handle) override { info_providers_.erase(handle); }

private:
    // What an <item/> says besides affiliation, role and jid: a new nick (§7.6), the actor
    // and reason of a kick or ban (§8.2, §9.1).
    struct ItemExtras {
        std::string nick;
        std::string actor;
        std::string reason;
    };

    // ---- service.cpp: routing, disco, lifetime ----
    Flow on_presence(StanzaEvent& e);
    Flow on_message(StanzaEvent& e);
    Flow on_iq(StanzaEvent& e);
    void service_iq(StanzaEvent& e);
    void room_disco_info(StanzaEvent& e, const Room& room);
    Room* find(const Jid& room_jid);
    Room& create(const Jid& room_jid, const Jid& owner);
    // A temporary room goes with its last occupant (§10.1.3 "temporary room").
    void drop_if_unused(Room& room);
    void destroy(Room& room, std::string_view alternate, std::string_view reason);
    void save(const Room& room);
    void send(Element stanza) { server_.router().route(std::move(stanza)); }
    std::string make_occupant_id(const Room& room, const Jid& bare) const;
    bool may_create(const Jid& user) const;

    // ---- presence.cpp ----
    void enter(StanzaEvent& e, const Jid& room_jid);
    void leave(StanzaEvent& e, Room& room, Occupant& o);
    void leave_session(Room& room, Occupant& o, const Jid& session,
                       const std::string& leaving_status);
    // A session ended (or its account was deleted) without an unavailable to the room.
    void session_gone(const Jid& session);
    void account_deleted(const std::string& localpart);
    void change_nick(StanzaEvent& e, Room& room, Occupant& o, const std::string& nick);
    // The presence of `o` as `viewer` sees it (real JID only if the room lets it), with codes.
    Element occupant_presence(const Room& room, const Occupant& o, const Occupant* viewer,
                              std::string_view type = {}, const ItemExtras& extras = {}) const;
    // The room state a session gets on entering: others' presence, its own, history, subject.
    void welcome(const Room& room, const Occupant& me, const Jid& session,
                 const std::vector<int>& self_codes, const HistoryRequest& history);
    std::string text(std::string_view key, std::string_view lang) const {
        return server_.texts().get(key, lang);
    }
    static Element& user_x(Element& stanza);
    static void add_status(Element& stanza, int code);
    // Sends to every session of the occupant.
    void to_occupant(const Occupant& o, const Element& stanza);
    // Presence of `o` to everyone; `self_codes` go only to o's own sessions (110 is added),
    // `all_codes` to everyone.
    void broadcast_presence(const Room& room, const Occupant& o, std::string_view type,
                            const std::vector<int>& all_codes,
                            const std::vector<int>& self_codes = {},
                            const ItemExtras& extras = {});
    // Removes an occupant (kick, ban, membership lost, shutdown) with unavailable presence
    // carrying `code`, the actor's nick and the reason. The caller drops an unused room.
    void expel(Room& room, const std::string& nick, int code, std::string_view actor,
               std::string_view reason);
    // After an affiliation change: the occupant's new role, or its removal (§9.4, §9.7).
    void apply_affiliation(Room& room, const Jid& bare, Affiliation now, std::string_view actor,
                           std::string_view reason);

    // ---- messages.cpp ----
    void groupchat(StanzaEvent& e, Room& room);
    void fan_out(const Room& room, Element& out, const std::optional<Jid>& from);
    void private_message(StanzaEvent& e, Room& room);
    void room_message(StanzaEvent& e, Room& room);  // invitations, declines, voice requests
    void invite(StanzaEvent& e, Room& room, const Element& x);
    void voice_request(StanzaEvent& e, Room& room, const Element& form);
    void voice_approval(StanzaEvent& e, Room& room, const Element& form);
    // IQs to an occupant's JID: self-ping (XEP-0410) or forwarded to one of its sessions.
    void occupant_iq(StanzaEvent& e, Room& room);
    void iq_answer(StanzaEvent& e, Room& room);
    void status_message(const Room& room, const std::vector<int>& codes);

    // ---- registration.cpp: asking to become a member (§7.10) and approving it (§9.9) ----
    void register_iq(StanzaEvent& e, Room& room);
    void registration_answer(StanzaEvent& e, Room& room, const Element& form);

    // ---- admin.cpp ----
    void admin_iq(StanzaEvent& e, Room& room);
    void owner_iq(StanzaEvent& e, Room& room);
    void admin_get(StanzaEvent& e, Room& room, const Element& query, Affiliation actor);
    void admin_set(StanzaEvent& e, Room& room, const Element& query, Affiliation actor);

    ModuleContext& m_;
    Server& server_;
    std::string domain_;
    std::size_t history_default_;
    std::size_t history_max_;
    std::size_t max_occupants_;
    std::size_t max_rooms_;
    std::size_t max_rooms_per_account_;
    // Rooms in which `account` is an owner (a scan: only room creation asks).
    std::size_t owned_by(const Jid& account) const;
    RoomStore store_;
    std::map<Jid, std::unique_ptr<Room>> rooms_;
    CreationGate creation_gate_;
    std::map<std::uint64_t, JoinListener> join_listeners_;
    std::map<std::uint64_t, InfoProvider> info_providers_;
    std::uint64_t next_handle_ = 1;
    Present present(const Room& room, const Occupant& o) const;

    // IQs forwarded to an occupant (§7.5 for vCards, XEP-0410 for pings): the answer comes back
    // to the sender's occupant JID with our id and goes on with the original one.
    struct ForwardedIq {
        Jid requester;        // real full JID
        std::string id;       // the requester's id
        std::string from_nick;  // the answering occupant's nick, as the requester addressed it
    };
    std::map<std::string, ForwardedIq> forwarded_;
    // Membership requests waiting for an admin (§9.9), per room: account -> requested nick.
    // In memory (a restart forgets them; the requester asks again). The request message to an
    // offline admin waits in offline storage, sealed like every offline message.
    std::map<Jid, std::map<Jid, std::string>> pending_registrations_;
    // Mediated invitations per room (§7.8): invitee -> inviter, so a decline goes only to
    // someone who invited its sender, never to an address the sender picks.
    std::map<Jid, std::map<Jid, Jid>> invitations_;
    std::uint64_t next_forward_ = 1;
};

}  // namespace haven::xeps::muc
