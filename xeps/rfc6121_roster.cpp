// RFC 6121 §2: roster get, set and remove, roster pushes, and XEP-0237 roster versioning.
#include "xeps/rfc6121_roster.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/database.hpp"
#include "server/storage/kv_store.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {
namespace {

using storage::RosterItem;

bool has_from(const RosterItem& item) {
    return item.subscription == "from" || item.subscription == "both";
}
bool has_to(const RosterItem& item) {
    return item.subscription == "to" || item.subscription == "both";
}

// The one place roster items become XML (RFC 6121 §2.1.2).
Element item_element(const RosterItem& item, bool approved) {
    Element e("item", std::string(ns::roster));
    e.attr("jid", item.contact);
    if (!item.name.empty()) {
        e.attr("name", item.name);
    }
    e.attr("subscription", item.subscription);
    if (item.ask_out) {
        e.attr("ask", "subscribe");  // RFC 6121 §2.1.2.2: pending-out
    }
    if (approved && !has_from(item)) {
        e.attr("approved", "true");  // RFC 6121 §2.1.2.1, §3.4
    }
    for (const auto& group : item.groups) {
        e.add(Element("group", std::string(ns::roster))).text(group);
    }
    return e;
}

class Roster final : public RosterService {
public:
    explicit Roster(ModuleContext& m)
        : server_(m.server()),
          max_items_(static_cast<std::size_t>(m.opt_int("max_items"))),
          max_name_bytes_(static_cast<std::size_t>(m.opt_int("max_name_bytes"))),
          max_group_bytes_(static_cast<std::size_t>(m.opt_int("max_group_bytes"))),
          max_groups_(static_cast<std::size_t>(m.opt_int("max_groups"))),
          quota_bytes_(static_cast<std::size_t>(m.opt_int("quota_bytes"))) {
        m.hook_iq(IqType::Get, Target::Bare, ns::roster, [this](StanzaEvent& e) { return get(e); });
        m.hook_iq(IqType::Set, Target::Bare, ns::roster, [this](StanzaEvent& e) { return set(e); });
        server_.provide<RosterService>(this);
    }
    ~Roster() override {
        if (server_.service<RosterService>() == this) {
            server_.withdraw<RosterService>();
        }
    }
    Roster(const Roster&) = delete;
    Roster& operator=(const Roster&) = delete;

    void push(std::string_view localpart, const RosterItem& item) override {
        if (!any_interested(localpart) ||
            roster_kv::is_hidden(item, flag(localpart, roster_kv::hidden, item.contact))) {
            return;
        }
        send_push(localpart,
                  item_element(item, flag(localpart, roster_kv::approved, item.contact)));
    }

    void push_removed(std::string_view localpart, std::string_view contact) override {
        if (!any_interested(localpart)) {
            return;
        }
        Element item("item", std::string(ns::roster));
        item.attr("jid", std::string(contact));
        item.attr("subscription", "remove");
        send_push(localpart, std::move(item));
    }

private:
    // Only the account's own resources may read or change its roster (RFC 6121 §2.1.5, §2.3.3).
    static bool own(const StanzaEvent& e) { return e.origin && e.to == e.from.bare(); }

    bool flag(std::string_view local, std::string_view store, std::string_view contact) {
        return server_.kv().get(local, store, contact).has_value();
    }

    bool any_interested(std::string_view local) const {
        const auto& sessions = server_.sessions().of(local);
        return std::any_of(sessions.begin(), sessions.end(),
                           [](const SessionPtr& s) { return s->interested; });
    }

    std::string version(std::string_view local) const {
        return std::to_string(server_.roster().get_version(local));
    }

    // RFC 6121 §2.1.6: to every interested resource, the one that made the change included.
    void send_push(std::string_view local, Element item) {
        const std::string ver = version(local);
        // Copy: a send that overflows closes (and may unbind) a session.
        const auto sessions = server_.sessions().of(local);
        for (const auto& s : sessions) {
            if (!s->interested) {
                continue;
            }
            Element iq("iq", std::string(ns::client));
            iq.attr("type", "set");
            iq.attr("id", "push" + std::to_string(++push_counter_));
            iq.attr("to", s->jid().str());
            auto& query = iq.add(Element("query", std::string(ns::roster)));
            query.attr("ver", ver);  // XEP-0237 §3
            query.add(item);
            s->send(iq);
        }
    }

