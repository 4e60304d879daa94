// XEP-0030: Service Discovery — disco#info/#items of the server and of local accounts.
#include <algorithm>
#include <string>
#include <vector>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {
namespace {

// Sorted and without duplicates, so answers are stable (XEP-0115 hashes them in this order).
std::vector<std::string> normalised(std::vector<std::string> list) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    return list;
}

Element& add_feature(Element& query, const std::string& var) {
    return query.add(Element("feature", std::string(ns::disco_info))).attr("var", var);
}

// Other modules answer their own nodes at a higher priority (e.g. XEP-0050 at normal + 10) and
// pass the rest on; a node nobody claimed does not exist (XEP-0030 §3.1, §4.1).
bool unknown_node(StanzaEvent& e, std::string_view ns) {
    const auto* q = e.stanza.child("query", ns);
    if (!q) {
        e.reply_error("bad-request");
        return true;
    }
    if (!q->attr("node").empty()) {
        e.reply_error("item-not-found");
        return true;
    }
    return false;
}

Flow server_info(StanzaEvent& e) {
    if (unknown_node(e, ns::disco_info)) {
        return Flow::Stop;
    }
    auto result = make_result(e.stanza);
    auto& query = result.add(Element("query", std::string(ns::disco_info)));
    query.add(Element("identity", std::string(ns::disco_info)))
        .attr("category", "server")
        .attr("type", "im")
        .attr("name", "Haven");
    for (const auto& f : normalised(e.server.features())) {
        add_feature(query, f);
    }
    e.reply(std::move(result));
    return Flow::Stop;
}

// The server answers on behalf of an account's bare JID (RFC 6121 §8.5.1). A missing account
// gets the same service-unavailable as any other unknown target.
Flow account_info(StanzaEvent& e) {
    if (!e.server.user_exists(e.to.local())) {
        e.reply_error("service-unavailable");
        return Flow::Stop;
    }
    if (unknown_node(e, ns::disco_info)) {
        return Flow::Stop;
    }
    auto result = make_result(e.stanza);
    auto& query = result.add(Element("query", std::string(ns::disco_info)));
    query.add(Element("identity", std::string(ns::disco_info)))
        .attr("category", "account")
        .attr("type", "registered");
    auto features = e.server.account_features();
    features.emplace_back(ns::disco_info);
    features.emplace_back(ns::disco_items);
    for (const auto& f : normalised(std::move(features))) {
        add_feature(query, f);
    }
    e.reply(std::move(result));
    return Flow::Stop;
}

// Data minimisation: the server never lists its users, and an account lists nothing. The
// server lists the services it hosts (a MUC service), which is how clients find them.
Flow empty_items(StanzaEvent& e) {
    if (e.target == RouteTarget::Bare && !e.server.user_exists(e.to.local())) {
        e.reply_error("service-unavailable");
        return Flow::Stop;
    }
    if (unknown_node(e, ns::disco_items)) {
        return Flow::Stop;
    }
    auto result = make_result(e.stanza);
    auto& query = result.add(Element("query", std::string(ns::disco_items)));
    if (e.target == RouteTarget::Host) {
        for (const auto& domain : e.server.service_domains()) {
            query.add(Element("item", std::string(ns::disco_items))).attr("jid", domain);
        }
    }
    e.reply(std::move(result));
    return Flow::Stop;
}

void load(ModuleContext& m) {
    m.add_feature(std::string(ns::disco_info));
    m.add_feature(std::string(ns::disco_items));
    m.hook_iq(IqType::Get, Target::Host, ns::disco_info, server_info);
    m.hook_iq(IqType::Get, Target::Bare, ns::disco_info, account_info);
    m.hook_iq(IqType::Get, Target::Host, ns::disco_items, empty_items);
    m.hook_iq(IqType::Get, Target::Bare, ns::disco_items, empty_items);
}

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(disco, haven::xeps::load)
