// RFC 6121 §3-§4: presence subscriptions, broadcast, probes and directed presence.
//
// Subscription stanzas a client sends are processed twice, as the RFC splits the work between
// two servers: the outbound rules update the sender's roster (pre-presence/*), then the stanza
// is routed from the sender's bare JID and the inbound rules update the contact's roster
// (presence/bare, presence/full). Both halves run here when both accounts are local; a remote
// contact gets the routed stanza from whatever handles presence/remote (s2s, later).
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/rfc6121_roster.hpp"
#include "xeps/xep0191_blocking.hpp"

namespace haven::xeps {
namespace {

using storage::RosterItem;

// Directed presence is remembered per session so it can be revoked (RFC 6121 §4.6.3); past
// this many targets a session's further directed presence is delivered but not tracked.
constexpr std::size_t max_directed = 1000;

bool has_from(const RosterItem& i) {
    return i.subscription == "from" || i.subscription == "both";
}
bool has_to(const RosterItem& i) {
    return i.subscription == "to" || i.subscription == "both";
}
void set_subscription(RosterItem& i, bool to, bool from) {
    i.subscription = to ? (from ? "both" : "to") : (from ? "from" : "none");
}

bool is_subscription(std::string_view type) {
    return type == "subscribe" || type == "subscribed" || type == "unsubscribe" ||
           type == "unsubscribed";
}

// RFC 6121 §4.7.2.3: an integer in -128..127; out-of-range values are clamped, junk is 0.
int parse_priority(const Element& presence) {
    const auto* el = presence.child("priority", ns::client);
    if (!el) {
        return 0;
    }
    std::string text = el->text();
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        return 0;
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    std::string_view t(text.data() + first, last - first + 1);
    std::string_view digits = t.starts_with('+') ? t.substr(1) : t;
    long long value = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ptr != digits.data() + digits.size() || digits.empty()) {
        return 0;
    }
    if (ec == std::errc::result_out_of_range) {
        return digits.starts_with('-') ? -128 : 127;
    }
    if (ec != std::errc{}) {
        return 0;
    }
    return static_cast<int>(std::clamp<long long>(value, -128, 127));
}

// One contact in one user's roster, with the flags kept beside the roster row.
struct Entry {
    RosterItem item;
    bool stored = false;    // a roster row exists
    bool hidden = false;    // the row only holds a pending-in request (roster_kv::hidden)
    bool had_flag = false;  // the roster_kv::hidden flag is set
    bool approved = false;  // pre-approved (roster_kv::approved)
    bool was_approved = false;

    bool empty() const {
        return item.subscription == "none" && !item.ask_out && !item.ask_in && !approved;
    }
};

class Presence {
public:
    explicit Presence(ModuleContext& m) : server_(m.server()) {
        m.hook("pre-presence/self", [this](StanzaEvent& e) { return outbound_broadcast(e); });
        for (const char* target : {"bare", "full", "host", "remote"}) {
            m.hook(std::string("pre-presence/") + target,
                   [this](StanzaEvent& e) { return outbound_addressed(e); });
        }
        m.hook("presence/bare", [this](StanzaEvent& e) { return inbound(e); });
        m.hook("presence/full", [this](StanzaEvent& e) { return inbound(e); });

        auto& s = server_;
        auto closed = s.session_closed.connect([this](Session& session) { closed_(session); });
        m.own_connection([&s, closed] { s.session_closed.disconnect(closed); });
        auto deleted =
            s.user_deleted.connect([this](const std::string& local) { user_deleted(local); });
        m.own_connection([&s, deleted] { s.user_deleted.disconnect(deleted); });
    }

private:
    // ---- roster state ----

    Entry load(std::string_view local, const std::string& contact) {
        Entry e;
        if (auto item = server_.roster().get(local, contact)) {
            e.item = std::move(*item);
            e.stored = true;
            e.had_flag = kv_flag(local, roster_kv::hidden, contact);
            e.hidden = roster_kv::is_hidden(e.item, e.had_flag);
        } else {
            e.item.contact = contact;
        }
        e.approved = e.was_approved = kv_flag(local, roster_kv::approved, contact);
        return e;
    }

