// Router: address validation, event dispatch and the RFC 6121 §8.5 delivery rules.
#include "server/core/router.hpp"

#include "server/core/server.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven {
namespace {

// Event names are built once: "message/bare", "pre-message/bare", ...
struct EventNames {
    static constexpr int targets = 6;
    std::string plain[3][targets];
    std::string pre[3][targets];
    EventNames() {
        const char* kinds[] = {"message", "presence", "iq"};
        for (int k = 0; k < 3; ++k) {
            for (int t = 0; t < targets; ++t) {
                plain[k][t] =
                    std::string(kinds[k]) + "/" + std::string(target_name(RouteTarget(t)));
                pre[k][t] = "pre-" + plain[k][t];
            }
        }
    }
};
const EventNames& event_names() {
    static const EventNames names;  // immutable after first use
    return names;
}

bool valid_type(StanzaKind kind, std::string_view type) {
    switch (kind) {
        case StanzaKind::Message:
            return type.empty() || type == "chat" || type == "normal" || type == "headline" ||
                   type == "groupchat" || type == "error";
        case StanzaKind::Presence:
            return type.empty() || type == "unavailable" || type == "subscribe" ||
                   type == "subscribed" || type == "unsubscribe" || type == "unsubscribed" ||
                   type == "probe" || type == "error";
        case StanzaKind::Iq:
            return type == "get" || type == "set" || type == "result" || type == "error";
        case StanzaKind::Other:
            break;
    }
    return false;
}

}  // namespace

std::string_view target_name(RouteTarget t) {
    switch (t) {
        case RouteTarget::Host: return "host";
        case RouteTarget::Bare: return "bare";
        case RouteTarget::Full: return "full";
        case RouteTarget::Remote: return "remote";
        case RouteTarget::Self: return "self";
        case RouteTarget::Service: return "service";
    }
    return "?";
}

const std::string& event_name(StanzaKind kind, RouteTarget target, bool outbound) {
    const auto& names = event_names();
    const auto k = static_cast<int>(kind == StanzaKind::Other ? StanzaKind::Message : kind);
    const auto t = static_cast<int>(target);
    return outbound ? names.pre[k][t] : names.plain[k][t];
}

std::string_view StanzaEvent::lang() const {
    if (auto l = stanza.attr("xml:lang"); !l.empty()) {
        return l;
    }
    return origin ? std::string_view(origin->lang()) : std::string_view{};
}

void StanzaEvent::reply(Element r) {
    if (origin) {
        origin->send(r);
    } else {
        server.router().route(std::move(r));
    }
}

void StanzaEvent::reply_error(std::string_view condition, std::string_view text,
                              std::string_view text_lang, std::string_view type) {
    if (is_error_or_result(stanza)) {
        return;  // RFC 6120 §8.3.1: never answer an error with an error, nor a result
    }
    auto err = make_error(stanza, condition, text, text_lang, type);
    // The reply goes to the stamped sender even if the original carried no 'from'.
    err.attr("to", from.str());
    if (!to.empty()) {
        err.attr("from", to.str());
    } else {
        err.attr("from", server.domain());
    }
    reply(std::move(err));
}

void Router::from_session(Session& origin, Element stanza) {
    dispatch(stanza, &origin, origin.jid(), true);
}

// A handler threw. A locked database (another process holds it) is temporary: a warning and
// <resource-constraint/> type wait with the configurable storage-busy text (the one answer to a
// locked database for every handler); anything else is an error in the log and
// internal-server-error. Never the exception text to the sender: it can name tables or files.
void Router::reply_failure(StanzaEvent& ev, std::string_view what, const HandlerFailure& f) {
    if (f.temporary) {
        server_.log().warn("storage: database locked by another process; <", ev.stanza.name(),
                           "/> answered with resource-constraint");
        const auto lang = ev.lang();
        ev.reply_error(f.condition(), server_.texts().get("storage-busy", lang),
                       server_.texts().pick_lang("storage-busy", lang));
        return;
    }
    server_.log().error(what, " failed on <", ev.stanza.name(), "/>: ", f.what);
    ev.reply_error(f.condition());
}

void Router::route(Element stanza) {
    auto from = Jid::parse(stanza.attr("from"));
    if (!from) {
        server_.log().warn("dropping server-generated <", stanza.name(), "/> with bad from");
        return;
    }
    dispatch(stanza, nullptr, std::move(*from), false);
}

