// XEP-0191: Blocking Command — per-user block lists, pushes, and the inbound/outbound filter.
#include "xeps/xep0191_blocking.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "server/core/string_map.hpp"
#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {

bool blocklist_item_matches(const Jid& item, const Jid& jid) {
    if (!item.local().empty()) {
        // <user@domain/resource> matches only that resource, <user@domain> any resource.
        return item.local() == jid.local() && item.domain() == jid.domain() &&
               (item.resource().empty() || item.resource() == jid.resource());
    }
    if (!item.resource().empty()) {
        return jid == item;  // <domain/resource>: only that resource of the domain itself
    }
    // <domain>: the domain, anything at it, and its subdomains.
    const auto& d = jid.domain();
    return d == item.domain() ||
           (d.size() > item.domain().size() && d.ends_with(item.domain()) &&
            d[d.size() - item.domain().size() - 1] == '.');
}

namespace {

constexpr std::string_view store = "blocklist";  // sealed at rest: who blocks whom is sensitive
constexpr std::string_view key = "items";

class Blocking final : public BlockingService {
public:
    explicit Blocking(ModuleContext& m)
        : server_(m.server()),
          max_items_(static_cast<std::size_t>(m.opt_int("max_items"))),
          quota_bytes_(static_cast<std::size_t>(m.opt_int("quota_bytes"))) {
        m.add_feature(std::string(ns::blocking));
        m.hook_iq(IqType::Get, Target::Bare, ns::blocking,
                  [this](StanzaEvent& e) { return get(e); });
        m.hook_iq(IqType::Set, Target::Bare, ns::blocking,
                  [this](StanzaEvent& e) { return set(e); });
        for (std::string kind : {"message", "presence", "iq"}) {
            // Stanzas a local client sends (XEP-0191 §3.3: bounce what goes to a blocked JID).
            for (std::string target : {"bare", "full", "remote", "service"}) {
                m.hook("pre-" + kind + "/" + target,
                       [this](StanzaEvent& e) { return outbound(e); }, prio::policy);
            }
            // Every stanza on its way to a local account, and server-generated ones (presence
            // broadcasts) from a local account.
            for (std::string target : {"bare", "full", "remote"}) {
                m.hook(kind + "/" + target, [this](StanzaEvent& e) { return filter(e); },
                       prio::policy);
            }
        }
        auto& s = server_;
        auto closed = s.session_closed.connect([this](Session& session) { closed_(session); });
        m.own_connection([&s, closed] { s.session_closed.disconnect(closed); });
        auto deleted = s.user_deleted.connect([this](const std::string& local) {
            cache_.erase(local);
        });
        m.own_connection([&s, deleted] { s.user_deleted.disconnect(deleted); });
        server_.provide<BlockingService>(this);
    }
    ~Blocking() override { server_.withdraw<BlockingService>(); }

    bool blocks(std::string_view localpart, const Jid& other) override {
        // Checked for every stanza in and out, so nothing here allocates.
        const bool ours = other.domain() == server_.domain();
        if (localpart.empty() || other.empty() || (ours && other.local().empty()) ||
            (ours && other.local() == localpart)) {
            return false;  // never cut a user off from their own account or their server
        }
        const auto& list = items(localpart);
        return std::any_of(list.begin(), list.end(),
                           [&](const Jid& item) { return blocklist_item_matches(item, other); });
    }

private:
    // ---- storage: one sealed row per user; cached while the user has a session ----

    const std::vector<Jid>& items(std::string_view localpart) {
        if (auto it = cache_.find(localpart); it != cache_.end()) {
            return it->second;
        }
        auto list = load(localpart);
        if (server_.sessions().of(localpart).empty()) {
            scratch_ = std::move(list);  // offline recipients are not cached: bounded memory
            return scratch_;
        }
        return cache_[std::string(localpart)] = std::move(list);
    }

    std::vector<Jid>& mutable_items(const std::string& localpart) {
        if (auto it = cache_.find(localpart); it != cache_.end()) {
            return it->second;
        }
        return cache_[localpart] = load(localpart);
    }

    std::vector<Jid> load(std::string_view localpart) const {
        std::vector<Jid> out;
        auto text = server_.kv().get(localpart, store, key);
        if (!text) {
            return out;
        }
        std::size_t pos = 0;
        while (pos < text->size()) {
            auto end = text->find('\n', pos);
            if (end == std::string::npos) {
                end = text->size();
            }
            if (auto jid = Jid::parse(std::string_view(*text).substr(pos, end - pos))) {
                out.push_back(std::move(*jid));
            }
            pos = end + 1;
        }
        return out;
    }

    static std::size_t stored_bytes(const std::vector<Jid>& list) {
        std::size_t n = 0;
        for (const auto& jid : list) {
            n += jid.str().size() + 1;  // as save() writes it
        }
        return n;
    }

    void save(const std::string& localpart, const std::vector<Jid>& list) {
        if (list.empty()) {
            server_.kv().remove(localpart, store, key);
            return;
        }
        std::string text;
        for (const auto& jid : list) {
            text += jid.str();
            text += '\n';  // PRECIS forbids control characters in every JID part
        }
        server_.kv().put(localpart, store, key, text);
    }

