// The peer-support rules inside rooms of the XEP-0045 service (see rooms.hpp).
#include "modules/peersupport/rooms.hpp"

#include "server/core/server.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0045_muc/muc.hpp"

namespace haven::peersupport {

RoomRules::RoomRules(ModuleContext& m, PeerSupport& policy)
    : m_(m), server_(m.server()), policy_(policy) {
    auto* muc = server_.service<xeps::muc::MucService>();
    if (!muc) {
        return;
    }
    muc->set_creation_gate([this](const Jid& user) {
        return user.domain() == server_.domain() && is_staff(policy_.role_of(user.local()));
    });
    for (auto kind : {StanzaKind::Message, StanzaKind::Iq}) {
        m.hook_outbound(kind, RouteTarget::Service, [this](StanzaEvent& e) { return check(e); },
                        prio::policy);
    }
}

RoomRules::~RoomRules() {
    if (auto* muc = server_.service<xeps::muc::MucService>()) {
        muc->set_creation_gate(nullptr);
    }
}

Verdict RoomRules::as_if_to(const StanzaEvent& e, const Jid& account) const {
    PolicyQuery q;
    q.sender = policy_.role_of(e.from.local());
    q.kind = e.kind;
    q.type = e.type();
    q.allow_remote = server_.config().get_bool("peersupport", "members_may_contact_remote");
    if (account.domain() != server_.domain()) {
        q.target = TargetClass::Remote;
    } else if (account.local() == e.from.local()) {
        q.target = TargetClass::OwnAccount;
    } else {
        q.target = TargetClass::LocalAccount;
        q.recipient = policy_.role_of(account.local());
        q.grant = is_staff(q.recipient) && policy_.has_grant(account.local(), e.from.local());
    }
    return decide(q);
}

Flow RoomRules::check(StanzaEvent& e) {
    auto* muc = server_.service<xeps::muc::MucService>();
    if (!muc || e.to.domain() != muc->domain() || e.to.local().empty()) {
        return Flow::Continue;
    }
    const bool staff = is_staff(policy_.role_of(e.from.local()));
    if (e.to.resource().empty()) {
        // To the room itself: groupchat, configuration, lists — the room's own rules. A
        // mediated invitation is a message to the invitee (XEP-0045 §7.8.2), so it obeys the
        // rule for that address.
        const auto* x = e.stanza.child("x", xeps::muc::ns::user);
        if (staff || e.kind != StanzaKind::Message || !x) {
            return Flow::Continue;
        }
        for (const auto* invite : x->children("invite", xeps::muc::ns::user)) {
            auto to = Jid::parse(invite->attr("to"));
            if (to && as_if_to(e, to->bare()) == Verdict::Refuse) {
                m_.log().debug("peersupport: refused a room invitation from a member");
                policy_.refuse(e);
                return Flow::Stop;
            }
        }
        return Flow::Continue;
    }
    const auto occupant = muc->occupant(e.to);
    if (!occupant) {
        return Flow::Continue;  // nobody there: the room answers item-not-found
    }
    const auto& account = occupant->account;
    if (staff) {
        // A member's profile is for their contacts, through a room as anywhere (issue 11).
        if (e.kind == StanzaKind::Iq && e.type() == "get" && e.stanza.child("vCard", ns::vcard) &&
            account.domain() == server_.domain() &&
            policy_.role_of(account.local()) == Role::Member &&
            !policy_.may_see_profile(e.from.local(), account.local())) {
            e.reply_error("service-unavailable");
            return Flow::Stop;
        }
        return Flow::Continue;
    }
    // Answers go only to requests the room forwarded (it matches their ids).
    if (is_error_or_result(e.stanza)) {
        return Flow::Continue;
    }
    // Members and the room's moderators talk both ways (issue 12): a group's supporters are
    // there to be asked. An IQ still needs the ordinary rule: a vCard is not a conversation.
    if (e.kind == StanzaKind::Message && occupant->moderator) {
        return Flow::Continue;
    }
    if (as_if_to(e, account) == Verdict::Allow) {
        return Flow::Continue;
    }
    m_.log().debug("peersupport: refused <", e.stanza.name(), "/> from a member to an occupant");
    policy_.refuse(e);
    return Flow::Stop;
}

}  // namespace haven::peersupport