    bool kv_flag(std::string_view local, std::string_view store, const std::string& contact) {
        return server_.kv().get(local, store, contact).has_value();
    }
    void set_kv_flag(std::string_view local, std::string_view store, const std::string& contact,
                     bool was, bool now) {
        if (now && !was) {
            server_.kv().put(local, store, contact, "1");
        } else if (was && !now) {
            server_.kv().remove(local, store, contact);
        }
    }

    // Stores the entry (a hidden one that no longer holds anything is deleted) and, when asked
    // and the item is in the user's roster, pushes it (RFC 6121 §2.1.6).
    void save(std::string_view local, Entry& e, bool push) {
        if (e.hidden && e.empty()) {
            if (e.stored) {
                server_.roster().remove(local, e.item.contact);
            }
            set_kv_flag(local, roster_kv::hidden, e.item.contact, e.had_flag, false);
            set_kv_flag(local, roster_kv::approved, e.item.contact, e.was_approved, false);
            e.stored = false;
            e.had_flag = e.hidden = e.was_approved = false;
            return;
        }
        set_kv_flag(local, roster_kv::hidden, e.item.contact, e.had_flag, e.hidden);
        set_kv_flag(local, roster_kv::approved, e.item.contact, e.was_approved, e.approved);
        e.had_flag = e.hidden;
        e.was_approved = e.approved;
        server_.roster().put(local, e.item);
        e.stored = true;
        if (push && !e.hidden) {
            if (auto* roster = server_.service<RosterService>()) {
                roster->push(local, e.item);
            }
        }
    }

    // ---- sending ----

    static Element presence(std::string_view type, const std::string& from, const std::string& to) {
        Element p("presence", std::string(ns::client));
        if (!type.empty()) {
            p.attr("type", std::string(type));
        }
        p.attr("from", from);
        if (!to.empty()) {
            p.attr("to", to);
        }
        return p;
    }

    void route(Element stanza) { server_.router().route(std::move(stanza)); }

    // The current presence of each available resource of `local`, addressed to `to`.
    std::size_t send_presence_of(std::string_view local, const std::string& to,
                                 std::string_view only_resource = {}) {
        std::size_t sent = 0;
        for (auto* s : server_.sessions().available(local)) {
            if (!s->presence || (!only_resource.empty() && s->jid().resource() != only_resource)) {
                continue;
            }
            Element copy = *s->presence;
            copy.attr("to", to);
            route(std::move(copy));
            ++sent;
        }
        return sent;
    }

    // RFC 6121 §3.2.2, §3.3.3: the contact must stop seeing `local`'s resources as available.
    void send_unavailable_of(std::string_view local, const std::string& to) {
        for (auto* s : server_.sessions().available(local)) {
            route(presence("unavailable", s->jid().str(), to));
        }
    }

    // ---- client presence without 'to': broadcast (RFC 6121 §4.2, §4.4, §4.5) ----

    Flow outbound_broadcast(StanzaEvent& e) {
        auto& session = *e.origin;
        const auto type = e.type();
        if (type.empty()) {
            available(session, e.stanza);
        } else if (type == "unavailable") {
            // The next available presence is an initial one again (RFC 6121 §4.2): messages
            // stored offline in between are then delivered, not held until the next login.
            announced_.erase(session.id());
            const bool was = session.available;
            session.available = false;
            session.presence.reset();
            unavailable(session, e.stanza, was);
        }
        // Subscription requests and probes need an addressee; an error without one goes
        // nowhere. All are dropped.
        return Flow::Stop;
    }