void Router::dispatch(Element& stanza, Session* origin, Jid from, bool outbound) {
    // The event bus guards each handler, but the router's own paths (the fallbacks' account
    // lookups and offline storage) can throw too, e.g. a StorageError. Nothing a stanza does may
    // leave here: it is logged once with the top tag and the sender gets internal-server-error
    // (resource-constraint when the database was only locked).
    HandlerFailure failure;
    try {
        dispatch_unguarded(stanza, origin, std::move(from), outbound);
        return;
    } catch (...) {
        failure.from_current_exception();
    }
    server_.log().error("routing <", stanza.name(), "/> failed: ", failure.what);
    if (is_error_or_result(stanza) || kind_of(stanza) == StanzaKind::Other) {
        return;
    }
    try {
        // dispatch_unguarded stamped 'from' before any handler ran; without it (it failed
        // earlier) the origin's address is the sender.
        auto sender = Jid::parse(stanza.attr("from"));
        if (!sender && origin) {
            sender = origin->jid();
        }
        if (!sender) {
            return;
        }
        auto err = make_error(stanza, failure.condition());
        err.attr("to", sender->str());
        auto to = stanza.attr("to");
        err.attr("from", to.empty() ? server_.domain() : std::string(to));
        if (origin) {
            origin->send(err);
        } else if (server_.is_local(*sender)) {
            deliver_full(*sender, err);
        }
    } catch (...) {
        // Answering failed as well (out of memory): the stanza is dropped, already logged.
    }
}

void Router::dispatch_unguarded(Element& stanza, Session* origin, Jid&& from, bool outbound) {
    auto kind = kind_of(stanza);
    if (kind == StanzaKind::Other) {
        return;
    }
    StanzaEvent ev{server_, stanza, origin, std::move(from), Jid{}, kind, RouteTarget::Self};
    if (!valid_type(kind, ev.type())) {
        ev.reply_error("bad-request", "invalid stanza type");
        return;
    }
    if (kind == StanzaKind::Iq && !is_error_or_result(stanza)) {
        // RFC 6120 §8.2.3: an IQ get/set carries exactly one payload element and an id.
        if (stanza.attr("id").empty() || stanza.children().size() != 1) {
            ev.reply_error("bad-request", "an IQ request needs an id and exactly one payload");
            return;
        }
    }
    auto to_attr = stanza.attr("to");
    if (to_attr.empty()) {
        if (kind == StanzaKind::Presence && origin) {
            ev.target = RouteTarget::Self;  // broadcast to subscribers
        } else if (origin) {
            // RFC 6120 §10.3.3: handled on behalf of the sending account.
            ev.to = ev.from.bare();
            ev.target = RouteTarget::Bare;
        } else {
            return;  // server-generated stanzas always carry 'to'
        }
    } else {
        auto to = Jid::parse(to_attr);
        if (!to) {
            ev.reply_error("jid-malformed");
            return;
        }
        ev.to = std::move(*to);
        if (server_.serves(ev.to.domain())) {
            ev.target = RouteTarget::Service;
        } else if (!server_.is_local(ev.to)) {
            ev.target = RouteTarget::Remote;
        } else if (ev.to.local().empty()) {
            ev.target = ev.to.resource().empty() ? RouteTarget::Host : RouteTarget::Full;
        } else {
            ev.target = ev.to.resource().empty() ? RouteTarget::Bare : RouteTarget::Full;
        }
    }
    // Stamp the authoritative sender (RFC 6120 §8.1.2.1).
    stanza.attr("from", ev.from.str());

    HandlerFailure failure;
    FireResult r = FireResult::Unhandled;
    if (outbound) {
        r = server_.bus().fire(event_name(kind, ev.target, true), ev, &failure);
    }
    if (r == FireResult::Unhandled) {
        r = server_.bus().fire(event_name(kind, ev.target, false), ev, &failure);
    }
    if (r == FireResult::Failed) {
        reply_failure(ev, "handler", failure);
        return;
    }
    if (r == FireResult::Unhandled) {
        fallback(ev);
    }
}

void Router::fallback(StanzaEvent& ev) {
    switch (ev.kind) {
        case StanzaKind::Message: fallback_message(ev); break;
        case StanzaKind::Presence: fallback_presence(ev); break;
        case StanzaKind::Iq: fallback_iq(ev); break;
        case StanzaKind::Other: break;
    }
}

bool Router::deliver_full(const Jid& to, const Element& stanza) {
    if (auto* s = server_.sessions().find(to)) {
        s->send(stanza);
        return true;
    }
    return false;
}

