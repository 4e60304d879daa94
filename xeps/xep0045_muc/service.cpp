// XEP-0045 Multi-User Chat: the service at [muc] domain — routing, disco, rooms' lifetime.
#include "xeps/xep0045_muc/service.hpp"

#include <algorithm>
#include <stdexcept>

#include "server/auth/base64.hpp"
#include "server/storage/secret_box.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0045_muc/config_form.hpp"
#include "xeps/xep0050_commands.hpp"

namespace haven::xeps::muc {
namespace {

std::string service_domain(ModuleContext& m) {
    const auto& configured = m.opt_string("domain");
    return configured.empty() ? "groups." + m.server().domain() : configured;
}

void register_texts(Texts& t) {
    t.set_en_de("muc-invite", "{inviter} invites you to the room {room}.",
                "{inviter} lädt dich in den Raum {room} ein.");
    t.set_en_de("muc-create-refused", "Rooms on this service are created by its staff.",
                "Räume dieses Dienstes werden von seinem Team angelegt.");
    t.set_en_de("muc-members-only", "This room is for its members only.",
                "Dieser Raum ist nur für seine Mitglieder.");
    t.set_en_de("muc-voice-request", "An occupant asks for voice.",
                "Jemand im Raum bittet um Rederecht.");
    t.set_en_de("muc-register-request",
                "{jid} asks to become a member of {room} (nick: {nick}). Answer with the form, or "
                "make them a member in the room's settings.",
                "{jid} möchte Mitglied in {room} werden (Name: {nick}). Antworte mit dem Formular "
                "oder nimm die Person in den Raumeinstellungen als Mitglied auf.");
    t.set_en_de(
        "muc-register-pending",
        "Your request was sent to the room's admins. You can enter once they have admitted you.",
        "Deine Anfrage ist bei den Admins des Raums. Du kannst eintreten, sobald sie dich "
        "aufgenommen haben.");
    t.set_en_de("muc-register-accepted", "You are now a member of {room}.",
                "Du bist jetzt Mitglied in {room}.");
    t.set_en_de("muc-register-declined", "Your request to join {room} was declined.",
                "Deine Anfrage für {room} wurde abgelehnt.");
}

}  // namespace

Service::Service(ModuleContext& m)
    : m_(m),
      server_(m.server()),
      domain_(service_domain(m)),
      history_default_(static_cast<std::size_t>(m.opt_int("history_default"))),
      history_max_(static_cast<std::size_t>(m.opt_int("history_max"))),
      max_occupants_(static_cast<std::size_t>(m.opt_int("max_occupants"))),
      max_rooms_(static_cast<std::size_t>(m.opt_int("max_rooms"))),
      max_rooms_per_account_(static_cast<std::size_t>(m.opt_int("max_rooms_per_account"))),
      store_(server_.db(), server_.secret_box()) {
    if (history_default_ > history_max_) {
        history_default_ = history_max_;
    }
    register_texts(server_.texts());
    for (auto& room : store_.load_all()) {
        auto jid = room->jid();
        rooms_.emplace(std::move(jid), std::move(room));
    }
    m.serve_domain(domain_);
    m.hook(StanzaKind::Presence, RouteTarget::Service,
           [this](StanzaEvent& e) { return on_presence(e); });
    m.hook(StanzaKind::Message, RouteTarget::Service,
           [this](StanzaEvent& e) { return on_message(e); });
    m.hook(StanzaKind::Iq, RouteTarget::Service, [this](StanzaEvent& e) { return on_iq(e); });
    // Directed presence revokes room membership of a closing session (the presence module),
    // but only for the first [presence] max_directed targets: this catches the rest, so no
    // ghost occupant stays behind.
    auto closed = server_.session_closed.connect([this](Session& s) { session_gone(s.jid()); });
    m.own_connection([&s = server_, closed] { s.session_closed.disconnect(closed); });
    auto deleted =
        server_.user_deleted.connect([this](const std::string& local) { account_deleted(local); });
    m.own_connection([&s = server_, deleted] { s.user_deleted.disconnect(deleted); });
    server_.provide<MucService>(this);
    m.log().info("muc: serving ", domain_, " with ", rooms_.size(), " stored room(s)");
}

Service::~Service() {
    server_.withdraw<MucService>();
    // XEP-0045 §7.14 has no "service going down" message, but status 332 (system shutdown)
    // tells clients why they left, so they can rejoin when the server is back.
    for (auto& [jid, room] : rooms_) {
        std::vector<std::string> nicks;
        for (const auto& [nick, o] : room->occupants()) {
            nicks.push_back(nick);
        }
        for (const auto& nick : nicks) {
            expel(*room, nick, status::shutdown, {}, {});
        }
    }
}

std::optional<MucService::OccupantInfo> Service::occupant(const Jid& occupant_jid) const {
    auto it = rooms_.find(occupant_jid.bare());
    if (it == rooms_.end() || occupant_jid.resource().empty()) {
        return std::nullopt;
    }
    if (const auto* o = it->second->by_nick(occupant_jid.resource())) {
        return OccupantInfo{o->bare, o->role == Role::Moderator};
    }
    return std::nullopt;
}

void Service::ensure_room(const Jid& room_jid, const std::string& name,
                          const std::vector<Jid>& owners) {
    Room* room = find(room_jid);
    if (!room) {
        if (owners.empty()) {
            throw std::invalid_argument("a room needs an owner");
        }
        room = &create(room_jid, owners.front());
        room->config().name = name;
        room->config().public_room = true;
        m_.log().info("muc: created room ", room_jid.str());
    }
    // The config is authoritative for a group room, also for one that existed before (a room
    // someone else created under that name): members-only, semi-anonymous, persistent, and
    // owned by exactly the listed accounts.
    auto& c = room->config();
    c.persistent = true;
    c.members_only = true;
    c.non_anonymous = false;
    room->set_locked(false);
    for (const auto& other : room->with_affiliation(Affiliation::Owner)) {
        if (std::find(owners.begin(), owners.end(), other) == owners.end()) {
            room->set_affiliation(other, Affiliation::None);
            apply_affiliation(*room, other, Affiliation::None, {}, {});
        }
    }
    for (const auto& o : owners) {
        if (room->affiliation(o.bare()) != Affiliation::Owner) {
            room->set_affiliation(o.bare(), Affiliation::Owner);
            apply_affiliation(*room, o.bare(), Affiliation::Owner, {}, {});
        }
    }
    save(*room);
}

std::string Service::affiliation(const Jid& room_jid, const Jid& account) const {
    auto it = rooms_.find(room_jid);
    return std::string(
        name(it == rooms_.end() ? Affiliation::None : it->second->affiliation(account.bare())));
}

bool Service::set_affiliation(const Jid& room_jid, const Jid& account, std::string_view aff) {
    Room* room = find(room_jid);
    auto a = parse_affiliation(aff);
    if (!room || !a) {
        return false;
    }
    if (room->affiliation(account.bare()) == *a) {
        return true;
    }
    room->set_affiliation(account.bare(), *a);
    if (room->owner_count() == 0) {
        room->set_affiliation(account.bare(), Affiliation::Owner);  // never ownerless
        return false;
    }
    save(*room);
    apply_affiliation(*room, account.bare(), *a, {}, {});
    return true;
}

MucService::Present Service::present(const Room& room, const Occupant& o) const {
    return Present{o.nick, o.bare, std::vector<Jid>(o.sessions.begin(), o.sessions.end()),
                   std::string(name(room.affiliation(o.bare)))};
}

std::vector<MucService::Present> Service::occupants(const Jid& room_jid) const {
    std::vector<Present> out;
    auto it = rooms_.find(room_jid);
    if (it != rooms_.end()) {
        for (const auto& [nick, o] : it->second->occupants()) {
            out.push_back(present(*it->second, o));
        }
    }
    return out;
}

void Service::session_gone(const Jid& session) {
    if (session.resource().empty()) {
        return;  // never bound: never in a room
    }
    std::vector<Jid> rooms;
    for (const auto& [jid, room] : rooms_) {
        if (room->by_session(session)) {
            rooms.push_back(jid);
        }
    }
    for (const auto& jid : rooms) {
        if (Room* room = find(jid)) {
            if (Occupant* o = room->by_session(session)) {
                leave_session(*room, *o, session, {});
            }
        }
    }
}

void Service::account_deleted(const std::string& localpart) {
    // An erased account keeps no place in any room: a new account with the same name must not
    // inherit membership or ownership (and with it a group's schedule and links).
    auto account = Jid::make(localpart, server_.domain());
    if (!account) {
        return;
    }
    for (auto& [jid, room] : rooms_) {
        if (room->affiliation(*account) != Affiliation::None) {
            room->set_affiliation(*account, Affiliation::None);
            if (room->owner_count() == 0) {
                m_.log().warn("muc: ", jid.str(), " lost its last owner with a deleted account");
            }
            save(*room);
        }
        if (auto it = invitations_.find(jid); it != invitations_.end()) {
            it->second.erase(*account);
        }
        if (auto it = pending_registrations_.find(jid); it != pending_registrations_.end()) {
            it->second.erase(*account);
        }
    }
}

bool Service::may_create(const Jid& user) const {
    if (!server_.is_local(user)) {
        return false;  // remote accounts join rooms; they do not open them here
    }
    return !creation_gate_ || creation_gate_(user.bare());
}

std::size_t Service::owned_by(const Jid& account) const {
    std::size_t n = 0;
    for (const auto& [jid, room] : rooms_) {
        n += room->affiliation(account) == Affiliation::Owner ? 1 : 0;
    }
    return n;
}

Room* Service::find(const Jid& room_jid) {
    auto it = rooms_.find(room_jid);
    return it == rooms_.end() ? nullptr : it->second.get();
}

Room& Service::create(const Jid& room_jid, const Jid& owner) {
    auto room = std::make_unique<Room>(room_jid);
    room->config().history_length = history_default_;
    room->config().name = room_jid.local();
    room->set_affiliation(owner.bare(), Affiliation::Owner);
    auto& ref = *room;
    rooms_.emplace(room_jid, std::move(room));
    return ref;
}

void Service::save(const Room& room) {
    if (room.config().persistent) {
        store_.save(room);
    } else {
        store_.remove(room.jid());
    }
}

void Service::drop_if_unused(Room& room) {
    if (room.empty() && !room.config().persistent) {
        store_.remove(room.jid());
        pending_registrations_.erase(room.jid());
        invitations_.erase(room.jid());
        rooms_.erase(room.jid());  // `room` is gone now
    }
}

void Service::destroy(Room& room, std::string_view alternate, std::string_view reason) {
    // XEP-0045 §10.9: every occupant leaves with the <destroy/> element.
    Element destroy_el("destroy", std::string(ns::user));
    if (!alternate.empty()) {
        destroy_el.attr("jid", std::string(alternate));
    }
    if (!reason.empty()) {
        destroy_el.add(Element("reason", std::string(ns::user))).text(reason);
    }
    for (const auto& [nick, o] : room.occupants()) {
        Element p("presence", std::string(haven::ns::client));
        p.attr("from", room.jid().str() + "/" + nick).attr("type", "unavailable");
        auto& x = p.add(Element("x", std::string(ns::user)));
        x.add(Element("item", std::string(ns::user)))
            .attr("affiliation", "none")
            .attr("role", "none");
        x.add(destroy_el);
        add_status(p, status::self);
        to_occupant(o, p);
    }
    store_.remove(room.jid());
    pending_registrations_.erase(room.jid());
    invitations_.erase(room.jid());
    rooms_.erase(room.jid());
}

std::string Service::make_occupant_id(const Room& room, const Jid& bare) const {
    // XEP-0421 §4: stable for one account in one room, unlinkable across rooms, and revealing
    // nothing of the JID: a keyed hash under the server's lookup key.
    return auth::base64_encode(
        server_.secret_box().lookup(storage::pack({"muc-occupant", room.jid().str(), bare.str()})));
}

Flow Service::on_presence(StanzaEvent& e) {
    if (e.to.domain() != domain_) {
        return Flow::Continue;
    }
    const auto type = e.type();
    if (e.to.local().empty() || type == "error" || type == "probe" || type == "subscribe" ||
        type == "subscribed" || type == "unsubscribe" || type == "unsubscribed") {
        return Flow::Stop;  // nothing for the service itself; errors are never answered
    }
    if (e.to.resource().empty()) {
        if (type.empty()) {
            e.reply_error("jid-malformed", "a nick is needed to enter a room");  // §7.2.1
        }
        return Flow::Stop;
    }
    Room* room = find(e.to.bare());
    Occupant* me = room ? room->by_session(e.from) : nullptr;
    if (type == "unavailable") {
        if (me) {
            leave(e, *room, *me);
        }
        return Flow::Stop;
    }
    if (me && me->nick != e.to.resource()) {
        change_nick(e, *room, *me, e.to.resource());
        return Flow::Stop;
    }
    enter(e, e.to.bare());
    return Flow::Stop;
}

Flow Service::on_message(StanzaEvent& e) {
    if (e.to.domain() != domain_) {
        return Flow::Continue;
    }
    if (e.type() == "error") {
        return Flow::Stop;  // RFC 6120 §8.3.1: never answered
    }
    if (e.to.local().empty()) {
        return Flow::Continue;  // the router answers service-unavailable
    }
    Room* room = find(e.to.bare());
    if (!room || (room->locked() && room->affiliation(e.from.bare()) != Affiliation::Owner)) {
        e.reply_error("item-not-found");
        return Flow::Stop;
    }
    if (!e.to.resource().empty()) {
        private_message(e, *room);
    } else if (e.type() == "groupchat") {
        groupchat(e, *room);
    } else {
        room_message(e, *room);
    }
    return Flow::Stop;
}

Flow Service::on_iq(StanzaEvent& e) {
    if (e.to.domain() != domain_) {
        return Flow::Continue;
    }
    const bool request = e.type() == "get" || e.type() == "set";
    if (e.to.local().empty()) {
        if (request) {
            service_iq(e);
        }
        return Flow::Stop;
    }
    Room* room = find(e.to.bare());
    if (!room || (room->locked() && room->affiliation(e.from.bare()) != Affiliation::Owner)) {
        if (request) {
            e.reply_error("item-not-found");
        }
        return Flow::Stop;
    }
    if (!e.to.resource().empty()) {
        if (request) {
            occupant_iq(e, *room);
        } else {
            iq_answer(e, *room);
        }
        return Flow::Stop;
    }
    if (!request) {
        return Flow::Stop;
    }
    const auto* payload = e.stanza.first_child();
    const auto& pns = payload->ns();
    // Ad-hoc commands on the room (XEP-0050), which other modules add (group meetings): the
    // command registry answers for the room, as it does for the server.
    const bool command_iq = pns == haven::ns::commands ||
                            ((pns == haven::ns::disco_items || pns == haven::ns::disco_info) &&
                             !payload->attr("node").empty());
    if (command_iq) {
        auto* commands = server_.service<CommandRegistry>();
        if (!commands || commands->serve(e) == Flow::Continue) {
            e.reply_error("item-not-found");
        }
        return Flow::Stop;
    }
    if (pns == haven::ns::disco_info && e.type() == "get") {
        room_disco_info(e, *room);
    } else if (pns == haven::ns::disco_items && e.type() == "get") {
        // Occupants are not listed: in a semi-anonymous room, who is present is for those
        // inside (they see it in presence), not for anyone who asks (XEP-0045 §6.5 MAY).
        auto result = make_result(e.stanza);
        result.add(Element("query", std::string(haven::ns::disco_items)));
        e.reply(std::move(result));
    } else if (pns == ns::admin) {
        admin_iq(e, *room);
    } else if (pns == ns::owner) {
        owner_iq(e, *room);
    } else if (pns == haven::ns::ping && e.type() == "get") {
        e.reply(make_result(e.stanza));
    } else if (pns == haven::ns::register_) {
        register_iq(e, *room);
    } else {
        e.reply_error("service-unavailable");
    }
    return Flow::Stop;
}

void Service::service_iq(StanzaEvent& e) {
    const auto* payload = e.stanza.first_child();
    const auto& pns = payload->ns();
    if (e.type() == "get" && pns == haven::ns::disco_info) {
        if (!payload->attr("node").empty()) {
            e.reply_error("item-not-found");
            return;
        }
        auto result = make_result(e.stanza);
        auto& q = result.add(Element("query", std::string(haven::ns::disco_info)));
        q.add(Element("identity", std::string(haven::ns::disco_info)))
            .attr("category", "conference")
            .attr("type", "text")
            .attr("name", "Rooms");
        for (auto f : {haven::ns::disco_info, haven::ns::disco_items, ns::muc, haven::ns::ping,
                       ns::occupant_id, ns::self_ping}) {
            q.add(Element("feature", std::string(haven::ns::disco_info)))
                .attr("var", std::string(f));
        }
        e.reply(std::move(result));
        return;
    }
    if (e.type() == "get" && pns == haven::ns::disco_items) {
        if (!payload->attr("node").empty()) {
            e.reply_error("item-not-found");
            return;
        }
        // XEP-0045 §6.3: public rooms only; hidden and locked ones are not listed.
        auto result = make_result(e.stanza);
        auto& q = result.add(Element("query", std::string(haven::ns::disco_items)));
        for (const auto& [jid, room] : rooms_) {
            if (room->config().public_room && !room->locked()) {
                auto& item = q.add(Element("item", std::string(haven::ns::disco_items)));
                item.attr("jid", jid.str());
                if (!room->config().name.empty()) {
                    item.attr("name", room->config().name);
                }
            }
        }
        e.reply(std::move(result));
        return;
    }
    if (e.type() == "get" && pns == haven::ns::ping) {
        e.reply(make_result(e.stanza));
        return;
    }
    e.reply_error("service-unavailable");
}

void Service::room_disco_info(StanzaEvent& e, const Room& room) {
    const auto* q = e.stanza.first_child();
    if (!q->attr("node").empty()) {
        e.reply_error("item-not-found");
        return;
    }
    const auto& c = room.config();
    auto result = make_result(e.stanza);
    auto& query = result.add(Element("query", std::string(haven::ns::disco_info)));
    query.add(Element("identity", std::string(haven::ns::disco_info)))
        .attr("category", "conference")
        .attr("type", "text")
        .attr("name", c.name.empty() ? room.jid().local() : c.name);
    std::vector<std::string_view> features{
        ns::muc,
        haven::ns::disco_info,
        ns::occupant_id,
        ns::self_ping,
        ns::request,
        haven::ns::commands,
        c.persistent ? "muc_persistent" : "muc_temporary",
        c.public_room ? "muc_public" : "muc_hidden",
        c.members_only ? "muc_membersonly" : "muc_open",
        c.moderated ? "muc_moderated" : "muc_unmoderated",
        c.non_anonymous ? "muc_nonanonymous" : "muc_semianonymous",
        c.password.empty() ? "muc_unsecured" : "muc_passwordprotected",
    };
    for (auto f : features) {
        query.add(Element("feature", std::string(haven::ns::disco_info)))
            .attr("var", std::string(f));
    }
    // A members-only room tells outsiders that it exists and what it is, not who is inside
    // or what they talk about.
    const bool insider =
        !c.members_only || rank(room.affiliation(e.from.bare())) >= rank(Affiliation::Member);
    query.add(room_info_form(room, insider));
    for (const auto& [handle, provider] : info_providers_) {
        if (auto form = provider(room.jid(), e.from, e.lang())) {
            query.add(std::move(*form));
        }
    }
    e.reply(std::move(result));
}

}  // namespace haven::xeps::muc

namespace {
std::shared_ptr<haven::xeps::muc::Service> load_muc(haven::ModuleContext& m) {
    return std::make_shared<haven::xeps::muc::Service>(m);
}
}  // namespace

HAVEN_MODULE(muc, load_muc)
