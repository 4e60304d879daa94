// XEP-0198 Stream Management: acknowledgements, resumption after a lost connection, and what
// becomes of stanzas a client never acknowledged (routed again: other resources or offline).
#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/core/module.hpp"
#include "server/core/random_id.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0198_queue.hpp"

namespace haven::xeps {
namespace {

constexpr std::string_view ns_sm = "urn:xmpp:sm:3";
constexpr std::string_view ns_carbons = "urn:xmpp:carbons:2";

// §4: the server asks for an ack once this many stanzas are waiting for one (coalesced to
// the end of the loop turn, so a burst costs one <r/>).
constexpr std::size_t ack_request_after = 10;

Element sm(std::string name) {
    return Element(std::move(name), std::string(ns_sm));
}

Element failed(std::string_view condition, std::optional<std::uint32_t> h = std::nullopt) {
    auto f = sm("failed");
    if (h) {
        f.attr("h", std::to_string(*h));
    }
    f.add(Element(std::string(condition), std::string(ns::stanza_errors)));
    return f;
}

std::optional<std::uint32_t> parse_h(std::string_view s) {
    std::uint32_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

// What the session ending should route again: messages a person would miss (not groupchat:
// the room's history has them; not errors; not carbon copies, whose original went to the
// resource it was for), and requests, so that their senders get an error instead of waiting
// forever (not the server's own keepalive pings).
bool reroutable(const Element& stanza, std::string_view server_domain) {
    if (stanza.name() == "iq") {
        auto type = stanza.attr("type");
        return (type == "get" || type == "set") && stanza.attr("from") != server_domain;
    }
    if (stanza.name() != "message") {
        return false;
    }
    auto type = stanza.attr("type");
    // <private xmlns='urn:xmpp:carbons:2'/> marks an ordinary message: only the wrappers count.
    return type != "groupchat" && type != "error" && !stanza.child("sent", ns_carbons) &&
           !stanza.child("received", ns_carbons);
}

class StreamManagement;

// One stream's counts and queue; it moves with the session when a new connection resumes it.
class SmState final : public StreamFilter {
public:
    SmState(StreamManagement& module, Session& session, std::string token)
        : module_(module),
          session_(session.weak_from_this()),
          token_(std::move(token)),
          timer_(session_io(module)) {}
    ~SmState() override { timer_.cancel(); }

    void received(const Element&) override { ++inbound_; }
    void sent(const Element& stanza, std::string_view bytes, bool written) override;
    bool keep_detached(Session& session) override;
    void ended(Session& session) override;

    // <a/> from the client; false: the count is ahead of what we sent (§4).
    bool ack(std::uint32_t h) {
        ack_requested_ = false;
        return queue_.ack(h) == UnackedQueue::Ack::Ok;
    }
    void resumed_on(Session& session) {
        session_ = session.weak_from_this();
        timer_.cancel();
        ack_requested_ = false;
    }
    void resend(ClientStream& stream) const {
        for (const auto& item : queue_.items()) {
            stream.send_serialised(item.bytes);
        }
    }
    std::uint32_t inbound() const { return inbound_; }
    bool ending() const { return ending_; }
    const UnackedQueue& queue() const { return queue_; }
    const std::string& token() const { return token_; }
    void request_ack();

private:
    static boost::asio::io_context& session_io(StreamManagement& module);
    void over_limit();

    StreamManagement& module_;
    std::weak_ptr<Session> session_;
    std::string token_;  // resumption id; empty: acks only, no resumption
    UnackedQueue queue_;
    std::uint32_t inbound_ = 0;  // stanzas received from the client, mod 2^32
    bool ack_requested_ = false;
    bool ending_ = false;
    boost::asio::steady_timer timer_;  // the resumption window, while detached
};

class StreamManagement {
public:
    explicit StreamManagement(ModuleContext& m)
        : server_(m.server()),
          resume_timeout_(
              std::chrono::seconds(server_.config().get_int("c2s", "resume_timeout_s"))),
          max_stanzas_(static_cast<std::size_t>(server_.config().get_int("c2s", "sm_max_unacked"))),
          // Resending goes through the connection's send queue: never hold more than it takes,
          // or a resumption would overflow it and end the session it just resumed.
          max_bytes_(std::min(
              static_cast<std::size_t>(server_.config().get_int("c2s", "sm_max_unacked_bytes")),
              static_cast<std::size_t>(server_.config().get_int("limits", "max_send_queue_bytes")))) {
        m.add_stream_extension(
            {.ns = std::string(ns_sm),
             .features =
                 [](ClientStream&, StreamStage stage, Element& features) {
                     if (stage == StreamStage::AfterAuth) {
                         features.add(sm("sm"));
                     }
                 },
             .nonza = [this](ClientStream& s, const Element& e) { nonza(s, e); }});
        m.every(std::chrono::minutes(1), [this] { prune_expired(); });
    }

    Server& server() { return server_; }
    std::chrono::seconds resume_timeout() const { return resume_timeout_; }
    bool over_limit(const UnackedQueue& q) const {
        return q.size() > max_stanzas_ || q.bytes() > max_bytes_;
    }
    // The session of `token` is over: a later <resume/> learns the count it ended with.
    void forget(const std::string& token, const std::string& account, std::uint32_t h) {
        if (token.empty()) {
            return;
        }
        resumable_.erase(token);
        if (expired_.size() >= max_expired) {
            expired_.clear();  // a flood of ended sessions: forget the oldest all at once
        }
        expired_[token] = {account, h, std::chrono::steady_clock::now() + resume_timeout_};
    }

private:
    void nonza(ClientStream& stream, const Element& e) {
        const auto& name = e.name();
        if (name == "enable") {
            enable(stream, e);
        } else if (name == "resume") {
            resume(stream, e);
        } else if (name == "r") {
            auto* state = stream.session().filter<SmState>();
            if (state == nullptr) {
                stream.fail("unsupported-stanza-type", "stream management is not enabled");
                return;
            }
            auto a = sm("a");
            a.attr("h", std::to_string(state->inbound()));
            stream.send_nonza(a);
        } else if (name == "a") {
            auto* state = stream.session().filter<SmState>();
            auto h = parse_h(e.attr("h"));
            if (state == nullptr) {
                stream.fail("unsupported-stanza-type", "stream management is not enabled");
            } else if (!h) {
                stream.fail("bad-format", "the 'h' attribute of <a/> is not a number");
            } else if (!state->ack(*h)) {
                // §4: acknowledging more than was sent ends the stream.
                stream.fail("undefined-condition", "handled-count-too-high: h " +
                                                       std::to_string(*h) + ", sent " +
                                                       std::to_string(state->queue().sent_count()));
            }
        } else {
            stream.fail("unsupported-stanza-type");
        }
    }

    void enable(ClientStream& stream, const Element& e) {
        // §3: only after binding, and only once per stream.
        if (!stream.active() || stream.session().filter<SmState>() != nullptr) {
            stream.send_nonza(failed("unexpected-request"));
            return;
        }
        auto want = e.attr("resume");
        std::string token;
        auto enabled = sm("enabled");
        if ((want == "true" || want == "1") && resume_timeout_.count() > 0) {
            token = random_hex(16);
            auto max = resume_timeout_;
            if (auto asked = parse_h(e.attr("max")); asked && *asked > 0) {
                max = std::min(max, std::chrono::seconds(*asked));  // §5: the client may ask less
            }
            enabled.attr("id", token)
                .attr("resume", "true")
                .attr("max", std::to_string(max.count()));
            resumable_[token] = {stream.session().weak_from_this(), stream.account(), max};
        }
        // Counting starts here: <enabled/> itself is not a stanza, what follows it is.
        stream.send_nonza(enabled);
        stream.session().add_filter(std::make_unique<SmState>(*this, stream.session(), token));
    }

    void resume(ClientStream& stream, const Element& e) {
        if (stream.active()) {
            stream.send_nonza(failed("unexpected-request"));
            return;
        }
        const std::string previd(e.attr("previd"));
        auto h = parse_h(e.attr("h"));
        auto it = resumable_.find(previd);
        std::shared_ptr<Session> old;
        if (it != resumable_.end() && it->second.account == stream.account()) {
            old = it->second.session.lock();
        }
        if (!h) {
            stream.send_nonza(failed("bad-request"));
            return;
        }
        if (!old) {
            // §5: an unknown or expired id. Someone else's id gets the same answer as an
            // unknown one, so ids reveal nothing about other accounts; only one's own
            // expired session tells the count it ended with.
            std::optional<std::uint32_t> known;
            if (auto x = expired_.find(previd);
                x != expired_.end() && x->second.account == stream.account()) {
                known = x->second.h;
            }
            stream.send_nonza(failed("item-not-found", known));
            return;
        }
        auto* state = old->filter<SmState>();
        if (state == nullptr || state->ending()) {
            // Ending already (its queue overflowed): what it held is being routed again.
            stream.send_nonza(failed("item-not-found", state ? std::optional(state->inbound())
                                                             : std::nullopt));
            return;
        }
        if (!state->queue().acceptable(*h)) {
            // §5: an 'h' beyond what was sent; the session stays as it was, resumable.
            stream.send_nonza(failed("undefined-condition", state->inbound()));
            return;
        }
        if (!stream.take_over(*old)) {
            stream.send_nonza(failed("item-not-found"));
            return;
        }
        // The state moved with the session: it belongs to this stream now (and a later
        // resumption finds it here).
        state = stream.session().filter<SmState>();
        state->resumed_on(stream.session());
        it->second.session = stream.session().weak_from_this();
        auto resumed = sm("resumed");
        resumed.attr("previd", previd).attr("h", std::to_string(state->inbound()));
        stream.send_nonza(resumed);
        state->ack(*h);  // checked above
        // §5: what the client has not acknowledged is sent again, in order.
        state->resend(stream);
        if (state->queue().size() > 0) {
            state->request_ack();
        }
    }

    void prune_expired() {
        const auto now = std::chrono::steady_clock::now();
        std::erase_if(expired_, [now](const auto& kv) { return kv.second.until <= now; });
        std::erase_if(resumable_, [](const auto& kv) { return kv.second.session.expired(); });
    }

    struct Resumable {
        std::weak_ptr<Session> session;
        std::string account;
        std::chrono::seconds max;
    };
    struct Expired {
        std::string account;
        std::uint32_t h;
        std::chrono::steady_clock::time_point until;
    };
    static constexpr std::size_t max_expired = 100000;

    Server& server_;
    std::chrono::seconds resume_timeout_;
    std::size_t max_stanzas_;
    std::size_t max_bytes_;
    std::unordered_map<std::string, Resumable> resumable_;
    std::unordered_map<std::string, Expired> expired_;

    friend class SmState;
};

boost::asio::io_context& SmState::session_io(StreamManagement& module) {
    return module.server().io();
}

void SmState::sent(const Element& stanza, std::string_view bytes, bool written) {
    queue_.push(std::string(bytes), reroutable(stanza, module_.server().domain()));
    if (module_.over_limit(queue_)) {
        over_limit();
        return;
    }
    if (written && !ack_requested_ && queue_.size() >= ack_request_after) {
        request_ack();
    }
}

void SmState::request_ack() {
    // At the end of this turn: a burst of stanzas asks once, after the last of them.
    ack_requested_ = true;
    boost::asio::post(module_.server().io(), [weak = session_] {
        if (auto s = weak.lock()) {
            if (auto* stream = dynamic_cast<ClientStream*>(s.get())) {
                stream->send_nonza(sm("r"));
            }
        }
    });
}

void SmState::over_limit() {
    // A client that does not acknowledge (or has been gone for long in a busy room) must not
    // grow our memory: its stream ends; what it never acknowledged is routed again.
    if (ending_) {
        return;
    }
    ending_ = true;
    boost::asio::post(module_.server().io(), [weak = session_] {
        if (auto s = weak.lock()) {
            s->close("policy-violation", "too many unacknowledged stanzas");
        }
    });
}

bool SmState::keep_detached(Session& session) {
    if (token_.empty() || ending_) {
        return false;
    }
    auto window = module_.resume_timeout();
    if (auto it = module_.resumable_.find(token_); it != module_.resumable_.end()) {
        window = it->second.max;
    }
    timer_.expires_after(window);
    timer_.async_wait([weak = session.weak_from_this()](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        if (auto s = weak.lock()) {
            s->close();  // the window is over: the session ends (ended() below)
        }
    });
    return true;
}

void SmState::ended(Session& session) {
    timer_.cancel();
    module_.forget(token_, std::string(session.jid().local()), inbound_);
    // XEP-0198 §5 business rules: unacknowledged stanzas are handled as if never delivered.
    // The session has left the registry, so a message to its full JID goes to the account's
    // other resources or to offline storage (RFC 6121 §8.5.3.2.1), never back here.
    // On the next turn: the session may be ending because a new one binds its resource, and
    // the messages must not reach that stream before its bind result does.
    std::vector<Element> again;
    for (auto& item : queue_.take()) {
        if (!item.reroute) {
            continue;
        }
        if (auto stanza = xml::parse_fragment(item.bytes)) {
            if (stanza->attr("to").empty()) {
                stanza->attr("to", session.jid().str());
            }
            again.push_back(std::move(*stanza));
        }
    }
    if (again.empty()) {
        return;
    }
    auto& server = module_.server();
    boost::asio::post(server.io(), [&server, again = std::move(again)]() mutable {
        for (auto& stanza : again) {
            server.router().route(std::move(stanza));
        }
    });
}

std::unique_ptr<StreamManagement> load(ModuleContext& m) {
    return std::make_unique<StreamManagement>(m);
}

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(stream_management, haven::xeps::load)
