// XEP-0280 Message Carbons: a user's other devices see the chats this device sends and receives.
#include <memory>
#include <unordered_set>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {
namespace {

constexpr std::string_view ns_carbons = "urn:xmpp:carbons:2";
constexpr std::string_view ns_forward = "urn:xmpp:forward:0";
constexpr std::string_view ns_hints = "urn:xmpp:hints";

class Carbons {
public:
    explicit Carbons(ModuleContext& m) : server_(m.server()) {
        m.add_feature(std::string(ns_carbons));
        m.hook_iq(IqType::Set, Target::Bare, ns_carbons, [this](StanzaEvent& e) {
            return toggle(e);
        });
        // Outbound: copy to the sender's other devices once the policy let it through.
        for (auto target : {"pre-message/bare", "pre-message/full", "pre-message/remote"}) {
            m.hook(target, [this](StanzaEvent& e) { return sent(e); }, prio::normal - 100);
        }
        // Inbound: copy to the recipient's devices the RFC 6121 delivery rules pass over.
        for (auto target : {"message/bare", "message/full"}) {
            m.hook(target, [this](StanzaEvent& e) { return received(e); }, prio::fallback + 10);
        }
        auto id = server_.session_closed.connect([this](Session& s) { enabled_.erase(s.id()); });
        m.own_connection([&s = server_, id] { s.session_closed.disconnect(id); });
    }

private:
    Flow toggle(StanzaEvent& e) {
        if (!e.origin || e.to != e.from.bare()) {
            e.reply_error("not-allowed");
            return Flow::Stop;
        }
        // The router lets through only IQs with exactly one payload; checked anyway, as the
        // hook is keyed by namespace and a null here would take the whole server down.
        const auto* payload = e.stanza.first_child();
        if (payload && payload->name() == "enable") {
            enabled_.insert(e.origin->id());
        } else if (payload && payload->name() == "disable") {
            enabled_.erase(e.origin->id());
        } else {
            e.reply_error("bad-request");
            return Flow::Stop;
        }
        e.reply(make_result(e.stanza));
        return Flow::Stop;
    }

    // XEP-0280 §6: chat messages (and normal ones with a body) are carbon-copied, unless the
    // sender marked them private or no-copy.
    static bool eligible(const Element& m) {
        auto type = m.attr("type");
        bool chat = type == "chat" || ((type.empty() || type == "normal") && m.child("body"));
        return chat && !m.child("private", ns_carbons) && !m.child("no-copy", ns_hints) &&
               !m.child("received", ns_carbons) && !m.child("sent", ns_carbons);
    }

    Element wrap(std::string_view direction, const Element& message, const Jid& owner,
                 const Session& to) const {
        Element carbon("message", std::string(ns::client));
        carbon.attr("from", owner.bare().str());
        carbon.attr("to", to.jid().str());
        carbon.attr("type", std::string(message.attr("type").empty() ? "normal"
                                                                     : message.attr("type")));
        auto& wrapper = carbon.add(Element(std::string(direction), std::string(ns_carbons)));
        auto& fwd = wrapper.add(Element("forwarded", std::string(ns_forward)));
        fwd.add(message);
        return carbon;
    }

    Flow sent(StanzaEvent& e) {
        if (!e.origin || !eligible(e.stanza)) {
            return Flow::Continue;
        }
        for (const auto& s : server_.sessions().of(e.from.local())) {
            if (s.get() != e.origin && enabled_.contains(s->id())) {
                s->send(wrap("sent", e.stanza, e.from, *s));
            }
        }
        return Flow::Continue;
    }

    Flow received(StanzaEvent& e) {
        if (!eligible(e.stanza) || !server_.is_local(e.to) || e.to.local().empty()) {
            return Flow::Continue;
        }
        // Runs for every message; most accounts have no carbon-enabled resource at all.
        const auto& sessions = server_.sessions().of(e.to.local());
        if (std::none_of(sessions.begin(), sessions.end(),
                         [&](const SessionPtr& s) { return enabled_.contains(s->id()); })) {
            return Flow::Continue;
        }
        // Which resources the router will hand it to: the addressed one if it exists, else
        // those the bare-JID rule picks.
        std::vector<Session*> direct;
        if (auto* full = e.to.resource().empty() ? nullptr : server_.sessions().find(e.to)) {
            direct.push_back(full);
        } else {
            direct = server_.sessions().message_targets(e.to.local());
        }
        for (const auto& s : sessions) {
            bool gets_it = std::find(direct.begin(), direct.end(), s.get()) != direct.end();
            if (!gets_it && enabled_.contains(s->id())) {
                s->send(wrap("received", e.stanza, e.to, *s));
            }
        }
        return Flow::Continue;
    }

    Server& server_;
    std::unordered_set<std::uint64_t> enabled_;  // session ids with carbons on
};

std::unique_ptr<Carbons> load(ModuleContext& m) { return std::make_unique<Carbons>(m); }

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(carbons, haven::xeps::load)
