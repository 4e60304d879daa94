// Session: what the router knows of a client stream; c2s sessions and test fakes implement it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "server/core/stream_extension.hpp"
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

    // Filters a stream extension installed on this session (XEP-0198 keeps what it sent).
    void add_filter(std::unique_ptr<StreamFilter> filter) { filters_.push_back(std::move(filter)); }
    template <class T>
    T* filter() const {
        for (const auto& f : filters_) {
            if (auto* t = dynamic_cast<T*>(f.get())) {
                return t;
            }
        }
        return nullptr;
    }

protected:
    explicit Session(std::uint64_t id) : id_(id) {}
    void set_jid(Jid jid) { jid_ = std::move(jid); }
    void set_lang(std::string lang) { lang_ = std::move(lang); }
    std::vector<std::unique_ptr<StreamFilter>>& filters() { return filters_; }
    // Resumption (ClientStream::take_over): this session continues `old`, which keeps nothing.
    // The language stays this stream's own: it is what the client asks for now.
    void adopt(Session& old) {
        id_ = old.id_;
        jid_ = old.jid_;
        available = old.available;
        interested = old.interested;
        priority = old.priority;
        presence = std::move(old.presence);
        directed_to = std::move(old.directed_to);
        filters_ = std::move(old.filters_);
        old.filters_.clear();
    }

private:
    std::uint64_t id_;
    Jid jid_;
    std::string lang_;
    std::vector<std::unique_ptr<StreamFilter>> filters_;
};

using SessionPtr = std::shared_ptr<Session>;

}  // namespace haven
