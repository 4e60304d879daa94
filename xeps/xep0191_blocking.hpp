// XEP-0191: Blocking Command — the service other modules ask whether a user blocks an address.
#pragma once

#include <string_view>

#include "server/xmpp/jid.hpp"

namespace haven::xeps {

// Offered by the "blocking" module through Server::provide<BlockingService>(). Modules that
// deliver stanzas without going through Router::route() (for example a presence module that
// answers probes from its own state) should ask it before revealing anything to `other`.
class BlockingService {
public:
    virtual ~BlockingService() = default;
    // True when the local account `localpart` blocks `other` under the XEP-0191 §6 matching
    // rules (full JID, bare JID, domain/resource, domain and its subdomains). The account itself
    // and the local server are never blocked.
    virtual bool blocks(std::string_view localpart, const Jid& other) = 0;
};

// The XEP-0191 §6 rule (as in XEP-0016): does blocklist entry `item` cover `jid`?
bool blocklist_item_matches(const Jid& item, const Jid& jid);

}  // namespace haven::xeps