    void available(Session& session, const Element& stanza) {
        const auto& local = session.jid().local();
        const bool initial = !session.available;
        session.available = true;
        session.priority = parse_priority(stanza);
        session.presence = stanza;

        const auto items = server_.roster().get_all(local);
        // RFC 6121 §4.2.2 / §4.4.2: to contacts subscribed to the user, and to all of the user's
        // available resources, the one that sent it included.
        for (const auto& item : items) {
            if (has_from(item)) {
                Element copy = stanza;
                copy.attr("to", item.contact);
                route(std::move(copy));
            }
        }
        const auto own = server_.sessions().available(local);
        for (auto* s : own) {
            Element copy = stanza;
            copy.attr("to", s->jid().str());
            s->send(copy);
        }
        if (initial) {
            const auto me = session.jid().str();
            // RFC 6121 §4.2.2: probe the contacts the user is subscribed to. Local contacts are
            // answered here; remote ones get a probe from the user's bare JID.
            for (const auto& item : items) {
                if (!has_to(item)) {
                    continue;
                }
                auto contact = Jid::parse(item.contact);
                if (!contact) {
                    continue;
                }
                if (server_.is_local(*contact) && !contact->local().empty()) {
                    auto back = load(contact->local(), session.jid().bare().str());
                    if (has_from(back.item)) {
                        send_presence_of(contact->local(), me);
                    }
                } else {
                    route(presence("probe", session.jid().bare().str(), contact->bare().str()));
                }
            }
            // The user's other resources, as a probe of the own bare JID would return them.
            for (auto* s : own) {
                if (s != &session && s->presence) {
                    Element copy = *s->presence;
                    copy.attr("to", me);
                    session.send(copy);
                }
            }
            // RFC 6121 §3.1.3: subscription requests the user has not answered yet (not from
            // addresses the user blocked since: this delivery bypasses the router's hooks).
            auto* blocking = server_.service<BlockingService>();
            for (const auto& item : items) {
                if (!item.ask_in || item.pending_subscribe.empty()) {
                    continue;
                }
                auto from = Jid::parse(item.contact);
                if (blocking && from && blocking->blocks(local, *from)) {
                    continue;
                }
                if (auto request = xml::parse_fragment(item.pending_subscribe)) {
                    session.send(*request);
                }
            }
        }
        // Once per session, when it first becomes available with a non-negative priority (the
        // resources RFC 6121 §8.5.2.1.1 delivers messages to): offline messages, etc.
        if (session.priority >= 0 && announced_.insert(session.id()).second) {
            server_.initial_presence.emit(session);
        }
    }

    // RFC 6121 §4.5.2 and §4.6.3: unavailable presence to the subscribers and own resources
    // (when the session was available) and to everyone that got directed presence.
    void unavailable(Session& session, const Element& stanza, bool was_available) {
        const auto& local = session.jid().local();
        std::unordered_set<std::string> covered;  // bare JIDs that got the broadcast
        if (was_available) {
            for (const auto& item : server_.roster().get_all(local)) {
                if (has_from(item)) {
                    Element copy = stanza;
                    copy.attr("to", item.contact);
                    route(std::move(copy));
                    covered.insert(item.contact);
                }
            }
            for (auto* s : server_.sessions().available(local)) {
                if (s != &session) {
                    Element copy = stanza;
                    copy.attr("to", s->jid().str());
                    s->send(copy);
                }
            }
            covered.insert(session.jid().bare().str());
        }
        auto directed = std::move(session.directed_to);
        session.directed_to.clear();
        for (const auto& target : directed) {
            auto jid = Jid::parse(target);
            if (!jid || covered.contains(jid->bare().str())) {
                continue;
            }
            Element copy = stanza;
            copy.attr("to", target);
            route(std::move(copy));
        }
    }

    void closed_(Session& session) {
        announced_.erase(session.id());
        if (!session.available && session.directed_to.empty()) {
            return;
        }
        // RFC 6120 §7.7.2.2: a newer session took this resource and has announced itself; an
        // unavailable from the same full JID would now mark the new one offline.
        if (auto* now = server_.sessions().find(session.jid());
            now && now != &session && now->available) {
            session.available = false;
            session.directed_to.clear();
            return;
        }
        const bool was = session.available;
        session.available = false;
        session.presence.reset();
        unavailable(session, presence("unavailable", session.jid().str(), {}), was);
    }

