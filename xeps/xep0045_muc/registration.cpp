// XEP-0045 §7.10 (registering with a room) and §9.9 (approving registration requests): how
// someone outside a members-only room asks to be let in, and how its admins say yes or no.
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0004_data_forms.hpp"
#include "xeps/xep0045_muc/service.hpp"

namespace haven::xeps::muc {
namespace {

// Requests waiting per room: each sends a form to every owner and admin.
constexpr std::size_t max_pending_per_room = 100;
constexpr std::size_t max_nick_bytes = 256;

}  // namespace

void Service::register_iq(StanzaEvent& e, Room& room) {
    const auto who = e.from.bare();
    const auto aff = room.affiliation(who);
    const auto* query = e.stanza.child("query", haven::ns::register_);
    if (!query) {
        e.reply_error("bad-request");
        return;
    }
    if (e.type() == "get") {
        auto result = make_result(e.stanza);
        auto& q = result.add(Element("query", std::string(haven::ns::register_)));
        if (rank(aff) >= rank(Affiliation::Member)) {
            // §7.10: already registered.
            q.add(Element("registered", std::string(haven::ns::register_)));
            if (const auto* o = room.by_bare(who)) {
                q.add(Element("username", std::string(haven::ns::register_))).text(o->nick);
            }
        } else {
            q.add(Element("instructions", std::string(haven::ns::register_)))
                .text("To ask for membership, give the nick you want to use in this room.");
            auto form = make_form("Membership request for " + room.jid().str(), {});
            add_field(form, "FORM_TYPE", "hidden", {}, ns::register_);
            add_field(form, "muc#register_roomnick", "text-single", "Nickname")
                .add(Element("required", std::string(haven::ns::data_forms)));
            add_field(form, "muc#register_faqentry", "text-multi", "Anything the admins should know");
            q.add(std::move(form));
        }
        e.reply(std::move(result));
        return;
    }
    if (query->child("remove", haven::ns::register_)) {
        // §7.10.2 cancelling a registration: a member leaves the member list.
        if (aff == Affiliation::Member) {
            room.set_affiliation(who, Affiliation::None);
            save(room);
            apply_affiliation(room, who, Affiliation::None, {}, {});
        }
        e.reply(make_result(e.stanza));
        drop_if_unused(room);
        return;
    }
    const auto* form = query->child("x", haven::ns::data_forms);
    if (!form || form->attr("type") != "submit") {
        e.reply_error("bad-request", "submit the registration form");
        return;
    }
    const auto nick = form_value(*form, "muc#register_roomnick");
    if (nick.empty() || nick.size() > max_nick_bytes || !Jid::make(room.jid().local(),
                                                                    room.jid().domain(), nick)) {
        e.reply_error("not-acceptable", "a nick is needed");  // §7.10: required field
        return;
    }
    if (aff == Affiliation::Outcast) {
        e.reply_error("forbidden");
        return;
    }
    if (rank(aff) >= rank(Affiliation::Member)) {
        e.reply(make_result(e.stanza));  // nothing to do
        return;
    }
    if (!room.config().members_only) {
        // An open room has nothing to approve: registering makes a member at once.
        room.set_affiliation(who, Affiliation::Member);
        save(room);
        e.reply(make_result(e.stanza));
        apply_affiliation(room, who, Affiliation::Member, {}, {});
        return;
    }
    auto& pending = pending_registrations_[room.jid()];
    if (!pending.contains(who) && pending.size() >= max_pending_per_room) {
        e.reply_error("resource-constraint", "too many requests are waiting", {}, "wait");
        return;
    }
    const bool repeated = pending.contains(who);
    pending[who] = nick;
    auto result = make_result(e.stanza);
    e.reply(std::move(result));
    // A note for the requester (clients show an empty result as "done").
    Element note("message", std::string(haven::ns::client));
    note.attr("from", room.jid().str()).attr("to", e.from.str()).attr("type", "normal");
    note.add(Element("body", std::string(haven::ns::client)))
        .text(text("muc-register-pending", e.lang()));
    send(std::move(note));
    if (repeated) {
        return;  // the admins were told already
    }
    // §9.9: each owner and admin gets the request as a form, at their bare JID so that it
    // waits offline for those who are not there.
    const auto faq = form_value(*form, "muc#register_faqentry");
    for (auto a : {Affiliation::Owner, Affiliation::Admin}) {
        for (const auto& admin : room.with_affiliation(a)) {
            Element m("message", std::string(haven::ns::client));
            m.attr("from", room.jid().str()).attr("to", admin.str()).attr("type", "normal");
            m.add(Element("body", std::string(haven::ns::client)))
                .text(fill(text("muc-register-request", {}),
                           {{"{jid}", who.str()}, {"{room}", room.jid().str()}, {"{nick}", nick}}));
            auto f = make_form("Membership request", {});
            add_field(f, "FORM_TYPE", "hidden", {}, ns::register_);
            add_field(f, "muc#jid", "jid-single", "Account", who.str());
            add_field(f, "muc#register_roomnick", "text-single", "Nickname", nick);
            if (!faq.empty()) {
                add_field(f, "muc#register_faqentry", "text-multi", "Note", faq);
            }
            add_field(f, "muc#register_allow", "boolean", "Let this person in?", "false");
            m.add(std::move(f));
            send(std::move(m));
        }
    }
}

void Service::registration_answer(StanzaEvent& e, Room& room, const Element& form) {
    // §9.9: only the room's admins and owners decide.
    if (rank(room.affiliation(e.from.bare())) < rank(Affiliation::Admin)) {
        e.reply_error("forbidden");
        return;
    }
    auto who = Jid::parse(form_value(form, "muc#jid"));
    auto pending = pending_registrations_.find(room.jid());
    if (!who || pending == pending_registrations_.end() ||
        !pending->second.contains(who->bare())) {
        e.reply_error("item-not-found", "no such request (already answered?)");
        return;
    }
    const auto account = who->bare();
    pending->second.erase(account);
    const bool allow = form_bool(form_value(form, "muc#register_allow"));
    Element note("message", std::string(haven::ns::client));
    note.attr("from", room.jid().str()).attr("to", account.str()).attr("type", "normal");
    note.add(Element("body", std::string(haven::ns::client)))
        .text(fill(text(allow ? "muc-register-accepted" : "muc-register-declined", {}),
                   {{"{room}", room.jid().str()}}));
    if (allow && room.affiliation(account) == Affiliation::None) {
        room.set_affiliation(account, Affiliation::Member);
        save(room);
    }
    send(std::move(note));
}

}  // namespace haven::xeps::muc
