// XEP-0045 Multi-User Chat: what other modules may ask of the MUC service (the peer-support
// rules for rooms, group rooms), and the protocol's namespaces.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

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
};

}  // namespace haven::xeps::muc