    Flow get(StanzaEvent& e) {
        if (!own(e)) {
            e.reply_error("forbidden");
            return Flow::Stop;
        }
        const auto* query = e.stanza.child("query", ns::roster);
        if (!query) {
            // The hook is keyed by namespace: <x xmlns='jabber:iq:roster'/> is no roster get.
            e.reply_error("bad-request", "expected <query xmlns='jabber:iq:roster'/>");
            return Flow::Stop;
        }
        const auto local = e.from.local();
        e.origin->interested = true;  // RFC 6121 §2.1.6: roster pushes from now on
        const std::string ver = version(local);
        // XEP-0237 §4: the client's cached copy is current, so the result carries no roster.
        if (query->has_attr("ver") && query->attr("ver") == ver) {
            e.reply(make_result(e.stanza));
            return Flow::Stop;
        }
        auto result = make_result(e.stanza);
        auto& out = result.add(Element("query", std::string(ns::roster)));
        out.attr("ver", ver);
        const auto hidden = keys(local, roster_kv::hidden);
        const auto approved = keys(local, roster_kv::approved);
        for (const auto& item : server_.roster().get_all(local)) {
            if (!roster_kv::is_hidden(item, hidden.contains(item.contact))) {
                out.add(item_element(item, approved.contains(item.contact)));
            }
        }
        e.reply(std::move(result));
        return Flow::Stop;
    }

    std::unordered_set<std::string> keys(std::string_view local, std::string_view store) {
        auto list = server_.kv().list_keys(local, store);
        return {std::make_move_iterator(list.begin()), std::make_move_iterator(list.end())};
    }

    Flow set(StanzaEvent& e) {
        if (!own(e)) {
            e.reply_error("forbidden");  // RFC 6121 §2.3.3
            return Flow::Stop;
        }
        const auto* query = e.stanza.child("query", ns::roster);
        const auto items =
            query ? query->children("item", ns::roster) : std::vector<const Element*>{};
        if (items.size() != 1) {
            e.reply_error("bad-request", "a roster set carries exactly one item");
            return Flow::Stop;
        }
        const Element& in = *items.front();
        auto jid = Jid::parse(in.attr("jid"));
        if (!jid) {
            e.reply_error("bad-request", "the item needs a valid 'jid'");
            return Flow::Stop;
        }
        const std::string local = e.from.local();
        const std::string contact = jid->str();
        // RFC 6121 §2.1.2.5: 'remove' is the only subscription value a client may set; the
        // server ignores the others, and 'ask' and 'approved' too (§2.1.2.1, §2.1.2.2).
        if (in.attr("subscription") == "remove") {
            return remove(e, local, contact);
        }

        std::string name(in.attr("name"));
        if (name.size() > max_name_bytes_) {
            e.reply_error("not-acceptable", "the name is too long");  // RFC 6121 §2.3.3
            return Flow::Stop;
        }
        const auto group_elements = in.children("group", ns::roster);
        // Checked before copying and sorting what could be thousands of groups.
        if (group_elements.size() > max_groups_) {
            e.reply_error("not-acceptable", "too many groups");
            return Flow::Stop;
        }
        std::vector<std::string> groups;
        for (const auto* g : group_elements) {
            auto text = g->text();
            if (text.empty()) {
                // RFC 6121 §2.3.3: to leave all groups, a client sends no <group/> at all.
                e.reply_error("not-acceptable", "a group name cannot be empty");
                return Flow::Stop;
            }
            if (text.size() > max_group_bytes_) {
                e.reply_error("not-acceptable", "a group name is too long");
                return Flow::Stop;
            }
            groups.push_back(std::move(text));
        }
        std::sort(groups.begin(), groups.end());  // the store's (binary) order
        if (std::adjacent_find(groups.begin(), groups.end()) != groups.end()) {
            e.reply_error("bad-request", "duplicate group");  // RFC 6121 §2.3.3
            return Flow::Stop;
        }

        auto existing = server_.roster().get(local, contact);
        const bool hidden_flag = existing && flag(local, roster_kv::hidden, contact);
        const bool hidden = existing && roster_kv::is_hidden(*existing, hidden_flag);
        if (!existing || hidden) {
            auto all = server_.roster().count(local);
            auto pending_only = server_.kv().count(local, roster_kv::hidden);
            if (all - std::min(all, pending_only) >= max_items_) {
                e.reply_error("policy-violation", "the roster is full");
                return Flow::Stop;
            }
        }
        RosterItem item = existing ? std::move(*existing) : RosterItem{};
        item.contact = contact;
        item.name = std::move(name);
        item.groups = std::move(groups);
        // Counts and per-field caps alone allow items x groups x group bytes (~100 MB): the
        // whole roster also has a byte quota (issue 10 §2).
        std::size_t total = item_bytes(item);
        for (const auto& other : server_.roster().get_all(local)) {
            if (other.contact != contact) {
                total += item_bytes(other);
            }
        }
        if (total > quota_bytes_) {
            e.reply_error("not-acceptable", "the roster would exceed its storage quota of " +
                                                std::to_string(quota_bytes_) + " bytes");
            return Flow::Stop;
        }
        storage::Transaction tx(server_.db());  // row and flag together, or neither
        server_.roster().put(local, item);
        if (hidden_flag) {
            // The user now has the contact in the roster; the pending request stays (ask_in).
            server_.kv().remove(local, roster_kv::hidden, contact);
        }
        tx.commit();
        push(local, item);
        e.reply(make_result(e.stanza));
        return Flow::Stop;
    }

