// XEP-0199: XMPP Ping — the server answers pings addressed to itself and to bare JIDs.
#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {
namespace {

Flow pong(StanzaEvent& e) {
    // The hook is keyed by namespace: only <ping/> is a ping (XEP-0199 §3).
    if (!e.stanza.child("ping", ns::ping)) {
        e.reply_error("bad-request", "expected <ping xmlns='urn:xmpp:ping'/>");
        return Flow::Stop;
    }
    e.reply(make_result(e.stanza));
    return Flow::Stop;
}

// A bare JID answers only if the account exists: a ping must not reveal more than a message
// to the same address would (service-unavailable from the router's fallback).
Flow pong_account(StanzaEvent& e) {
    if (!e.server.user_exists(e.to.local())) {
        return Flow::Continue;
    }
    return pong(e);
}

void load(ModuleContext& m) {
    m.add_feature(std::string(ns::ping));
    m.hook_iq(IqType::Get, Target::Host, ns::ping, pong);
    // RFC 6121 §8.5.1 leaves bare-JID IQs to the server: answer on the account's behalf.
    m.hook_iq(IqType::Get, Target::Bare, ns::ping, pong_account);
}

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(ping, haven::xeps::load)