    void user_deleted(const std::string& local) {
        // The account's data goes right after this signal, before its sessions finish closing:
        // announce them unavailable while the roster still says to whom.
        const auto sessions = server_.sessions().of(local);
        for (const auto& s : sessions) {
            announced_.erase(s->id());
            if (s->available || !s->directed_to.empty()) {
                const bool was = s->available;
                s->available = false;
                s->presence.reset();
                unavailable(*s, presence("unavailable", s->jid().str(), {}), was);
            }
        }
        // Cancel every subscription and pending request, so contacts' rosters stay truthful.
        auto user = Jid::make(local, server_.domain());
        if (!user) {
            return;
        }
        for (const auto& item : server_.roster().get_all(local)) {
            if (has_to(item) || item.ask_out) {
                route(presence("unsubscribe", user->str(), item.contact));
            }
            if (has_from(item) || item.ask_in) {
                route(presence("unsubscribed", user->str(), item.contact));
            }
        }
    }

    // ---- client presence with 'to' ----

    Flow outbound_addressed(StanzaEvent& e) {
        const auto type = e.type();
        if (is_subscription(type)) {
            outbound_subscription(e);
            return Flow::Stop;
        }
        if (type == "probe" || type == "error") {
            return Flow::Continue;  // probes are answered by inbound(); errors just route
        }
        // RFC 6121 §4.6.2: directed presence, remembered so it can be revoked.
        auto& session = *e.origin;
        const bool own_account = e.to.bare() == session.jid().bare();
        if (!own_account && e.target != RouteTarget::Host) {
            if (type.empty()) {
                if (session.directed_to.size() < max_directed) {
                    session.directed_to.insert(e.to.str());
                }
            } else {
                session.directed_to.erase(e.to.str());
            }
        }
        return Flow::Continue;
    }

    // RFC 6121 §3.1.2, §3.2.2, §3.3.2, §3.4 (and Appendix A.2): the user's side.
    void outbound_subscription(StanzaEvent& e) {
        if (e.target == RouteTarget::Host) {
            return;  // the server itself does not take subscriptions
        }
        const Jid user = e.from.bare();
        const Jid contact = e.to.bare();
        if (contact == user) {
            return;  // a user's own presence needs no subscription
        }
        const auto& local = user.local();
        Entry en = load(local, contact.str());
        auto& item = en.item;
        // The stanza goes on stamped with both bare JIDs, its payload (status, nick) intact.
        Element out = e.stanza;
        out.attr("from", user.str());
        out.attr("to", contact.str());
        const auto type = e.type();
        if (type == "subscribe") {
            if (!has_to(item) && !item.ask_out) {
                item.ask_out = true;
                en.hidden = false;  // the contact is now in the user's roster
                save(local, en, true);
            }
            route(std::move(out));
        } else if (type == "subscribed") {
            if (item.ask_in && !has_from(item)) {
                set_subscription(item, has_to(item), true);
                item.ask_in = false;
                item.pending_subscribe.clear();
                en.approved = false;
                en.hidden = false;
                save(local, en, true);
                route(std::move(out));
                // RFC 6121 §3.1.5: the new subscriber learns the user's current presence.
                send_presence_of(local, contact.str());
            } else if (has_from(item)) {
                route(std::move(out));  // no state change; repeats a confirmation
            } else if (!en.approved) {
                // RFC 6121 §3.4.2: pre-approval; noted and pushed, not routed.
                en.approved = true;
                en.hidden = false;
                save(local, en, true);
            }
        } else if (type == "unsubscribe") {
            if (has_to(item) || item.ask_out) {
                set_subscription(item, false, has_from(item));
                item.ask_out = false;
                save(local, en, true);
            }
            route(std::move(out));
        } else {  // unsubscribed
            const bool was_from = has_from(item);
            if (was_from || item.ask_in || en.approved) {
                set_subscription(item, has_to(item), false);
                item.ask_in = false;
                item.pending_subscribe.clear();
                en.approved = false;
                save(local, en, true);
            }
            route(std::move(out));
            if (was_from) {
                send_unavailable_of(local, contact.str());
            }
        }
    }