    void closed_(Session& session) {
        requested_.erase(session.id());
        if (server_.sessions().of(session.jid().local()).empty()) {
            cache_.erase(session.jid().local());
        }
    }

    // ---- the filter ----

    // A stanza from a local client to a JID it blocks: XEP-0191 §3.3 not-acceptable + <blocked/>.
    Flow outbound(StanzaEvent& e) {
        if (!blocks(e.from.local(), e.to)) {
            return Flow::Continue;
        }
        auto type = e.type();
        if (e.kind == StanzaKind::Presence && (type == "unsubscribe" || type == "unsubscribed")) {
            // Ending a subscription only takes from the blocked contact: let the user do it.
            return Flow::Continue;
        }
        if (is_error_or_result(e.stanza) ||
            (e.kind == StanzaKind::Presence && (type == "unavailable" || type == "probe"))) {
            return Flow::Stop;  // nothing to answer; still never routed
        }
        auto err = make_error(e.stanza, "not-acceptable");
        err.attr("to", e.from.str());
        err.attr("from", e.to.str());
        if (auto* error = err.child("error")) {
            error->add(Element("blocked", std::string(ns::blocking_errors)));
        }
        e.reply(std::move(err));
        return Flow::Stop;
    }

    Flow filter(StanzaEvent& e) {
        // Inbound: the recipient is a local account that blocks the sender (XEP-0191 §3.3).
        if (e.target != RouteTarget::Remote && !e.to.local().empty() &&
            blocks(e.to.local(), e.from)) {
            auto type = e.type();
            switch (e.kind) {
                case StanzaKind::Presence:
                    break;  // MUST NOT respond: the user just appears offline
                case StanzaKind::Message:
                    if (type != "headline") {
                        e.reply_error("service-unavailable");
                    }
                    break;
                case StanzaKind::Iq:
                    if (type == "get" || type == "set") {
                        e.reply_error("service-unavailable");
                    }
                    break;
                case StanzaKind::Other:
                    break;
            }
            return Flow::Stop;
        }
        // Outbound from a local account, generated by the server (presence broadcasts, probe
        // answers): silently never routed to a blocked JID. Client stanzas were bounced above.
        if (e.from.domain() == server_.domain() && !e.from.local().empty() &&
            blocks(e.from.local(), e.to)) {
            if (e.kind == StanzaKind::Presence &&
                (e.type() == "unsubscribe" || e.type() == "unsubscribed")) {
                return Flow::Continue;
            }
            return Flow::Stop;
        }
        return Flow::Continue;
    }

    // ---- the protocol ----

    std::optional<std::vector<Jid>> parse_items(StanzaEvent& e, const Element& payload) const {
        const auto items = payload.children("item", ns::blocking);
        // No list can hold more than max_items_, so neither can one request: refused before
        // parsing (PRECIS) and de-duplicating (quadratic) thousands of items on the event loop.
        if (items.size() > max_items_) {
            e.reply_error("policy-violation", "too many items in one request");
            return std::nullopt;
        }
        std::vector<Jid> out;
        for (const auto* item : items) {
            auto jid = Jid::parse(item->attr("jid"));
            if (!jid) {
                e.reply_error("jid-malformed");
                return std::nullopt;
            }
            if (std::find(out.begin(), out.end(), *jid) == out.end()) {
                out.push_back(std::move(*jid));
            }
        }
        return out;
    }

    Element items_element(std::string_view name, const std::vector<Jid>& list) const {
        Element el{std::string(name), std::string(ns::blocking)};
        for (const auto& jid : list) {
            el.add(Element("item", std::string(ns::blocking))).attr("jid", jid.str());
        }
        return el;
    }

    Flow get(StanzaEvent& e) {
        if (e.to.bare() != e.from.bare()) {
            e.reply_error("forbidden");  // a block list is its owner's business only
            return Flow::Stop;
        }
        if (!e.stanza.child("blocklist", ns::blocking)) {
            e.reply_error("bad-request");
            return Flow::Stop;
        }
        if (e.origin) {
            requested_.insert(e.origin->id());  // §3.3: pushes go to resources that asked
        }
        auto result = make_result(e.stanza);
        result.add(items_element("blocklist", mutable_items(e.from.local())));
        e.reply(std::move(result));
        return Flow::Stop;
    }

