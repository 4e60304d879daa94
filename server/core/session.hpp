// Session: what the router knows of a client stream; c2s sessions and test fakes implement it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "server/xml/element.hpp"
#include "server/xmpp/jid.hpp"

namespace haven {

using xml::Element;

class Session : public std::enable_shared_from_this<Session> {
public:
    virtual ~Session() = default;

    // Serialises and queues a stanza. Never blocks and never throws; a session whose queue is
    // full closes itself with a policy-violation stream error.
    virtual void send(const Element& stanza) = 0;
    // Closes the stream, with a stream error condition when given (RFC 6120 §4.9).
    virtual void close(std::string_view condition = {}, std::string_view text = {}) = 0;

    std::uint64_t id() const { return id_; }
    const Jid& jid() const { return jid_; }  // full JID once bound
    bool bound() const { return !jid_.resource().empty(); }
    const std::string& lang() const { return lang_; }

    // RFC 6121 presence state of this resource.
    bool available = false;          // sent initial presence and not yet unavailable
    bool interested = false;         // requested the roster (gets roster pushes)
    int priority = 0;
    std::optional<Element> presence; // last broadcast available presence
    std::unordered_set<std::string> directed_to; // full/bare JIDs that got directed presence

protected:
    explicit Session(std::uint64_t id) : id_(id) {}
    void set_jid(Jid jid) { jid_ = std::move(jid); }
    void set_lang(std::string lang) { lang_ = std::move(lang); }

private:
    std::uint64_t id_;
    Jid jid_;
    std::string lang_;
};

using SessionPtr = std::shared_ptr<Session>;

}  // namespace haven
