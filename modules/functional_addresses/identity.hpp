// The address's own identity towards clients: presence subscriptions and probes, available
// presence at login, disco, vCard and ping, for the address and its inquiry JIDs (README.md §4.11).
#pragma once

#include <string>

#include "modules/functional_addresses/shared.hpp"
#include "server/core/router.hpp"

namespace haven::functional_addresses {

// Presence to `contact` (the address or an inquiry JID) named `name`: subscriptions are
// approved at once, probes answered, everything else swallowed.
void answer_presence(Shared& s, StanzaEvent& e, const std::string& contact,
                     const std::string& name);

// An IQ to the address or an inquiry JID: disco#info/#items, vCard and ping as for a client
// called `name`; any other get/set gets service-unavailable.
void answer_iq(StanzaEvent& e, const std::string& name);

// At a session's initial presence: the available presence of every address and (for its staff)
// every live inquiry JID the account is subscribed to.
void send_presences(Shared& s, Session& session);

}  // namespace haven::functional_addresses
