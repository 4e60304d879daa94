// RFC 6121 §4.2-§4.5: a client's own presence (no 'to'): initial presence, broadcast to
// subscribers and own resources, unavailable presence, and the end of a session or account.
#include "xeps/rfc6121_presence/presence.hpp"

#include <charconv>
#include <string>

#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0191_blocking.hpp"

namespace haven::xeps::presence {
namespace {

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

}  // namespace

Flow Presence::outbound_broadcast(StanzaEvent& e) {
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

void Presence::available(Session& session, const Element& stanza) {
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

void Presence::unavailable(Session& session, const Element& stanza, bool was_available) {
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

void Presence::closed_(Session& session) {
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

void Presence::user_deleted(const std::string& local) {
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

}  // namespace haven::xeps::presence
