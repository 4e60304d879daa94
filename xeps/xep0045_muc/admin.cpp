// XEP-0045 §8-§10: the muc#admin (roles and affiliations) and muc#owner (configuration,
// destruction) IQs, with the privilege rules of room.hpp.
#include <algorithm>

#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0004_data_forms.hpp"
#include "xeps/xep0045_muc/config_form.hpp"
#include "xeps/xep0045_muc/service.hpp"

namespace haven::xeps::muc {
namespace {

// Items one muc#admin set may change: each can expel someone and send a presence to every
// occupant, so one IQ must not fan out without bound.
constexpr std::size_t max_items_per_set = 100;

Element item_el() { return Element("item", std::string(ns::admin)); }

}  // namespace

void Service::admin_iq(StanzaEvent& e, Room& room) {
    const auto* query = e.stanza.child("query", ns::admin);
    if (!query) {
        e.reply_error("bad-request");
        return;
    }
    const auto actor = room.affiliation(e.from.bare());
    if (e.type() == "get") {
        admin_get(e, room, *query, actor);
    } else {
        admin_set(e, room, *query, actor);
    }
}

void Service::admin_get(StanzaEvent& e, Room& room, const Element& query, Affiliation actor) {
    const auto* item = query.child("item", ns::admin);
    if (!item) {
        e.reply_error("bad-request", "ask for an affiliation or a role");
        return;
    }
    auto result = make_result(e.stanza);
    auto& out = result.add(Element("query", std::string(ns::admin)));
    if (auto aff = parse_affiliation(item->attr("affiliation"))) {
        // §9.5 (members, outcasts: admins and owners), §10.5/§10.8 (owners, admins: owners):
        // the lists name real JIDs.
        const auto needed = *aff == Affiliation::Owner || *aff == Affiliation::Admin
                                ? Affiliation::Owner
                                : Affiliation::Admin;
        if (rank(actor) < rank(needed) || *aff == Affiliation::None) {
            e.reply_error(*aff == Affiliation::None ? "bad-request" : "forbidden");
            return;
        }
        for (const auto& jid : room.with_affiliation(*aff)) {
            auto& i = out.add(item_el());
            i.attr("affiliation", std::string(name(*aff))).attr("jid", jid.str());
            if (auto* o = room.by_bare(jid)) {
                i.attr("nick", o->nick).attr("role", std::string(name(o->role)));
            }
        }
    } else if (auto role = parse_role(item->attr("role"))) {
        // §8.5, §9.8: role lists are for moderators.
        const auto* me = room.by_session(e.from);
        if (!me || me->role != Role::Moderator || *role == Role::None) {
            e.reply_error(*role == Role::None ? "bad-request" : "forbidden");
            return;
        }
        for (const auto& [nick, o] : room.occupants()) {
            if (o.role == *role) {
                auto& i = out.add(item_el());
                i.attr("role", std::string(name(o.role)))
                    .attr("nick", nick)
                    .attr("affiliation", std::string(name(room.affiliation(o.bare))));
                if (room.sees_real_jids(me->role)) {
                    i.attr("jid", o.latest.str());
                }
            }
        }
    } else {
        e.reply_error("bad-request", "unknown affiliation or role");
        return;
    }
    e.reply(std::move(result));
}

void Service::admin_set(StanzaEvent& e, Room& room, const Element& query, Affiliation actor) {
    const auto items = query.children("item", ns::admin);
    if (items.empty() || items.size() > max_items_per_set) {
        e.reply_error("bad-request", items.empty() ? "no item" : "too many items");
        return;
    }
    const auto* me = room.by_session(e.from);
    const std::string actor_nick = me ? me->nick : std::string{};
    // §9.2, §10.3: all or nothing — every item is checked before any change is made.
    struct Change {
        std::optional<Role> role;
        std::string nick;
        std::optional<Affiliation> affiliation;
        Jid jid;
        std::string reason;
    };
    std::vector<Change> changes;
    auto owners_left = room.owner_count();
    for (const auto* item : items) {
        Change c;
        c.reason = item->child_text("reason", ns::admin);
        if (item->has_attr("affiliation")) {
            c.affiliation = parse_affiliation(item->attr("affiliation"));
            if (!c.affiliation) {
                e.reply_error("bad-request", "unknown affiliation");
                return;
            }
            std::optional<Jid> jid;
            if (item->has_attr("jid")) {
                jid = Jid::parse(item->attr("jid"));
            } else if (const auto* o = room.by_nick(item->attr("nick"))) {
                jid = o->bare;
            }
            if (!jid) {
                e.reply_error(item->has_attr("jid") ? "jid-malformed" : "bad-request",
                              "an affiliation change names a JID");
                return;
            }
            c.jid = jid->bare();
            const auto target = room.affiliation(c.jid);
            if (rank(actor) < rank(Affiliation::Admin)) {
                e.reply_error("forbidden");
                return;
            }
            if (!Room::may_set_affiliation(actor, target, *c.affiliation)) {
                // §9.1: an admin banning an admin or owner is not-allowed; the owner and
                // admin lists are the owners' (§10.3-§10.8): forbidden for everyone else.
                e.reply_error(*c.affiliation == Affiliation::Outcast ? "not-allowed" : "forbidden");
                return;
            }
            if (target == Affiliation::Owner && *c.affiliation != Affiliation::Owner) {
                if (owners_left <= 1) {
                    e.reply_error("conflict", "a room keeps at least one owner");  // §10.7
                    return;
                }
                --owners_left;
            }
            if (target == Affiliation::None && *c.affiliation != Affiliation::None &&
                room.affiliations().size() >= max_affiliations) {
                e.reply_error("resource-constraint", "the room's lists are full");
                return;
            }
        } else if (item->has_attr("role")) {
            c.role = parse_role(item->attr("role"));
            c.nick = item->attr("nick");
            if (!c.role) {
                e.reply_error("bad-request", "unknown role");
                return;
            }
            const auto* target = room.by_nick(c.nick);
            if (!me || me->role != Role::Moderator) {
                e.reply_error("forbidden");
                return;
            }
            if (!target) {
                e.reply_error("item-not-found", "no occupant with this nick");
                return;
            }
            if (!Room::may_set_role(actor, me->role, room.affiliation(target->bare),
                                    target->role, *c.role)) {
                e.reply_error("not-allowed");
                return;
            }
        } else {
            e.reply_error("bad-request", "an item names a role or an affiliation");
            return;
        }
        changes.push_back(std::move(c));
    }
    // Stored first, answered second, told to the room last: a storage failure must not
    // follow a result already sent (two answers to one IQ) nor leave memory ahead of disk.
    bool affiliations_changed = false;
    for (const auto& c : changes) {
        if (c.affiliation) {
            room.set_affiliation(c.jid, *c.affiliation);
            affiliations_changed = true;
        }
    }
    if (affiliations_changed) {
        save(room);
    }
    e.reply(make_result(e.stanza));
    for (const auto& c : changes) {
        if (c.affiliation) {
            apply_affiliation(room, c.jid, *c.affiliation, actor_nick, c.reason);
        } else if (auto* target = room.by_nick(c.nick)) {
            if (*c.role == Role::None) {
                expel(room, c.nick, status::kicked, actor_nick, c.reason);  // §8.2
            } else if (target->role != *c.role) {
                target->role = *c.role;  // §8.3-§8.4 voice, §9.6-§9.7 moderator
                broadcast_presence(room, *target, {}, {}, {},
                                   ItemExtras{{}, actor_nick, c.reason});
            }
        }
    }
    drop_if_unused(room);  // `room` may be gone now
}

void Service::owner_iq(StanzaEvent& e, Room& room) {
    const auto* query = e.stanza.child("query", ns::owner);
    if (!query) {
        e.reply_error("bad-request");
        return;
    }
    if (room.affiliation(e.from.bare()) != Affiliation::Owner) {
        e.reply_error("forbidden", "only the room's owners may do this");  // §10
        return;
    }
    if (e.type() == "get") {
        auto result = make_result(e.stanza);
        result.add(Element("query", std::string(ns::owner))).add(config_form(room, history_max_));
        e.reply(std::move(result));
        return;
    }
    if (const auto* d = query->child("destroy", ns::owner)) {
        // §10.9: the alternate venue must be a JID if given.
        const auto alt = d->attr("jid");
        if (!alt.empty() && !Jid::parse(alt)) {
            e.reply_error("jid-malformed");
            return;
        }
        e.reply(make_result(e.stanza));
        destroy(room, alt, d->child_text("reason", ns::owner));
        return;
    }
    const auto* form = query->child("x", haven::ns::data_forms);
    if (!form) {
        e.reply_error("bad-request", "expected a configuration form or <destroy/>");
        return;
    }
    if (form->attr("type") == "cancel") {
        e.reply(make_result(e.stanza));
        if (room.locked()) {
            destroy(room, {}, {});  // §10.1.3: cancelling the initial configuration
        }
        return;
    }
    if (form->attr("type") != "submit") {
        e.reply_error("bad-request", "a configuration form is submitted (type submit)");
        return;
    }
    std::string error;
    auto change = parse_config(room, *form, history_max_, error);
    if (!change) {
        e.reply_error("not-acceptable", error);
        return;
    }
    if (change->owners && change->owners->size() + (change->admins ? change->admins->size() : 0) >
                              max_affiliations) {
        e.reply_error("resource-constraint", "the room's lists are full");
        return;
    }
    const auto before = room.config();
    const bool was_locked = room.locked();
    room.config() = change->config;
    room.set_locked(false);
    std::vector<std::pair<Jid, Affiliation>> affected;
    auto replace = [&](Affiliation a, const std::vector<Jid>& list) {
        for (const auto& j : room.with_affiliation(a)) {
            if (std::find(list.begin(), list.end(), j) == list.end()) {
                room.set_affiliation(j, Affiliation::None);
                affected.emplace_back(j, Affiliation::None);
            }
        }
        for (const auto& j : list) {
            if (room.affiliation(j) != a) {
                room.set_affiliation(j, a);
                affected.emplace_back(j, a);
            }
        }
    };
    if (change->owners) {
        replace(Affiliation::Owner, *change->owners);
    }
    if (change->admins) {
        replace(Affiliation::Admin, *change->admins);
    }
    if (room.owner_count() == 0) {
        room.set_affiliation(e.from.bare(), Affiliation::Owner);  // never ownerless
    }
    save(room);
    e.reply(make_result(e.stanza));  // after the save: see admin_set
    const auto& now = room.config();
    if (!was_locked) {
        // §10.2.1: occupants learn that the configuration changed (104) and how (172/173).
        std::vector<int> codes{status::config_changed};
        if (now.non_anonymous != before.non_anonymous) {
            codes.push_back(now.non_anonymous ? status::now_non_anonymous
                                              : status::now_semi_anonymous);
        }
        status_message(room, codes);
    }
    for (const auto& [jid, aff] : affected) {
        apply_affiliation(room, jid, room.affiliation(jid), {}, {});
    }
    if (now.members_only && !before.members_only) {
        // §9.4: turning a room members-only removes those who are not members.
        std::vector<std::string> outsiders;
        for (const auto& [nick, o] : room.occupants()) {
            if (rank(room.affiliation(o.bare)) < rank(Affiliation::Member)) {
                outsiders.push_back(nick);
            }
        }
        for (const auto& nick : outsiders) {
            expel(room, nick, status::members_only, {}, {});
        }
    }
    drop_if_unused(room);  // `room` may be gone now
}

}  // namespace haven::xeps::muc
