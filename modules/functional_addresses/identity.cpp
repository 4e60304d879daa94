// The address's own identity: presence subscriptions and probes, presence at login, disco,
// vCard and ping (README.md §4.11).
#include "modules/functional_addresses/identity.hpp"

#include "modules/functional_addresses/stanzas.hpp"
#include "server/storage/roster_store.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::functional_addresses {
namespace {

bool has_to(const storage::RosterItem& i) {
    return i.subscription == "to" || i.subscription == "both";
}

}  // namespace

// The address is public to whoever may write to it, so there is nothing to ask a person about;
// no presence of the requester is passed on, so nobody learns it through the address.
void answer_presence(Shared& s, StanzaEvent& e, const std::string& contact,
                     const std::string& name) {
    auto type = e.type();
    const auto requester = e.from.bare();
    auto& router = s.server.router();
    if (type == "subscribe") {
        bool known = false;
        if (s.server.is_local(requester) && s.server.user_exists(requester.local())) {
            // The presence module's outbound half did not run (the stanza stops here):
            // note the pending request so its inbound half accepts the 'subscribed'
            // below and pushes the item (RFC 6121 §3.1.2, §3.1.6).
            auto item = s.server.roster().get(requester.local(), contact);
            if (!item) {
                item = storage::RosterItem{};
                item->contact = contact;
                item->name = name;
            }
            known = has_to(*item);
            if (!known) {
                item->ask_out = true;
                s.server.roster().put(requester.local(), *item);
            }
        }
        if (!known) {
            router.route(presence("subscribed", contact, requester.str()));
        }
        router.route(presence({}, contact, requester.str()));
    } else if (type == "unsubscribe") {
        router.route(presence("unsubscribed", contact, requester.str()));
        router.route(presence("unavailable", contact, requester.str()));
    } else if (type == "probe") {
        router.route(presence({}, contact, e.from.str()));
    }
}

void answer_iq(StanzaEvent& e, const std::string& name) {
    auto type = e.type();
    if (type != "get" && type != "set") {
        return;  // results and errors are never answered (RFC 6120 §8.3.1)
    }
    const auto* payload = e.stanza.first_child();
    if (type == "get" && payload) {
        const auto& ns = payload->ns();
        if (ns == ns::disco_info && payload->name() == "query") {
            if (!payload->attr("node").empty()) {
                e.reply_error("item-not-found");
                return;
            }
            auto result = make_result(e.stanza);
            auto& q = result.add(Element("query", std::string(ns::disco_info)));
            // XEP-0030: a client identity, so clients show the name like a person's.
            q.add(Element("identity", std::string(ns::disco_info)))
                .attr("category", "client")
                .attr("type", "pc")
                .attr("name", name);
            for (auto f : {ns::disco_info, ns::nick, ns::ping, ns::vcard}) {
                q.add(Element("feature", std::string(ns::disco_info))).attr("var", std::string(f));
            }
            e.reply(std::move(result));
            return;
        }
        if (ns == ns::disco_items && payload->name() == "query") {
            auto result = make_result(e.stanza);
            result.add(Element("query", std::string(ns::disco_items)));
            e.reply(std::move(result));
            return;
        }
        if (ns == ns::vcard && payload->name() == "vCard") {
            auto result = make_result(e.stanza);
            auto& card = result.add(Element("vCard", std::string(ns::vcard)));
            card.add(Element("FN", std::string(ns::vcard))).text(name);
            card.add(Element("NICKNAME", std::string(ns::vcard))).text(name);
            e.reply(std::move(result));
            return;
        }
        if (ns == ns::ping && payload->name() == "ping") {
            e.reply(make_result(e.stanza));
            return;
        }
    }
    e.reply_error("service-unavailable");
}

// The presence module answers probes of local contacts itself and knows nothing of
// functional addresses: subscribers get their available presence here.
void send_presences(Shared& s, Session& session) {
    const auto& local = session.jid().local();
    for (const auto& item : s.server.roster().get_all(local)) {
        if (!has_to(item)) {
            continue;
        }
        auto contact = Jid::parse(item.contact);
        if (!contact || !s.server.is_local(*contact) || contact->local().empty()) {
            continue;
        }
        auto target = s.resolve(contact->local());
        if (!target.address) {
            continue;
        }
        if (!target.token.empty()) {
            // An inquiry JID shows as online only to its staff, and only while it is live.
            auto i = s.store.find(target.token);
            if (!i || i->state == State::Closed || !s.is_staff_of(*target.address, session.jid())) {
                continue;
            }
        }
        session.send(presence({}, contact->str(), session.jid().str()));
    }
}

}  // namespace haven::functional_addresses
