// Stream extensions: what modules add to a client stream beyond stanzas. Stream features
// (XEP-0077's <register/>, XEP-0198's <sm/>), top-level elements in a module's own namespace
// (XEP-0198's <enable/>, <r/>, <a/>) and, per session, filters that see every stanza the stream
// carries. The c2s session knows these mechanisms, never the features behind them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/xml/element.hpp"

namespace haven {

class Session;
using xml::Element;

enum class StreamStage {
    BeforeAuth,  // features offered before SASL (on a TLS stream, or where TLS is optional)
    AfterAuth,   // features offered with <bind/>
};

// What a stream extension sees of one client stream.
class ClientStream {
public:
    virtual ~ClientStream() = default;
    virtual Session& session() = 0;
    virtual bool secure() const = 0;
    // The account the stream authenticated as (empty before SASL).
    virtual const std::string& account() const = 0;
    // True once a resource is bound (or a session was resumed).
    virtual bool active() const = 0;
    // Writes a top-level element that is not a stanza: never counted, never filtered.
    virtual void send_nonza(const Element& nonza) = 0;
    // Writes bytes that were serialised for this stream before (XEP-0198 resending).
    virtual void send_serialised(std::string_view bytes) = 0;
    // Ends the stream with a stream error.
    virtual void fail(std::string_view condition, std::string_view text = {}) = 0;
    // XEP-0198 resumption: this authenticated, unbound stream becomes `old`, a session of the
    // same account: its JID, its id (modules key their state by it), its presence state and
    // its filters move here, `old` leaves without a trace (no unavailable presence), and this
    // stream is active. False when `old` is not a session this stream can take over.
    virtual bool take_over(Session& old) = 0;
};

// A module's per-session view of the stanzas one client stream carries.
class StreamFilter {
public:
    virtual ~StreamFilter() = default;
    // Before a stanza for the client is written: true means the filter keeps it (XEP-0352
    // holds presence back while the client is inactive) and sends it itself later.
    virtual bool hold(const Element&) { return false; }
    // A stanza from the client, before it is routed.
    virtual void received(const Element& stanza) = 0;
    // A stanza for the client, serialised; `written` is false while the session has no
    // connection (detached, see keep_detached).
    virtual void sent(const Element& stanza, std::string_view bytes, bool written) = 0;
    // The connection is gone without the stream having been closed. True: the session stays
    // bound without a connection (its stanzas go to sent() only) until someone takes it over
    // or closes it.
    virtual bool keep_detached(Session& session) = 0;
    // The session is over for good (after it left the session registry); not called for a
    // session that was taken over (its filters moved on).
    virtual void ended(Session& session) = 0;
};

struct StreamExtension {
    std::string ns;  // namespace of the top-level elements it handles; empty: none
    // Adds its features to a stream's <stream:features/>.
    std::function<void(ClientStream&, StreamStage, Element& features)> features;
    // A top-level element in `ns` on an authenticated stream (before or after binding).
    std::function<void(ClientStream&, const Element& nonza)> nonza;
};

// An extension that only offers a fixed feature element at one stage (XEP-0077 <register/>).
inline StreamExtension stream_feature(StreamStage stage, Element feature) {
    return {.ns = {},
            .features =
                [stage, feature = std::move(feature)](ClientStream&, StreamStage at,
                                                      Element& features) {
                    if (at == stage) {
                        features.add(Element(feature));
                    }
                },
            .nonza = {}};
}

// The extensions of one server, in registration order (features appear in that order).
class StreamExtensions {
public:
    std::uint64_t add(StreamExtension ext) {
        list_.push_back({++next_, std::move(ext)});
        return next_;
    }
    void remove(std::uint64_t id) {
        std::erase_if(list_, [id](const auto& e) { return e.first == id; });
    }
    template <class F>
    void for_each(F&& f) const {
        for (const auto& [id, ext] : list_) {
            f(ext);
        }
    }
    const StreamExtension* for_ns(std::string_view ns) const {
        for (const auto& [id, ext] : list_) {
            if (!ext.ns.empty() && ext.ns == ns && ext.nonza) {
                return &ext;
            }
        }
        return nullptr;
    }

private:
    std::vector<std::pair<std::uint64_t, StreamExtension>> list_;
    std::uint64_t next_ = 0;
};

}  // namespace haven
