// XEP-0045 Multi-User Chat: what other modules may ask of the MUC service (the peer-support
// rules for rooms, group rooms), and the protocol's namespaces.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/xml/element.hpp"

#include "server/xmpp/jid.hpp"

namespace haven::xeps::muc {

namespace ns {
inline constexpr std::string_view muc = "http://jabber.org/protocol/muc";
inline constexpr std::string_view user = "http://jabber.org/protocol/muc#user";
inline constexpr std::string_view admin = "http://jabber.org/protocol/muc#admin";
inline constexpr std::string_view owner = "http://jabber.org/protocol/muc#owner";
inline constexpr std::string_view request = "http://jabber.org/protocol/muc#request";
inline constexpr std::string_view register_ = "http://jabber.org/protocol/muc#register";
inline constexpr std::string_view roomconfig = "http://jabber.org/protocol/muc#roomconfig";
inline constexpr std::string_view roominfo = "http://jabber.org/protocol/muc#roominfo";
inline constexpr std::string_view self_ping = "http://jabber.org/protocol/muc#self-ping-optimization";
inline constexpr std::string_view occupant_id = "urn:xmpp:occupant-id:0";
}  // namespace ns

class MucService {
public:
    virtual ~MucService() = default;
    virtual const std::string& domain() const = 0;
    // Who is behind an occupant JID (room@service/nick), if that nick is in the room.
    struct OccupantInfo {
        Jid account;             // the real bare JID
        bool moderator = false;  // the occupant's role in the room
    };
    virtual std::optional<OccupantInfo> occupant(const Jid& occupant_jid) const = 0;
    // Who may create rooms: by default every account of this server (as on Prosody). The
    // peer-support module narrows it to supporters and admins.
    using CreationGate = std::function<bool(const Jid& user)>;
    virtual void set_creation_gate(CreationGate gate) = 0;

    // ---- for modules that run rooms of their own (group rooms) ----

    // Creates the room if it does not exist: persistent, members-only, semi-anonymous, named
    // `name`, with `owners` as owners (added to an existing room's owners as well).
    virtual void ensure_room(const Jid& room, const std::string& name,
                             const std::vector<Jid>& owners) = 0;
    virtual bool has_room(const Jid& room) const = 0;
    // The account's affiliation in the room, by its XEP-0045 name ("owner" ... "outcast"),
    // "none" for a room that does not exist.
    virtual std::string affiliation(const Jid& room, const Jid& account) const = 0;
    // Sets an affiliation as an owner would (presence to the room, persistence). False when
    // the room does not exist or the name is not an affiliation.
    virtual bool set_affiliation(const Jid& room, const Jid& account,
                                 std::string_view affiliation) = 0;
    struct Present {
        std::string nick;
        Jid account;
        std::vector<Jid> sessions;
        std::string affiliation;
    };
    virtual std::vector<Present> occupants(const Jid& room) const = 0;
    // Called after a session entered a room (its welcome was sent), with the language of its
    // join presence.
    using JoinListener = std::function<void(const Jid& room, const Present& who,
                                            const Jid& session, std::string_view lang)>;
    virtual std::uint64_t add_join_listener(JoinListener listener) = 0;
    virtual void remove_join_listener(std::uint64_t handle) = 0;
    // Extra XEP-0128 forms in a room's disco#info, for `requester` in `lang`.
    using InfoProvider = std::function<std::optional<xml::Element>(
        const Jid& room, const Jid& requester, std::string_view lang)>;
    virtual std::uint64_t add_info_provider(InfoProvider provider) = 0;
    virtual void remove_info_provider(std::uint64_t handle) = 0;
};

}  // namespace haven::xeps::muc
