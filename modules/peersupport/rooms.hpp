// The peer-support rules inside rooms of the XEP-0045 service (README.md, "Rooms").
#pragma once

#include <optional>

#include "modules/peersupport/peersupport.hpp"
#include "server/core/module.hpp"

namespace haven::peersupport {

// Loaded with the peer-support module when the MUC module is. Members may enter rooms (the
// room decides who gets in) and talk to the room; everything that reaches a single person
// through a room — a private message, an IQ (vCard, version), a mediated invitation — obeys
// the same rule as if it went to that person's own address, with one addition the rooms
// need: private messages with the room's moderators work both ways. Only staff create rooms.
class RoomRules {
public:
    RoomRules(ModuleContext& m, PeerSupport& policy);
    ~RoomRules();
    RoomRules(const RoomRules&) = delete;
    RoomRules& operator=(const RoomRules&) = delete;

private:
    Flow check(StanzaEvent& e);
    // decide() for a stanza from member `from` as if it were addressed to `account`.
    Verdict as_if_to(const StanzaEvent& e, const Jid& account) const;

    ModuleContext& m_;
    Server& server_;
    PeerSupport& policy_;
};

}  // namespace haven::peersupport
