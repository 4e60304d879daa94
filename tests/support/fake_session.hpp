// FakeSession: a bound client session with no socket; records what the router sends it.
// Shared by the in-process router tests and the stanza fuzz harness.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/core/session.hpp"

namespace haven::testing {

class FakeSession final : public Session {
public:
    FakeSession(std::uint64_t id, Jid jid, int prio, bool avail) : Session(id) {
        set_jid(std::move(jid));
        priority = prio;
        available = avail;
    }
    void send(const Element& stanza) override { sent.push_back(stanza); }
    void close(std::string_view condition, std::string_view) override {
        closed_with = std::string(condition);
    }
    std::vector<Element> sent;
    std::string closed_with;
};

}  // namespace haven::testing
