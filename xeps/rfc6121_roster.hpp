// RFC 6121 roster service: what the roster module offers other modules (roster pushes).
#pragma once

#include <string_view>

#include "server/storage/roster_store.hpp"

namespace haven::xeps {

// Provided by the roster module through server.provide<RosterService>(); look it up at use
// time with server.service<RosterService>() (it is null while the roster module is off).
class RosterService {
public:
    virtual ~RosterService() = default;
    // RFC 6121 §2.1.6: pushes the item as stored now to every interested resource of the user
    // (those that requested the roster), with the current XEP-0237 version. Does nothing for a
    // hidden item (see roster_kv::hidden).
    virtual void push(std::string_view localpart, const storage::RosterItem& item) = 0;
    // Pushes <item jid=contact subscription='remove'/> to every interested resource.
    virtual void push_removed(std::string_view localpart, std::string_view contact) = 0;
};

// Roster state RosterItem has no column for, kept per user in the key-value store
// (server.kv(), key = the item's contact JID, value "1"). Shared by the roster and presence
// modules; the rows cascade away with the account like the roster itself.
namespace roster_kv {
// RFC 6121 §3.1.3: a roster row that exists only to hold an inbound subscription request the
// user has not answered ("None + Pending In" without a roster item). Not shown in roster
// results or pushes until the user acts on the contact.
inline constexpr std::string_view hidden = "roster.hidden";
// RFC 6121 §3.4: the user pre-approved a subscription request from this contact; shown as
// approved='true' on the item.
inline constexpr std::string_view approved = "roster.approved";

// Whether a row with the `hidden` flag is really hidden: only while it still holds nothing but
// the pending request, so a row that other code (re)wrote with a subscription never disappears
// from the roster because of a stale flag.
inline bool is_hidden(const storage::RosterItem& item, bool hidden_flag) {
    return hidden_flag && item.subscription == "none" && item.ask_in && !item.ask_out;
}
}  // namespace roster_kv

}  // namespace haven::xeps