    // ---- stanzas for a local account (routed; not straight from its client) ----

    Flow inbound(StanzaEvent& e) {
        const auto type = e.type();
        if (type == "probe") {
            inbound_probe(e);
            return Flow::Stop;
        }
        if (!is_subscription(type)) {
            return Flow::Continue;  // the router delivers presence and errors
        }
        // RFC 6121 §3: subscriptions are between bare JIDs, whatever the stanza said.
        const Jid user = e.to.bare();
        const Jid sender = e.from.bare();
        if (sender == user) {
            return Flow::Stop;
        }
        const auto& local = user.local();
        Element in = e.stanza;
        in.attr("from", sender.str());
        in.attr("to", user.str());
        if (!server_.user_exists(local)) {
            if (type == "subscribe") {
                // RFC 6121 §3.1.3: no such account, so no subscription.
                route(presence("unsubscribed", user.str(), sender.str()));
            }
            return Flow::Stop;
        }
        Entry en = load(local, sender.str());
        auto& item = en.item;
        auto deliver = [&] { server_.router().deliver_to_available(user, in); };
        if (type == "subscribe") {
            if (has_from(item)) {
                // RFC 6121 §3.1.3: already approved; answer for the user, do not bother them.
                route(presence("subscribed", user.str(), sender.str()));
            } else if (en.approved) {
                // RFC 6121 §3.4.2: approved in advance.
                set_subscription(item, has_to(item), true);
                item.ask_in = false;
                item.pending_subscribe.clear();
                en.approved = false;
                save(local, en, true);
                route(presence("subscribed", user.str(), sender.str()));
                send_presence_of(local, sender.str());
            } else {
                // RFC 6121 §3.1.3: pending-in, kept until the user answers and shown again at
                // each of their logins. Not a roster change: nothing is pushed.
                item.ask_in = true;
                item.pending_subscribe = xml::serialize(in, ns::client);
                if (!en.stored) {
                    en.hidden = true;
                }
                save(local, en, false);
                deliver();
            }
        } else if (type == "subscribed") {
            // RFC 6121 §3.1.6: only an answer to the user's own request counts.
            if (item.ask_out) {
                item.ask_out = false;
                set_subscription(item, true, has_from(item));
                save(local, en, true);
                deliver();
            }
        } else if (type == "unsubscribe") {
            // RFC 6121 §3.3.3 (and the cancelling of a pending request).
            const bool was_from = has_from(item);
            if (was_from || item.ask_in) {
                set_subscription(item, has_to(item), false);
                item.ask_in = false;
                item.pending_subscribe.clear();
                save(local, en, was_from);
                deliver();
                if (was_from) {
                    send_unavailable_of(local, sender.str());
                }
            }
        } else {  // unsubscribed: RFC 6121 §3.2.3
            if (has_to(item) || item.ask_out) {
                set_subscription(item, false, has_from(item));
                item.ask_out = false;
                save(local, en, true);
                deliver();
            }
        }
        return Flow::Stop;
    }

    // RFC 6121 §4.3.2: presence goes only to those the account approved (or itself).
    void inbound_probe(StanzaEvent& e) {
        const Jid owner = e.to.bare();
        const Jid prober = e.from.bare();
        const auto& local = owner.local();
        if (owner.local().empty() || !server_.user_exists(local)) {
            return;
        }
        if (prober != owner && !has_from(load(local, prober.str()).item)) {
            return;  // reveal nothing
        }
        const auto& resource = e.to.resource();
        if (send_presence_of(local, e.from.str(), resource) == 0) {
            route(presence("unavailable", e.to.str(), e.from.str()));
        }
    }

    Server& server_;
    std::unordered_set<std::uint64_t> announced_;  // sessions initial_presence was emitted for
};

std::unique_ptr<Presence> load(ModuleContext& m) {
    return std::make_unique<Presence>(m);
}

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(presence, "RFC 6121: presence subscriptions, broadcast, probes and directed presence",
             haven::xeps::load)
