// XEP-0352 Client State Indication: while a client says it is inactive (a phone in a pocket),
// presence updates and chat states wait, and only the latest presence per contact is kept;
// what a person would want at once (messages, a room message that mentions them, requests)
// goes out immediately, after what was held, so the order stays as it was.
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "server/core/module.hpp"
#include "server/core/server.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0045_muc/muc.hpp"

namespace haven::xeps {
namespace {

constexpr std::string_view ns_csi = "urn:xmpp:csi:0";
constexpr std::string_view ns_muc_user = "http://jabber.org/protocol/muc#user";
// Held stanzas per session; one more and everything goes out (memory stays bounded, and a
// client that stays inactive for long still gets its updates in batches).
constexpr std::size_t max_held = 256;
constexpr std::size_t max_rooms = 1000;  // room nicks remembered for mentions

bool has_body(const Element& m) {
    return m.child("body", ns::client) != nullptr;
}

class CsiState final : public StreamFilter {
public:
    CsiState(Session& session, const muc::MucService* rooms)
        : session_(session.weak_from_this()), rooms_(rooms) {}

    void set_active(bool active) {
        active_ = active;
        if (active) {
            flush();
        }
    }

    bool hold(const Element& stanza) override {
        if (flushing_) {
            return false;
        }
        remember_nick(stanza);
        if (active_) {
            return false;
        }
        if (urgent(stanza)) {
            flush();  // what waited goes first: the client sees things in the order they were
            return false;
        }
        if (stanza.name() == "presence") {
            // Only the latest presence of each sender matters to an inactive client.
            auto from = std::string(stanza.attr("from"));
            if (auto it = presence_at_.find(from); it != presence_at_.end()) {
                held_[it->second].reset();
            }
            presence_at_[from] = held_.size();
        }
        held_.emplace_back(std::make_unique<Element>(stanza));
        if (held_.size() > max_held) {
            flush();
        }
        return true;
    }
    void received(const Element&) override {}
    void sent(const Element&, std::string_view, bool) override {}
    bool keep_detached(Session&) override { return false; }
    void ended(Session&) override {}

private:
    // Messages a person reads, room messages naming them, subscription requests, every IQ.
    bool urgent(const Element& stanza) {
        const auto& name = stanza.name();
        if (name == "iq") {
            return true;
        }
        auto type = stanza.attr("type");
        if (name == "presence") {
            return type == "subscribe" || type == "error";
        }
        if (type == "error") {
            return true;
        }
        if (!has_body(stanza)) {
            return false;  // chat states, receipts, markers: they can wait
        }
        if (type != "groupchat") {
            return true;
        }
        return mentions_me(stanza);
    }

    bool mentions_me(const Element& message) {
        auto from = message.attr("from");
        const std::string room(from.substr(0, from.find('/')));
        auto it = nicks_.find(room);
        if (it == nicks_.end()) {
            // Joined before the client first said it was inactive: ask the rooms once.
            it = nicks_.emplace(room, nick_in(room)).first;
        }
        return !it->second.empty() &&
               message.child_text("body", ns::client).find(it->second) != std::string::npos;
    }

    std::string nick_in(const std::string& room) const {
        auto session = session_.lock();
        auto jid = Jid::parse(room);
        if (!session || !jid || rooms_ == nullptr || jid->domain() != rooms_->domain()) {
            return {};
        }
        for (const auto& p : rooms_->occupants(*jid)) {
            for (const auto& s : p.sessions) {
                if (s == session->jid()) {
                    return p.nick;
                }
            }
        }
        return {};
    }

    // The room's self-presence (status 110) tells which nick is this client's.
    void remember_nick(const Element& stanza) {
        if (stanza.name() != "presence") {
            return;
        }
        const auto* x = stanza.child("x", ns_muc_user);
        if (x == nullptr) {
            return;
        }
        bool self = false;
        for (const auto* c : x->children()) {
            if (c->name() == "status" && c->attr("code") == "110") {
                self = true;
            }
        }
        if (!self) {
            return;
        }
        auto from = stanza.attr("from");
        auto slash = from.find('/');
        if (slash == std::string_view::npos) {
            return;
        }
        std::string room(from.substr(0, slash));
        if (stanza.attr("type") == "unavailable") {
            nicks_.erase(room);
        } else if (nicks_.size() < max_rooms || nicks_.contains(room)) {
            nicks_[room] = std::string(from.substr(slash + 1));
        }
    }

    void flush() {
        auto session = session_.lock();
        if (!session || held_.empty()) {
            return;
        }
        auto held = std::exchange(held_, {});
        presence_at_.clear();
        flushing_ = true;
        for (const auto& stanza : held) {
            if (stanza) {
                session->send(*stanza);
            }
        }
        flushing_ = false;
    }

    std::weak_ptr<Session> session_;
    const muc::MucService* rooms_;  // null without the MUC module
    bool active_ = true;
    bool flushing_ = false;
    std::deque<std::unique_ptr<Element>> held_;  // null: replaced by a newer presence
    std::unordered_map<std::string, std::size_t> presence_at_;
    std::unordered_map<std::string, std::string> nicks_;  // room bare JID -> our nick
};

void load(ModuleContext& m) {
    m.add_stream_extension(
        {.ns = std::string(ns_csi),
         .features =
             [](ClientStream&, StreamStage stage, Element& features) {
                 if (stage == StreamStage::AfterAuth) {
                     features.add(Element("csi", std::string(ns_csi)));
                 }
             },
         .nonza =
             [&server = m.server()](ClientStream& stream, const Element& e) {
                 const bool active = e.name() == "active";
                 if (!active && e.name() != "inactive") {
                     stream.fail("unsupported-stanza-type");
                     return;
                 }
                 if (!stream.active()) {
                     return;  // §5: not before binding; ignored, as it changes nothing yet
                 }
                 auto& session = stream.session();
                 auto* state = session.filter<CsiState>();
                 if (state == nullptr) {
                     auto fresh =
                         std::make_unique<CsiState>(session, server.service<muc::MucService>());
                     state = fresh.get();
                     session.add_filter(std::move(fresh));
                 }
                 state->set_active(active);
             }});
}

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(csi, haven::xeps::load)
