// FakeSession: a bound client session with no socket; records what the router sends it.
// Shared by the in-process router tests and the stanza fuzz harness. It is also the
// ClientStream stream extensions see (XEP-0198 nonzas in the fuzz harness).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/core/session.hpp"
#include "server/xml/element.hpp"

namespace haven::testing {

class FakeSession final : public Session, public ClientStream {
public:
    FakeSession(std::uint64_t id, Jid jid, int prio, bool avail) : Session(id) {
        set_jid(std::move(jid));
        account_ = std::string(this->jid().local());
        priority = prio;
        available = avail;
    }
    void send(const Element& stanza) override {
        for (const auto& f : filters()) {
            if (f->hold(stanza)) {
                return;
            }
        }
        sent.push_back(stanza);
        if (!filters().empty()) {
            const std::string bytes = xml::serialize(stanza, "jabber:client");
            for (const auto& f : filters()) {
                f->sent(stanza, bytes, true);
            }
        }
    }
    void close(std::string_view condition, std::string_view) override {
        closed_with = std::string(condition);
    }
    // What a c2s session does with a stanza from its client before routing it.
    void received(const Element& stanza) {
        for (const auto& f : filters()) {
            f->received(stanza);
        }
    }
    // What a c2s session does once it has left the registry.
    void end_filters() {
        auto mine = std::move(filters());
        filters().clear();
        for (const auto& f : mine) {
            f->ended(*this);
        }
    }

    // ClientStream
    Session& session() override { return *this; }
    bool secure() const override { return true; }
    const std::string& account() const override { return account_; }
    bool active() const override { return true; }
    void send_nonza(const Element& nonza) override { nonzas.push_back(nonza); }
    void send_serialised(std::string_view bytes) override { resent.emplace_back(bytes); }
    void fail(std::string_view condition, std::string_view) override {
        closed_with = std::string(condition);
    }
    bool take_over(Session&) override { return false; }  // a fake has no stream to move

    std::vector<Element> sent;
    std::vector<Element> nonzas;
    std::vector<std::string> resent;
    std::string closed_with;

private:
    std::string account_;
};

}  // namespace haven::testing