std::size_t Router::deliver_message_to_bare(const Jid& to, const Element& stanza) {
    auto type = stanza.attr("type");
    std::vector<Session*> targets;
    if (type == "headline") {
        // RFC 6121 §8.5.2.1.1: headlines go to all non-negative-priority resources.
        for (auto* s : server_.sessions().available(to.local())) {
            if (s->priority >= 0) {
                targets.push_back(s);
            }
        }
    } else {
        targets = server_.sessions().message_targets(to.local());
    }
    for (auto* s : targets) {
        s->send(stanza);
    }
    return targets.size();
}

std::size_t Router::deliver_to_available(const Jid& to, const Element& stanza) {
    auto list = server_.sessions().available(to.local());
    for (auto* s : list) {
        s->send(stanza);
    }
    return list.size();
}

void Router::fallback_message(StanzaEvent& ev) {
    auto type = ev.type();
    switch (ev.target) {
        case RouteTarget::Remote:
            ev.reply_error("remote-server-not-found");
            return;
        case RouteTarget::Host:
        case RouteTarget::Self:
        case RouteTarget::Service:  // the module serving the domain left it unhandled
            if (type != "headline") {
                ev.reply_error("service-unavailable");
            }
            return;
        case RouteTarget::Full:
            if (deliver_full(ev.to, ev.stanza)) {
                return;
            }
            if (type == "groupchat") {
                ev.reply_error("service-unavailable");
                return;
            }
            if (type == "error") {
                return;
            }
            // RFC 6121 §8.5.3.2.1: no such resource — treat as addressed to the bare JID.
            [[fallthrough]];
        case RouteTarget::Bare: {
            if (type == "groupchat") {
                ev.reply_error("service-unavailable");
                return;
            }
            if (!server_.user_exists(ev.to.local())) {
                if (type != "headline") {
                    ev.reply_error("service-unavailable");
                }
                return;
            }
            if (deliver_message_to_bare(ev.to.bare(), ev.stanza) > 0) {
                return;
            }
            if (type == "headline" || type == "error") {
                return;
            }
            HandlerFailure failure;
            auto r = server_.bus().fire("message/offline", ev, &failure);
            if (r == FireResult::Unhandled) {
                ev.reply_error("service-unavailable");
            } else if (r == FireResult::Failed) {
                reply_failure(ev, "offline handler", failure);
            }
            return;
        }
    }
}

void Router::fallback_presence(StanzaEvent& ev) {
    auto type = ev.type();
    bool subscription = type == "subscribe" || type == "subscribed" || type == "unsubscribe" ||
                        type == "unsubscribed";
    switch (ev.target) {
        case RouteTarget::Remote:
            if (type != "error" && type != "unavailable") {
                ev.reply_error("remote-server-not-found");
            }
            return;
        case RouteTarget::Host:
        case RouteTarget::Self:
        case RouteTarget::Service:
            return;
        case RouteTarget::Full:
            if (!subscription && deliver_full(ev.to, ev.stanza)) {
                return;
            }
            if (!subscription) {
                return;  // RFC 6121 §8.5.3.2.1: silently ignored
            }
            [[fallthrough]];
        case RouteTarget::Bare:
            if (!server_.user_exists(ev.to.local())) {
                return;
            }
            if (type != "probe") {
                deliver_to_available(ev.to.bare(), ev.stanza);
            }
            return;
    }
}

void Router::fallback_iq(StanzaEvent& ev) {
    auto type = ev.type();
    bool request = type == "get" || type == "set";
    switch (ev.target) {
        case RouteTarget::Remote:
            if (request) {
                ev.reply_error("remote-server-not-found");
            }
            return;
        case RouteTarget::Service:
            if (request) {
                ev.reply_error("service-unavailable");
            }
            return;
        case RouteTarget::Full:
            if (deliver_full(ev.to, ev.stanza)) {
                return;
            }
            if (request) {
                ev.reply_error("service-unavailable");
            }
            return;
        case RouteTarget::Host:
        case RouteTarget::Bare:
        case RouteTarget::Self: {
            if (!request) {
                return;
            }
            // Payload-keyed events: "iq-get/host/urn:xmpp:ping".
            const auto* payload = ev.stanza.first_child();
            std::string name = "iq-";
            name += type;
            name += ev.target == RouteTarget::Host ? "/host/" : "/bare/";
            name += payload ? payload->ns() : std::string{};
            HandlerFailure failure;
            auto r = server_.bus().fire(name, ev, &failure);
            if (r == FireResult::Failed) {
                reply_failure(ev, "IQ handler", failure);
            } else if (r == FireResult::Unhandled) {
                ev.reply_error("service-unavailable");
            }
            return;
        }
    }
}

}  // namespace haven
