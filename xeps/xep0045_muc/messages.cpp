// XEP-0045 §7.4-§7.5, §7.8, §8.6 and XEP-0410: messages to the room and to occupants,
// invitations, voice requests, and IQs to occupant JIDs.
#include <algorithm>

#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0004_data_forms.hpp"
#include "xeps/xep0045_muc/service.hpp"
#include "xeps/xep0191_blocking.hpp"

namespace haven::xeps::muc {
namespace {

// Invitations one message may carry: each is a message to someone outside the room.
constexpr std::size_t max_invites_per_message = 10;
// IQs waiting for an occupant's answer; past this the oldest is forgotten (its answer is
// then dropped, as if the occupant had not answered).
constexpr std::size_t max_forwarded_iqs = 1000;
// Of those, one session may have this many waiting (so nobody can evict everyone else's).
constexpr std::size_t max_forwarded_per_session = 20;
// Invitations remembered per room for declines; the oldest are not forgotten, new ones are
// just not declinable past this.
constexpr std::size_t max_invitations_kept = 1000;

// What the room repeats of an occupant's stanza: everything but addresses and any
// occupant id the client put in (XEP-0421 §4).
Element as_from_occupant(const Element& stanza, const Room& room, const Occupant& o) {
    Element out = stanza;
    out.remove_attr("to");
    out.attr("from", room.jid().str() + "/" + o.nick);
    // Status codes and items are the room's to say: an occupant's own muc#user <x/> would show
    // as a room notice ("Bob was banned", someone's "real JID").
    out.remove_children("x", ns::user);
    out.remove_children("occupant-id", ns::occupant_id);
    out.add(Element("occupant-id", std::string(ns::occupant_id))).attr("id", o.occupant_id);
    return out;
}

}  // namespace

void Service::groupchat(StanzaEvent& e, Room& room) {
    auto* o = room.by_session(e.from);
    if (!o) {
        e.reply_error("not-acceptable", "only occupants may send messages to the room");  // §7.4
        return;
    }
    const auto* subject = e.stanza.child("subject", haven::ns::client);
    const bool has_body = e.stanza.child("body", haven::ns::client) != nullptr;
    if (subject && !has_body) {
        // §8.1: a subject change (moderators; participants if the room lets them).
        if (!room.may_set_subject(o->role)) {
            e.reply_error("forbidden", "you may not change the subject of this room");
            return;
        }
        room.set_subject(subject->text(), o->nick);
        save(room);
    } else if (rank(o->role) < rank(Role::Participant)) {
        e.reply_error("forbidden", "visitors have no voice in this room");  // §7.4
        return;
    }
    auto out = as_from_occupant(e.stanza, room, *o);
    if (has_body) {
        room.add_history(out, server_.clock().unix_seconds());
    }
    fan_out(room, out, room.jid().with_resource(o->nick));
}

// A room message to every occupant's every session: the hot path of a busy room, so local
// sessions get it straight from here (one element, its 'to' changed per copy, serialised by
// each session's send()) instead of one full routing per copy. What routing would have done
// for a groupchat copy to a local full JID is the XEP-0191 check, done here; remote sessions
// go through the router.
void Service::fan_out(const Room& room, Element& out, const std::optional<Jid>& from) {
    auto* blocking = server_.service<BlockingService>();
    for (const auto& [nick, viewer] : room.occupants()) {
        for (const auto& session : viewer.sessions) {
            out.attr("to", session.str());
            if (!server_.is_local(session)) {
                send(out);
                continue;
            }
            if (blocking && from && blocking->blocks(session.local(), *from)) {
                continue;
            }
            if (auto* s = server_.sessions().find(session)) {
                s->send(out);
            }
        }
    }
}

void Service::private_message(StanzaEvent& e, Room& room) {
    auto* o = room.by_session(e.from);
    if (!o) {
        e.reply_error("not-acceptable", "only occupants may send private messages");  // §7.5
        return;
    }
    if (e.type() == "groupchat") {
        e.reply_error("bad-request", "a private message is not of type groupchat");  // §7.5
        return;
    }
    auto* target = room.by_nick(e.to.resource());
    if (!target) {
        e.reply_error("item-not-found");
        return;
    }
    if (!room.may_private_message(o->role)) {
        e.reply_error("forbidden", "private messages are not allowed in this room");
        return;
    }
    auto out = as_from_occupant(e.stanza, room, *o);
    // §7.5: marks the message as a private message inside a room (clients thread it there).
    if (!out.child("x", ns::user)) {
        out.add(Element("x", std::string(ns::user)));
    }
    to_occupant(*target, out);
}

void Service::room_message(StanzaEvent& e, Room& room) {
    if (const auto* x = e.stanza.child("x", ns::user)) {
        if (x->child("invite", ns::user) || x->child("decline", ns::user)) {
            invite(e, room, *x);
            return;
        }
    }
    for (const auto* form : e.stanza.children("x", haven::ns::data_forms)) {
        if (form_value(*form, "FORM_TYPE") == ns::register_) {
            registration_answer(e, room, *form);
            return;
        }
        if (form_value(*form, "FORM_TYPE") == ns::request) {
            const auto* o = room.by_session(e.from);
            if (o && o->role == Role::Moderator && has_field(*form, "muc#request_allow")) {
                voice_approval(e, room, *form);
            } else {
                voice_request(e, room, *form);
            }
            return;
        }
    }
    e.reply_error("bad-request", "messages to a room are of type groupchat");
}

void Service::invite(StanzaEvent& e, Room& room, const Element& x) {
    const auto* o = room.by_session(e.from);
    const auto aff = room.affiliation(e.from.bare());
    // §7.8.2: a decline goes back to whoever invited its sender — only that one, whatever the
    // 'to' says: the room relays nothing to an address a stranger picks.
    if (const auto* decline = x.child("decline", ns::user)) {
        auto invited = invitations_.find(room.jid());
        auto inviter = invited == invitations_.end() ? invited->second.end()
                                                     : invited->second.find(e.from.bare());
        if (invited == invitations_.end() || inviter == invited->second.end()) {
            e.reply_error("not-acceptable", "there is no invitation to decline");
            return;
        }
        Element m("message", std::string(haven::ns::client));
        m.attr("from", room.jid().str()).attr("to", inviter->second.str());
        auto& dx = m.add(Element("x", std::string(ns::user)));
        auto& d = dx.add(Element("decline", std::string(ns::user)));
        d.attr("from", e.from.bare().str());
        if (auto reason = decline->child_text("reason", ns::user); !reason.empty()) {
            d.add(Element("reason", std::string(ns::user))).text(reason.substr(0, 1000));
        }
        invited->second.erase(inviter);
        send(std::move(m));
        return;
    }
    if (!o) {
        e.reply_error("not-acceptable", "only occupants may invite");
        return;
    }
    if (!room.may_invite(aff)) {
        e.reply_error("forbidden", "only the room's admins may invite to this room");  // §7.8.2
        return;
    }
    const auto invites = x.children("invite", ns::user);
    if (invites.size() > max_invites_per_message) {
        e.reply_error("policy-violation", "too many invitations in one message");
        return;
    }
    std::vector<Jid> invitees;
    for (const auto* inv : invites) {
        auto to = Jid::parse(inv->attr("to"));
        if (!to) {
            e.reply_error("jid-malformed");
            return;
        }
        invitees.push_back(to->bare());
    }
    bool changed = false;
    for (std::size_t i = 0; i < invites.size(); ++i) {
        const auto& to = invitees[i];
        // §7.8.2 (and §9.3): an invitation to a members-only room (by an admin or owner, or by
        // an occupant the room lets invite) makes the invitee a member, or it could not be used.
        if (room.config().members_only && room.affiliation(to) == Affiliation::None) {
            if (room.affiliations().size() >= max_affiliations) {
                e.reply_error("resource-constraint", "the room's member list is full");
                break;
            }
            room.set_affiliation(to, Affiliation::Member);
            changed = true;
        }
        auto& invited = invitations_[room.jid()];
        if (invited.size() < max_invitations_kept || invited.contains(to)) {
            invited.insert_or_assign(to, e.from);
        }
        Element m("message", std::string(haven::ns::client));
        m.attr("from", room.jid().str()).attr("to", to.str());
        const auto lang = e.lang();
        const auto inviter = e.from.bare().str();
        const auto body =
            fill(text("muc-invite", lang), {{"{inviter}", inviter}, {"{room}", room.jid().str()}});
        m.add(Element("body", std::string(haven::ns::client))).text(body);
        auto& ix = m.add(Element("x", std::string(ns::user)));
        auto& invite_el = ix.add(Element("invite", std::string(ns::user)));
        invite_el.attr("from", e.from.str());
        if (auto reason = invites[i]->child_text("reason", ns::user); !reason.empty()) {
            invite_el.add(Element("reason", std::string(ns::user))).text(reason);
        }
        if (!room.config().password.empty()) {
            ix.add(Element("password", std::string(ns::user))).text(room.config().password);
        }
        send(std::move(m));
    }
    if (changed) {
        save(room);
    }
}

void Service::voice_request(StanzaEvent& e, Room& room, const Element& form) {
    (void)form;
    const auto* o = room.by_session(e.from);
    if (!o) {
        e.reply_error("not-acceptable", "only occupants may ask for voice");
        return;
    }
    if (o->role != Role::Visitor) {
        return;  // already has voice: nothing to ask for
    }
    // §8.6: every moderator gets an approval form.
    for (const auto& [nick, mod] : room.occupants()) {
        if (mod.role != Role::Moderator) {
            continue;
        }
        Element m("message", std::string(haven::ns::client));
        m.attr("from", room.jid().str());
        auto f = make_form("Voice request", text("muc-voice-request", e.lang()));
        add_field(f, "FORM_TYPE", "hidden", {}, ns::request);
        add_field(f, "muc#role", "list-single", "Requested role", "participant");
        if (room.sees_real_jids(mod.role)) {
            add_field(f, "muc#jid", "jid-single", "User ID", o->latest.str());
        }
        add_field(f, "muc#roomnick", "text-single", "Room nickname", o->nick);
        add_field(f, "muc#request_allow", "boolean", "Grant voice to this person?", "false");
        m.add(std::move(f));
        to_occupant(mod, m);
    }
}

void Service::voice_approval(StanzaEvent& e, Room& room, const Element& form) {
    if (!form_bool(form_value(form, "muc#request_allow"))) {
        return;  // denied: nothing changes
    }
    auto* target = room.by_nick(form_value(form, "muc#roomnick"));
    if (!target) {
        e.reply_error("item-not-found");
        return;
    }
    if (target->role == Role::Visitor) {
        target->role = Role::Participant;
        broadcast_presence(room, *target, {}, {});
    }
}

void Service::occupant_iq(StanzaEvent& e, Room& room) {
    const auto* o = room.by_session(e.from);
    if (!o) {
        // XEP-0410 §3.2: the client is not (or no longer) in the room and should rejoin.
        e.reply_error("not-acceptable", "you are not in this room", {}, "cancel");
        return;
    }
    auto* target = room.by_nick(e.to.resource());
    if (!target) {
        e.reply_error("item-not-found");
        return;
    }
    const auto* payload = e.stanza.first_child();
    if (target == o && payload->name() == "ping" && payload->ns() == haven::ns::ping) {
        e.reply(make_result(e.stanza));  // XEP-0410 §3.2: the service answers for itself
        return;
    }
    const auto mine = std::count_if(forwarded_.begin(), forwarded_.end(), [&](const auto& kv) {
        return kv.second.requester == e.from;
    });
    if (static_cast<std::size_t>(mine) >= max_forwarded_per_session) {
        e.reply_error("resource-constraint", "too many requests waiting for an answer", {},
                      "wait");
        return;
    }
    if (forwarded_.size() >= max_forwarded_iqs) {
        forwarded_.erase(forwarded_.begin());
    }
    // Ids in order of issue, so begin() above is the oldest.
    char id[24];
    std::snprintf(id, sizeof id, "muc%020llu", static_cast<unsigned long long>(next_forward_++));
    forwarded_[id] = ForwardedIq{e.from, std::string(e.stanza.attr("id")), target->nick};
    Element out = e.stanza;
    out.attr("id", id);
    out.attr("from", room.jid().str() + "/" + o->nick);
    // §7.5 (vCards): a profile request is for the account, which the server answers for.
    out.attr("to", payload->ns() == haven::ns::vcard ? target->bare.str() : target->latest.str());
    send(std::move(out));
}

void Service::iq_answer(StanzaEvent& e, Room& room) {
    auto it = forwarded_.find(std::string(e.stanza.attr("id")));
    if (it == forwarded_.end()) {
        return;
    }
    const auto* answering = room.by_nick(it->second.from_nick);
    // Only the account the request went to may answer it.
    if (!answering || answering->bare != e.from.bare()) {
        return;
    }
    Element out = e.stanza;
    out.attr("id", it->second.id);
    out.attr("from", room.jid().str() + "/" + answering->nick);
    out.attr("to", it->second.requester.str());
    forwarded_.erase(it);
    send(std::move(out));
}

void Service::status_message(const Room& room, const std::vector<int>& codes) {
    Element m("message", std::string(haven::ns::client));
    m.attr("from", room.jid().str()).attr("type", "groupchat");
    for (int c : codes) {
        add_status(m, c);
    }
    for (const auto& [nick, o] : room.occupants()) {
        to_occupant(o, m);
    }
}

}  // namespace haven::xeps::muc
