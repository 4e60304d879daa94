// RFC 6121 §3, §4.3, §4.6: presence a client addresses ('to': subscription requests and
// answers, directed presence) and presence routed to a local account (the contact's side of
// subscriptions, probes).
#include "xeps/rfc6121_presence/presence.hpp"

#include <string>

#include "server/storage/kv_store.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/rfc6121_roster.hpp"

namespace haven::xeps::presence {

Flow Presence::outbound_addressed(StanzaEvent& e) {
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

void Presence::outbound_subscription(StanzaEvent& e) {
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
    // A request or a pre-approval for a contact not yet in the roster adds an item: bounded
    // like a roster set (RFC 6121 §2.3.3), or one account could grow its roster without end.
    const bool adds_item =
        (!en.stored || en.hidden) &&
        ((type == "subscribe" && !has_to(item) && !item.ask_out) ||
         (type == "subscribed" && !item.ask_in && !has_from(item) && !en.approved));
    if (adds_item && roster_full(local)) {
        e.reply_error("policy-violation", "the roster is full");
        return;
    }
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

Flow Presence::inbound(StanzaEvent& e) {
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
        } else if (!en.stored && server_.kv().count(local, roster_kv::hidden) >=
                                     max_pending_requests) {
            // Requests from strangers are not kept past max_pending_requests: shown to the
            // user's online resources only. The requester still sees it as pending.
            deliver();
        } else {
            // RFC 6121 §3.1.3: pending-in, kept until the user answers and shown again at
            // each of their logins. Not a roster change: nothing is pushed.
            item.ask_in = true;
            item.pending_subscribe = xml::serialize(in, ns::client);
            if (item.pending_subscribe.size() > max_pending_subscribe_bytes) {
                item.pending_subscribe =
                    xml::serialize(presence("subscribe", sender.str(), user.str()), ns::client);
            }
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

void Presence::inbound_probe(StanzaEvent& e) {
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

}  // namespace haven::xeps::presence