    static std::size_t item_bytes(const RosterItem& item) {
        std::size_t n = item.contact.size() + item.name.size() + item.pending_subscribe.size();
        for (const auto& g : item.groups) {
            n += g.size();
        }
        return n;
    }

    // RFC 6121 §2.5.
    Flow remove(StanzaEvent& e, const std::string& local, const std::string& contact) {
        auto existing = server_.roster().get(local, contact);
        const bool hidden_flag = existing && flag(local, roster_kv::hidden, contact);
        if (!existing || roster_kv::is_hidden(*existing, hidden_flag)) {
            e.reply_error("item-not-found");  // RFC 6121 §2.5.3
            return Flow::Stop;
        }
        const bool approved = flag(local, roster_kv::approved, contact);
        storage::Transaction tx(server_.db());
        server_.roster().remove(local, contact);
        server_.kv().remove(local, roster_kv::approved, contact);
        if (hidden_flag) {
            server_.kv().remove(local, roster_kv::hidden, contact);
        }
        tx.commit();
        push_removed(local, contact);
        e.reply(make_result(e.stanza));

        // RFC 6121 §2.5.2: cancel the subscriptions in both directions, from the bare JID.
        const std::string user = e.from.bare().str();
        auto presence = [&](std::string_view type) {
            Element p("presence", std::string(ns::client));
            p.attr("type", std::string(type));
            p.attr("from", user);
            p.attr("to", contact);
            server_.router().route(std::move(p));
        };
        if (has_to(*existing) || existing->ask_out) {
            presence("unsubscribe");
        }
        if (has_from(*existing) || existing->ask_in || approved) {
            presence("unsubscribed");
        }
        if (has_from(*existing)) {
            // RFC 6121 §3.2.2: the contact no longer sees the user's resources as available.
            for (auto* s : server_.sessions().available(local)) {
                Element p("presence", std::string(ns::client));
                p.attr("type", "unavailable");
                p.attr("from", s->jid().str());
                p.attr("to", contact);
                server_.router().route(std::move(p));
            }
        }
        return Flow::Stop;
    }

    Server& server_;
    std::size_t max_items_;
    std::size_t max_name_bytes_;
    std::size_t max_group_bytes_;
    std::size_t max_groups_;
    std::size_t quota_bytes_;
    std::uint64_t push_counter_ = 0;
};

std::unique_ptr<Roster> load(ModuleContext& m) {
    // XEP-0237 §2.1: roster versioning, answered by this module's 'ver' handling.
    m.add_stream_extension(
        stream_feature(StreamStage::AfterAuth, Element("ver", std::string(ns::roster_ver))));
    return std::make_unique<Roster>(m);
}

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(roster, haven::xeps::load)
