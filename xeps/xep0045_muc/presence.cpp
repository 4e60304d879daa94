// XEP-0045 §7.1-§7.3, §7.6, §7.14: entering, presence updates, nick changes and leaving, and
// the occupant presence every other part of the service sends.
#include <charconv>

#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0045_muc/service.hpp"

namespace haven::xeps::muc {
namespace {

std::optional<std::size_t> parse_count(std::string_view s) {
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

// The client's own presence payload, as the room repeats it: no addresses, no MUC elements,
// no occupant id of its own making (XEP-0421 §4: the service's replaces it).
Element presence_payload(const Element& stanza) {
    Element p("presence", std::string(haven::ns::client));
    for (const auto& n : stanza.nodes()) {
        if (!n.element) {
            continue;
        }
        const auto& c = *n.element;
        if (c.ns() == ns::muc || c.ns() == ns::user || c.ns() == ns::occupant_id ||
            c.name() == "error") {
            continue;
        }
        p.add(c);
    }
    return p;
}

}  // namespace

Element& Service::user_x(Element& stanza) {
    if (auto* x = stanza.child("x", ns::user)) {
        return *x;
    }
    return stanza.add(Element("x", std::string(ns::user)));
}

void Service::add_status(Element& stanza, int code) {
    user_x(stanza).add(Element("status", std::string(ns::user))).attr("code", std::to_string(code));
}

void Service::to_occupant(const Occupant& o, const Element& stanza) {
    for (const auto& session : o.sessions) {
        Element copy = stanza;
        copy.attr("to", session.str());
        send(std::move(copy));
    }
}

Element Service::occupant_presence(const Room& room, const Occupant& o, const Occupant* viewer,
                                   std::string_view type, const ItemExtras& extras) const {
    Element p = type == "unavailable" ? Element("presence", std::string(haven::ns::client))
                                      : o.presence;
    p.attr("from", room.jid().str() + "/" + o.nick);
    if (!type.empty()) {
        p.attr("type", std::string(type));
    }
    auto& item = user_x(p).add(Element("item", std::string(ns::user)));
    item.attr("affiliation", std::string(name(room.affiliation(o.bare))))
        .attr("role", std::string(name(o.role)));
    // Semi-anonymous rooms show real JIDs to moderators only (§5.1.1, §7.2.3, §7.2.4).
    if (viewer && room.sees_real_jids(viewer->role)) {
        item.attr("jid", o.latest.str());
    }
    if (!extras.nick.empty()) {
        item.attr("nick", extras.nick);
    }
    if (!extras.actor.empty()) {
        item.add(Element("actor", std::string(ns::user))).attr("nick", extras.actor);
    }
    if (!extras.reason.empty()) {
        item.add(Element("reason", std::string(ns::user))).text(extras.reason);
    }
    p.add(Element("occupant-id", std::string(ns::occupant_id))).attr("id", o.occupant_id);
    return p;
}

void Service::broadcast_presence(const Room& room, const Occupant& o, std::string_view type,
                                 const std::vector<int>& all_codes,
                                 const std::vector<int>& self_codes, const ItemExtras& extras) {
    for (const auto& [nick, viewer] : room.occupants()) {
        auto p = occupant_presence(room, o, &viewer, type, extras);
        for (int c : all_codes) {
            add_status(p, c);
        }
        if (&viewer == &o) {
            add_status(p, status::self);
            for (int c : self_codes) {
                add_status(p, c);
            }
        }
        to_occupant(viewer, p);
    }
}

void Service::welcome(const Room& room, const Occupant& me, const Jid& session,
                      const std::vector<int>& self_codes, const HistoryRequest& history) {
    auto to_session = [&](Element stanza) {
        stanza.attr("to", session.str());
        send(std::move(stanza));
    };
    // §7.2.3: everyone else's presence first, then the entering occupant's own.
    for (const auto& [nick, other] : room.occupants()) {
        if (&other != &me) {
            to_session(occupant_presence(room, other, &me));
        }
    }
    auto self = occupant_presence(room, me, &me);
    add_status(self, status::self);
    for (int c : self_codes) {
        add_status(self, c);
    }
    to_session(std::move(self));
    // §7.2.15: history with the original time, then the subject (always, empty if none).
    const auto now = server_.clock().unix_seconds();
    for (const auto* h : room.history(history, now)) {
        Element m = h->message;
        m.add(Element("delay", std::string(haven::ns::delay)))
            .attr("from", room.jid().str())
            .attr("stamp", xep82_datetime(h->stamp));
        to_session(std::move(m));
    }
    Element subject("message", std::string(haven::ns::client));
    subject.attr("type", "groupchat")
        .attr("from", room.subject_by().empty() ? room.jid().str()
                                                : room.jid().str() + "/" + room.subject_by());
    subject.attr("id", "subject");
    subject.add(Element("subject", std::string(haven::ns::client))).text(room.subject());
    to_session(std::move(subject));
}

void Service::enter(StanzaEvent& e, const Jid& room_jid) {
    const auto& nick = e.to.resource();
    const auto* mucx = e.stanza.child("x", ns::muc);
    Room* room = find(room_jid);
    bool created = false;
    if (!room) {
        if (!may_create(e.from)) {
            e.reply_error("not-allowed", text("muc-create-refused", e.lang()),
                          server_.texts().pick_lang("muc-create-refused", e.lang()));
            return;
        }
        if (rooms_.size() >= max_rooms_) {
            e.reply_error("resource-constraint", "the service has as many rooms as it can hold");
            return;
        }
        if (owned_by(e.from.bare()) >= max_rooms_per_account_) {
            // One account must not take the whole service's room budget (max_rooms).
            e.reply_error("resource-constraint", "you own as many rooms as one account may");
            return;
        }
        room = &create(room_jid, e.from);
        // §10.1.2: a MUC client gets a locked room to configure (or accept as instant); a
        // groupchat 1.0 client (no <x/>) an instant room at once (§10.1.1 "legacy").
        room->set_locked(mucx != nullptr);
        created = true;
    }
    const auto password = mucx ? mucx->child_text("password", ns::muc) : std::string{};
    switch (room->may_join(e.from, nick, password, max_occupants_)) {
        case JoinError::None: break;
        case JoinError::Locked: e.reply_error("item-not-found"); return;
        case JoinError::Banned: e.reply_error("forbidden"); return;
        case JoinError::MembersOnly:
            e.reply_error("registration-required", text("muc-members-only", e.lang()),
                          server_.texts().pick_lang("muc-members-only", e.lang()));
            return;
        case JoinError::Password: e.reply_error("not-authorized"); return;
        case JoinError::NickConflict: e.reply_error("conflict"); return;
        case JoinError::Full: e.reply_error("service-unavailable", {}, {}, "wait"); return;
    }
    HistoryRequest history;
    history.max_stanzas = room->config().history_length;
    if (const auto* h = mucx ? mucx->child("history", ns::muc) : nullptr) {
        if (auto n = parse_count(h->attr("maxstanzas"))) {
            history.max_stanzas = std::min(*n, room->config().history_length);
        }
        if (auto n = parse_count(h->attr("maxchars"))) {
            history.max_chars = *n;
        }
        if (auto n = parse_count(h->attr("seconds"))) {
            // More than the history can hold is "all of it" (and keeps now - seconds defined).
            history.seconds = static_cast<std::int64_t>(std::min<std::size_t>(*n, 1u << 30));
        }
        if (auto since = parse_xep82_datetime(h->attr("since"))) {
            history.since = *since;
        }
    }
    if (auto* me = room->by_session(e.from)) {
        // Already in under this nick: a presence update (§7.7), broadcast to all. With the
        // MUC <x/> it is a client that lost track of the room (XEP-0410 §3.3 advises a rejoin
        // then): its session gets the room's whole state again, history included.
        me->presence = presence_payload(e.stanza);
        me->latest = e.from;
        if (!mucx) {
            broadcast_presence(*room, *me, {}, {});
            return;
        }
        for (const auto& [other_nick, other] : room->occupants()) {
            if (&other != me) {
                to_occupant(other, occupant_presence(*room, *me, &other));
            }
        }
        welcome(*room, *me, e.from, {}, history);  // §7.2.1: as if it had just entered
        return;
    }
    auto [me, fresh] = room->add_session(e.from, nick, presence_payload(e.stanza),
                                         make_occupant_id(*room, e.from.bare()));
    std::vector<int> self_codes;
    if (room->config().non_anonymous) {
        self_codes.push_back(status::non_anonymous);
    }
    if (created) {
        self_codes.push_back(status::created);
    }
    if (fresh) {
        // The others learn of the new occupant; its own sessions get the welcome below.
        for (const auto& [other_nick, other] : room->occupants()) {
            if (&other != me) {
                to_occupant(other, occupant_presence(*room, *me, &other));
            }
        }
    }
    welcome(*room, *me, e.from, self_codes, history);
    if (created && !room->locked()) {
        save(*room);
    }
    const auto who = present(*room, *me);
    const auto room_jid_copy = room->jid();
    for (const auto& [handle, listener] : std::map(join_listeners_)) {
        // The session is in: a listener's failure (a locked database) must not turn that
        // into an error answer to the join, nor keep the other listeners from running.
        try {
            listener(room_jid_copy, who, e.from, e.lang());
        } catch (const std::exception& ex) {
            m_.log().warn("muc: a join listener failed: ", ex.what());
        }
    }
}

void Service::leave(StanzaEvent& e, Room& room, Occupant& o) {
    leave_session(room, o, e.from, e.stanza.child_text("status"));
}

void Service::leave_session(Room& room, Occupant& o, const Jid& session,
                            const std::string& leaving_status) {
    // §7.14: role none, and the status text of the leaving presence only (not an older one).
    auto unavailable = [&](const Occupant& gone, const Occupant* viewer) {
        auto p = occupant_presence(room, gone, viewer, "unavailable");
        if (!leaving_status.empty()) {
            p.add(Element("status", std::string(haven::ns::client))).text(leaving_status);
        }
        return p;
    };
    // The leaving session gets its own unavailable presence (110) in any case; the room sees
    // the nick leave only with the account's last session.
    const bool last = o.sessions.size() == 1;
    Occupant gone = o;
    gone.role = last ? Role::None : gone.role;
    gone.latest = session;
    auto self = unavailable(gone, &o);
    add_status(self, status::self);
    self.attr("to", session.str());
    if (last) {
        room.remove_occupant(gone.nick);
        for (const auto& [nick, viewer] : room.occupants()) {
            to_occupant(viewer, unavailable(gone, &viewer));
        }
    } else {
        room.remove_session(session);
    }
    send(std::move(self));
    drop_if_unused(room);
}

void Service::change_nick(StanzaEvent& e, Room& room, Occupant& o, const std::string& nick) {
    if (room.by_nick(nick)) {
        e.reply_error("conflict");  // §7.6.3, whoever holds it
        return;
    }
    // §7.6.2: unavailable from the old nick with the new one and 303, then the new presence.
    broadcast_presence(room, o, "unavailable", {status::new_nick}, {}, ItemExtras{nick, {}, {}});
    auto& renamed = room.rename(o.nick, nick);
    renamed.presence = presence_payload(e.stanza);
    renamed.latest = e.from;
    broadcast_presence(room, renamed, {}, {});
}

void Service::expel(Room& room, const std::string& nick, int code, std::string_view actor,
                    std::string_view reason) {
    auto* o = room.by_nick(nick);
    if (!o) {
        return;
    }
    o->role = Role::None;
    broadcast_presence(room, *o, "unavailable", {code}, {},
                       ItemExtras{{}, std::string(actor), std::string(reason)});
    room.remove_occupant(nick);
}

void Service::apply_affiliation(Room& room, const Jid& bare, Affiliation now,
                                std::string_view actor, std::string_view reason) {
    // Every nick the account is in the room under (one per device is allowed).
    std::vector<std::string> nicks;
    for (const auto& [nick, o] : room.occupants()) {
        if (o.bare == bare) {
            nicks.push_back(nick);
        }
    }
    for (const auto& nick : nicks) {
        auto* o = room.by_nick(nick);
        if (!o) {
            continue;
        }
        if (now == Affiliation::Outcast) {
            expel(room, nick, status::banned, actor, reason);  // §9.1
        } else if (room.config().members_only && rank(now) < rank(Affiliation::Member)) {
            expel(room, nick, status::affiliation_lost, actor, reason);  // §9.4
        } else {
            o->role = room.default_role(now);
            broadcast_presence(room, *o, {}, {}, {},
                               ItemExtras{{}, std::string(actor), std::string(reason)});
        }
    }
}

}  // namespace haven::xeps::muc
