// RFC 6121 presence: the module, the roster state it keeps beside each roster row, and sending.
#include "xeps/rfc6121_presence/presence.hpp"

#include <algorithm>
#include <string>

#include "server/storage/database.hpp"
#include "server/storage/kv_store.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/rfc6121_roster.hpp"

namespace haven::xeps::presence {

Presence::Presence(ModuleContext& m)
    : server_(m.server()),
      // Declared by the roster module; the presence module adds roster items too (§3.1.2).
      max_roster_items_(static_cast<std::size_t>(server_.config().get_int("roster", "max_items"))) {
    m.hook("pre-presence/self", [this](StanzaEvent& e) { return outbound_broadcast(e); });
    for (auto target : {RouteTarget::Bare, RouteTarget::Full, RouteTarget::Host,
                        RouteTarget::Remote, RouteTarget::Service}) {
        // Service: presence to a room occupant is directed presence too, revoked on logout.
        m.hook_outbound(StanzaKind::Presence, target,
                        [this](StanzaEvent& e) { return outbound_addressed(e); });
    }
    // Subscription handling writes roster state; a locked database answers type wait (the
    // router's guard, server/storage/README.md).
    m.hook("presence/bare", [this](StanzaEvent& e) { return inbound(e); });
    m.hook("presence/full", [this](StanzaEvent& e) { return inbound(e); });

    auto& s = server_;
    auto closed = s.session_closed.connect([this](Session& session) { closed_(session); });
    m.own_connection([&s, closed] { s.session_closed.disconnect(closed); });
    auto deleted =
        s.user_deleted.connect([this](const std::string& local) { user_deleted(local); });
    m.own_connection([&s, deleted] { s.user_deleted.disconnect(deleted); });
}

Entry Presence::load(std::string_view local, const std::string& contact) {
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

bool Presence::roster_full(std::string_view local) {
    // Counted like a roster set does: rows that only hold a pending request are not items.
    const auto all = server_.roster().count(local);
    const auto pending_only = server_.kv().count(local, roster_kv::hidden);
    return all - std::min(all, pending_only) >= max_roster_items_;
}

bool Presence::kv_flag(std::string_view local, std::string_view store, const std::string& contact) {
    return server_.kv().get(local, store, contact).has_value();
}

void Presence::set_kv_flag(std::string_view local, std::string_view store,
                           const std::string& contact, bool was, bool now) {
    if (now && !was) {
        server_.kv().put(local, store, contact, "1");
    } else if (was && !now) {
        server_.kv().remove(local, store, contact);
    }
}

void Presence::save(std::string_view local, Entry& e, bool push) {
    // The roster row and its flags change together or not at all (a locked database must not
    // leave half a subscription state behind).
    storage::Transaction tx(server_.db());
    if (e.hidden && e.empty()) {
        if (e.stored) {
            server_.roster().remove(local, e.item.contact);
        }
        set_kv_flag(local, roster_kv::hidden, e.item.contact, e.had_flag, false);
        set_kv_flag(local, roster_kv::approved, e.item.contact, e.was_approved, false);
        tx.commit();
        e.stored = false;
        e.had_flag = e.hidden = e.was_approved = false;
        return;
    }
    set_kv_flag(local, roster_kv::hidden, e.item.contact, e.had_flag, e.hidden);
    set_kv_flag(local, roster_kv::approved, e.item.contact, e.was_approved, e.approved);
    server_.roster().put(local, e.item);
    tx.commit();
    e.had_flag = e.hidden;
    e.was_approved = e.approved;
    e.stored = true;
    if (push && !e.hidden) {
        if (auto* roster = server_.service<RosterService>()) {
            roster->push(local, e.item);
        }
    }
}

Element Presence::presence(std::string_view type, const std::string& from, const std::string& to) {
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

std::size_t Presence::send_presence_of(std::string_view local, const std::string& to,
                                       std::string_view only_resource) {
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

void Presence::send_unavailable_of(std::string_view local, const std::string& to) {
    for (auto* s : server_.sessions().available(local)) {
        route(presence("unavailable", s->jid().str(), to));
    }
}

std::unique_ptr<Presence> load_module(ModuleContext& m) {
    // RFC 6121 §3.4: subscription pre-approval, which the subscription handling honours.
    m.add_stream_extension(stream_feature(
        StreamStage::AfterAuth, Element("sub", std::string(ns::presence_pre_approval))));
    return std::make_unique<Presence>(m);
}

}  // namespace haven::xeps::presence

HAVEN_MODULE(presence, haven::xeps::presence::load_module)
