// The restricted chat policy as a pure decision: who may send what to whom (see README.md).
#pragma once

#include <string_view>

#include "server/core/router.hpp"
#include "server/xmpp/stanza.hpp"

namespace haven::peersupport {

enum class Role { Member, Supporter, Admin };
Role parse_role(std::string_view role);
std::string_view role_name(Role role);
inline bool is_staff(Role r) { return r != Role::Member; }

// What the target of a stanza is, as far as the policy cares. Federation and group rooms
// add their classes here and their rules in decide().
enum class TargetClass {
    Server,        // the domain itself (disco, ping, ad-hoc commands)
    OwnAccount,    // the sender's own bare or full JID
    LocalAccount,  // another local JID (existing or not: members must not learn which)
    Remote,        // another domain
};

struct PolicyQuery {
    Role sender = Role::Member;
    StanzaKind kind = StanzaKind::Message;
    std::string_view type;  // the stanza's type attribute
    TargetClass target = TargetClass::LocalAccount;
    Role recipient = Role::Member;  // for LocalAccount: the target's role (Member if unknown)
    bool grant = false;             // a grant (recipient as supporter, sender as member) exists
    bool allow_remote = false;      // [peersupport] members_may_contact_remote
    // The stanza (an IQ result/error, a message or presence error) answers a request that this
    // staff resource sent to this member and that is still outstanding (answers.hpp).
    bool answers_request = false;
};

enum class Verdict { Allow, Refuse };

Verdict decide(const PolicyQuery& q);

// Whether a message opens a conversation (creates a grant) when a supporter sends it:
// a chat/normal message with content, not just a chat state or receipt.
bool has_content(const Element& message);

}  // namespace haven::peersupport