    Flow set(StanzaEvent& e) {
        if (e.to.bare() != e.from.bare()) {
            e.reply_error("forbidden");
            return Flow::Stop;
        }
        const auto* block = e.stanza.child("block", ns::blocking);
        const auto* unblock = e.stanza.child("unblock", ns::blocking);
        if (!block && !unblock) {
            e.reply_error("bad-request");
            return Flow::Stop;
        }
        auto requested = parse_items(e, block ? *block : *unblock);
        if (!requested) {
            return Flow::Stop;
        }
        const auto& user = e.from.local();
        auto& list = mutable_items(user);
        if (block) {
            if (requested->empty()) {
                e.reply_error("bad-request", "a block needs at least one item");  // §3.3
                return Flow::Stop;
            }
            std::vector<Jid> added;
            for (const auto& jid : *requested) {
                if (std::find(list.begin(), list.end(), jid) == list.end()) {
                    added.push_back(jid);
                }
            }
            if (list.size() + added.size() > max_items_) {
                e.reply_error("policy-violation", "the block list is full");
                return Flow::Stop;
            }
            // Stored first: if the database is locked (the router answers type wait), neither
            // the cache nor any contact has seen the change.
            std::vector<Jid> next = list;
            next.insert(next.end(), added.begin(), added.end());
            if (stored_bytes(next) > quota_bytes_) {
                // A JID may be 3071 bytes: the count alone would allow megabytes (issue 10 §2).
                e.reply_error("policy-violation", "the block list is full");
                return Flow::Stop;
            }
            save(user, next);
            // §3.3: the contact sees the user go offline. Sent before the block takes effect
            // in the cache, since afterwards the filter would (rightly) stop it.
            send_presence(user, added, false);
            list = std::move(next);  // map nodes never move
            e.reply(make_result(e.stanza));
            push(user, items_element("block", *requested));
            return Flow::Stop;
        }
        std::vector<Jid> removed;
        std::vector<Jid> next = list;
        if (requested->empty()) {
            removed = std::move(next);  // §3.5: unblock everything
            next.clear();
        } else {
            for (const auto& jid : *requested) {
                if (auto it = std::find(next.begin(), next.end(), jid); it != next.end()) {
                    removed.push_back(*it);
                    next.erase(it);
                }
            }
        }
        save(user, next);  // before the cache changes (see above)
        list = std::move(next);
        e.reply(make_result(e.stanza));
        push(user, items_element("unblock", *requested));
        // §3.4: the contact gets the user's current presence again.
        send_presence(user, removed, true);
        return Flow::Stop;
    }

    // Block/unblock pushes, like roster pushes, to the resources that retrieved the list.
    void push(const std::string& user, const Element& payload) {
        for (const auto& s : server_.sessions().of(user)) {
            if (!requested_.contains(s->id())) {
                continue;
            }
            Element iq("iq", std::string(ns::client));
            iq.attr("to", s->jid().str());
            iq.attr("type", "set");
            iq.attr("id", "block-push-" + std::to_string(++push_counter_));
            iq.add(payload);
            s->send(iq);
        }
    }

    // Sends unavailable (block) or the current presence (unblock) of each available resource of
    // `user` to whoever one of `items` covers and may see that presence: roster contacts with a
    // subscription to the user (RFC 6121 §4.2.2: 'from' or 'both'), and JIDs that got directed
    // presence from the resource. The roster and the directed-presence lists are read and
    // parsed once per request, not once per item (a request holds up to max_items_).
    void send_presence(const std::string& user, const std::vector<Jid>& items, bool current) {
        if (items.empty()) {
            return;
        }
        auto resources = server_.sessions().available(user);
        if (resources.empty()) {
            return;
        }
        std::vector<Jid> subscribers;
        for (const auto& r : server_.roster().get_all(user)) {
            if (r.subscription != "from" && r.subscription != "both") {
                continue;
            }
            if (auto contact = Jid::parse(r.contact)) {
                subscribers.push_back(std::move(*contact));
            }
        }
        for (auto* s : resources) {
            if (current && !s->presence) {
                continue;
            }
            std::vector<Jid> directed;
            for (const auto& d : s->directed_to) {
                if (auto jid = Jid::parse(d)) {
                    directed.push_back(std::move(*jid));
                }
            }
            Element p("presence", std::string(ns::client));
            if (current) {
                p = *s->presence;
                p.remove_attr("id");
            } else {
                p.attr("type", "unavailable");
            }
            p.attr("from", s->jid().str());
            for (const auto& item : items) {
                std::vector<Jid> targets;
                const bool one_resource = !item.local().empty() && !item.resource().empty();
                const Jid item_bare = item.bare();
                for (const auto& contact : subscribers) {
                    if (one_resource) {
                        if (item_bare == contact) {
                            targets.push_back(item);  // only the blocked resource
                        }
                    } else if (blocklist_item_matches(item, contact)) {
                        targets.push_back(contact);
                    }
                }
                for (const auto& jid : directed) {
                    if (blocklist_item_matches(item, jid) &&
                        std::find(targets.begin(), targets.end(), jid) == targets.end()) {
                        targets.push_back(jid);
                    }
                }
                for (const auto& to : targets) {
                    Element copy = p;
                    copy.attr("to", to.str());
                    server_.router().route(std::move(copy));
                }
            }
        }
    }

    Server& server_;
    std::size_t max_items_;
    std::size_t quota_bytes_;
    StringMap<std::vector<Jid>> cache_;  // localpart → block list
    std::vector<Jid> scratch_;                                  // last offline lookup
    std::unordered_set<std::uint64_t> requested_;               // sessions that got the list
    std::uint64_t push_counter_ = 0;
};

std::unique_ptr<Blocking> load(ModuleContext& m) { return std::make_unique<Blocking>(m); }

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(blocking, haven::xeps::load)
