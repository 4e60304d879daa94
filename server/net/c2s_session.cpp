// C2sSession: one client stream (RFC 6120): STARTTLS, SASL, resource binding, then stanzas.
#include "server/net/c2s_session.hpp"

#include <algorithm>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <sodium.h>

#include "server/core/accounts.hpp"
#include "server/core/server.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::net {

namespace {

std::string random_token(std::size_t bytes) {
    std::string raw(bytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string out;
    for (unsigned char c : raw) {
        out.push_back(alphabet[c % 36]);
    }
    return out;
}

xml::ParserLimits limits_for(const Server& s, bool authenticated) {
    xml::ParserLimits l;
    l.max_stanza_bytes = static_cast<std::size_t>(s.config().get_int(
        "limits", authenticated ? "max_stanza_bytes" : "max_stanza_bytes_unauthenticated"));
    l.max_depth = static_cast<std::size_t>(s.config().get_int("limits", "max_depth"));
    // Negotiation stanzas (SASL, STARTTLS, a registration form) have a few dozen elements.
    constexpr std::int64_t unauthenticated_elements = 128;
    const auto elements = s.config().get_int("limits", "max_stanza_elements");
    l.max_elements = static_cast<std::size_t>(
        authenticated ? elements : std::min(elements, unauthenticated_elements));
    return l;
}

std::string_view parse_error_condition(xml::ParseError e) {
    switch (e) {
        case xml::ParseError::RestrictedXml: return "restricted-xml";
        case xml::ParseError::PolicyViolation: return "policy-violation";
        case xml::ParseError::InvalidNamespace: return "invalid-namespace";
        case xml::ParseError::UnsupportedEncoding: return "unsupported-encoding";
        case xml::ParseError::NotWellFormed:
        case xml::ParseError::None: break;
    }
    return "not-well-formed";
}

}  // namespace

C2sSession::C2sSession(Server& server, boost::asio::ip::tcp::socket socket, C2sOptions options,
                       LoopShared shared, std::uint64_t id)
    : Session(id),
      server_(server),
      options_(options),
      transport_(std::move(socket), *this, shared,
                 static_cast<std::size_t>(server.config().get_int("limits", "max_send_queue_bytes"))),
      parser_(*this, limits_for(server, false)),
      deadline_(server.io()) {
    remote_ = transport_.remote_address();
    throttle_key_ = address_key(remote_);
}

C2sSession::~C2sSession() = default;

void C2sSession::start() {
    transport_.set_owner(weak_from_this());
    arm_negotiation_deadline();
    if (options_.direct_tls) {
        if (!admit_handshake()) {
            abort("too many TLS handshakes in progress");
            return;
        }
        state_ = State::TlsHandshake;
        transport_.start_tls(options_.tls, options_.take_over_tls);
    } else {
        transport_.start_reading();
    }
}

bool C2sSession::admit_handshake() {
    if (options_.gate == nullptr) {
        return true;
    }
    handshake_ = options_.gate->admit(ConnectionGate::Kind::Handshake, throttle_key_);
    return static_cast<bool>(handshake_);
}

void C2sSession::arm_negotiation_deadline() {
    // RFC 6120 §4.2 / issue: a stream gets a bounded time to log in, resource binding included
    // (an authenticated stream that never binds is as useless as one that never authenticates).
    auto secs = server_.config().get_int("limits", "unauthenticated_timeout_s");
    deadline_.expires_after(std::chrono::seconds(secs));
    deadline_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        if (auto self = std::static_pointer_cast<C2sSession>(weak.lock())) {
            if (self->state_ != State::Active) {
                self->stream_error("connection-timeout");
            }
        }
    });
}

void C2sSession::write_raw(std::string_view data) { transport_.send(data); }

void C2sSession::send(const Element& stanza) {
    if (state_ == State::Closed || state_ == State::Closing) {
        return;
    }
    for (const auto& f : filters()) {
        if (f->hold(stanza)) {
            return;  // XEP-0352: held back while the client is inactive
        }
    }
    serial_.clear();
    xml::serialize_to(serial_, stanza, ns::client);
    const bool written = state_ != State::Detached;
    if (written) {
        transport_.send(serial_);
    }
    for (const auto& f : filters()) {
        f->sent(stanza, serial_, written);
    }
}

void C2sSession::send_nonza(const Element& nonza) {
    if (state_ == State::Closed || state_ == State::Closing || state_ == State::Detached) {
        return;
    }
    // Its own buffer: a filter may send a nonza while serial_ holds the stanza it is given.
    std::string out;
    xml::serialize_to(out, nonza, ns::client);
    transport_.send(out);
}

void C2sSession::send_serialised(std::string_view bytes) {
    if (state_ == State::Closed || state_ == State::Closing || state_ == State::Detached) {
        return;
    }
    transport_.send(bytes);
}

bool C2sSession::take_over(Session& old_session) {
    auto* old = dynamic_cast<C2sSession*>(&old_session);
    if (old == nullptr || old == this || state_ != State::Authenticated || !old->bound() ||
        old->left_registry_ || old->jid().local() != localpart_) {
        return false;
    }
    auto keep = old->shared_from_this();  // the registry's reference goes below
    adopt(*old);
    server_.sessions().replace(*old, shared_from_this());
    // The old stream is this one now: it leaves without session_closed (no unavailable
    // presence, rooms keep the occupant). Its connection may still look alive, if the client
    // saw it die before we did: it ends without a word (its peer is gone or moved on).
    old->left_registry_ = true;
    if (old->state_ != State::Detached && old->state_ != State::Closed) {
        old->state_ = State::Closing;
        old->transport_.close_now("resumed on another connection");
    }
    old->state_ = State::Closed;
    old->deadline_.cancel();
    state_ = State::Active;
    deadline_.cancel();  // the login deadline is done
    last_input_ = std::chrono::steady_clock::now();
    arm_idle_check();
    server_.log().debug("c2s ", id(), ": resumed on a new connection");
    return true;
}

void C2sSession::close(std::string_view condition, std::string_view text) {
    if (state_ == State::Closed || state_ == State::Closing) {
        return;
    }
    if (state_ == State::Detached) {
        // No connection to tell: the session just ends (its resumption window closed, the
        // account was deleted, or a new login took the resource).
        state_ = State::Closed;
        deadline_.cancel();
        leave_registry();
        return;
    }
    if (!condition.empty()) {
        stream_error(condition, text);
        return;
    }
    if (!stream_opened_by_us_) {
        write_raw(xml::serialize_stream_open(ns::client, {{"from", server_.domain()},
                                                          {"version", "1.0"}}));
        stream_opened_by_us_ = true;
    }
    transport_.send_closing("</stream:stream>");
    state_ = State::Closing;
    transport_.close_after_flush();
    arm_close_deadline();
    leave_registry();
}

void C2sSession::abort(std::string_view reason) {
    if (state_ == State::Closed) {
        return;
    }
    if (state_ == State::Detached) {
        close();
        return;
    }
    state_ = State::Closing;
    transport_.close_now(reason);
}

void C2sSession::arm_close_deadline() {
    // The closing tag waits for the peer to read it; one that never reads must not keep the
    // connection (and its queue) forever.
    if (transport_.closed()) {
        return;
    }
    deadline_.expires_after(close_grace);
    deadline_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        if (auto self = std::static_pointer_cast<C2sSession>(weak.lock())) {
            self->transport_.close_now("peer did not read the closing stream");
        }
    });
}

void C2sSession::stream_error(std::string_view condition, std::string_view text) {
    if (state_ == State::Closed || state_ == State::Closing) {
        return;
    }
    if (state_ == State::Detached) {
        close();
        return;
    }
    server_.log().info("c2s ", id(), ": stream error ", condition);
    if (!stream_opened_by_us_) {
        // RFC 6120 §4.9.1.2: open a stream first so the error is well-formed.
        write_raw(xml::serialize_stream_open(ns::client, {{"from", server_.domain()},
                                                          {"version", "1.0"}}));
        stream_opened_by_us_ = true;
    }
    serial_.clear();
    xml::serialize_to(serial_, make_stream_error(condition, text), ns::client);
    serial_ += "</stream:stream>";
    transport_.send_closing(serial_);
    state_ = State::Closing;
    transport_.close_after_flush();
    arm_close_deadline();
    leave_registry();
}

void C2sSession::on_transport_data(std::string_view data) {
    if (state_ == State::Closed) {
        return;
    }
    last_input_ = std::chrono::steady_clock::now();
    in_feed_ = true;
    xml::ParseError err = xml::ParseError::None;
    try {
        err = parser_.feed(data);
    } catch (const std::exception& e) {
        contain_failure(e.what());
        return;
    } catch (...) {
        contain_failure("unknown exception");
        return;
    }
    in_feed_ = false;
    if (err != xml::ParseError::None) {
        stream_error(parse_error_condition(err), parser_.error_text());
        return;
    }
    if (parser_.stopped()) {
        // STARTTLS proceed / SASL success: everything after that stanza belongs to a new
        // stream (and plaintext after <starttls/> must never be processed, RFC 6120 §5.3.3).
        parser_.reset();
    }
    if (state_ == State::Active && (!idle_check_armed_ || idle_released_)) {
        idle_released_ = false;
        arm_idle_check();  // woken up after hibernating: the next release is due from now
    }
}

void C2sSession::contain_failure(std::string_view what) {
    // Whatever escaped the stanza handling (bad_alloc in the parser, a bug in negotiation) ends
    // this stream only, never the process: logged once with the top tag, then a stream error.
    in_feed_ = false;
    // Stanzas are guarded by the router (which logs their top tag); what gets here failed in the
    // stream's own handling: negotiation, binding, or the parser.
    server_.log().error("c2s ", id(), ": internal error in the stream's handling: ", what);
    stream_error("internal-server-error");
}

std::chrono::seconds C2sSession::hibernate_after() const {
    return std::chrono::seconds(server_.config().get_int("c2s", "hibernate_after_s"));
}

namespace {
struct KeepaliveTimes {
    std::chrono::seconds interval;  // quiet time before we ping; 0: never
    std::chrono::seconds timeout;   // time the client has to answer
};
KeepaliveTimes keepalive(const config::Config& c) {
    return {std::chrono::seconds(c.get_int("c2s", "ping_interval_s")),
            std::chrono::seconds(c.get_int("c2s", "ping_timeout_s"))};
}
}  // namespace

void C2sSession::arm_idle_check() {
    // One timer per session, re-armed when it fires rather than on every read: a busy session
    // costs a timer wake-up every few seconds, a sleeping one one per ping interval.
    const auto after = hibernate_after();
    const auto ka = keepalive(server_.config());
    std::optional<std::chrono::steady_clock::time_point> due;
    auto consider = [&due](std::chrono::steady_clock::time_point t) {
        if (!due || t < *due) {
            due = t;
        }
    };
    if (after.count() > 0 && !idle_released_) {
        consider(last_input_ + after);
    }
    if (ka.interval.count() > 0) {
        const bool waiting = ping_sent_ > last_input_;
        consider(waiting ? ping_sent_ + ka.timeout : last_input_ + ka.interval);
    }
    if (!due) {
        return;
    }
    idle_check_armed_ = true;
    deadline_.expires_at(*due);
    deadline_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        if (auto self = std::static_pointer_cast<C2sSession>(weak.lock())) {
            self->idle_check();
        }
    });
}

void C2sSession::idle_check() {
    idle_check_armed_ = false;
    if (state_ != State::Active) {
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto ka = keepalive(server_.config());
    if (ka.interval.count() > 0) {
        // A phone that lost its network sends no FIN: without an answer to a ping the
        // connection is dead, and the session detaches (XEP-0198) or ends, so messages go to
        // a resumption queue or offline storage instead of into a socket nobody reads.
        if (ping_sent_ > last_input_ && now >= ping_sent_ + ka.timeout) {
            server_.log().debug("c2s ", id(), ": no answer to a keepalive ping");
            transport_.close_now("no answer to a keepalive ping");
            return;
        }
        if (ping_sent_ <= last_input_ && now >= last_input_ + ka.interval) {
            send_ping();
        }
    }
    const auto after = hibernate_after();
    if (after.count() == 0 || idle_released_ || now < last_input_ + after) {
        arm_idle_check();  // input since: wait until a whole period has passed without any
        return;
    }
    // A whole period without input: most connections of a server sit like this for hours, so
    // give back what the next input can rebuild (about 10 KiB of XML parser, the TLS cipher
    // contexts, spare buffers). The parser refuses while a stanza is half received; the next
    // input re-arms the check either way.
    const bool parser_freed = parser_.hibernate();
    transport_.release_idle();
    std::string().swap(serial_);
    idle_released_ = true;
    server_.log().debug("c2s ", id(), ": idle, released ",
                        parser_freed ? "parser and buffers" : "buffers (stanza in progress)");
    arm_idle_check();  // the keepalive, if any, is still due
}

void C2sSession::send_ping() {
    // XEP-0199 §4.1: every client answers an IQ get (with a result or an error), so any
    // answer proves the connection alive; it arrives as input and resets last_input_.
    ping_sent_ = std::chrono::steady_clock::now();
    Element iq("iq", std::string(ns::client));
    iq.attr("type", "get").attr("id", "keepalive-" + random_token(8));
    iq.attr("from", server_.domain()).attr("to", jid().str());
    iq.add(Element("ping", std::string(ns::ping)));
    send(iq);
}

void C2sSession::on_transport_closed(std::string_view reason) {
    deadline_.cancel();
    unauthenticated_.release();
    handshake_.release();
    if (state_ == State::Active && !left_registry_ && keep_detached()) {
        // The client vanished without closing its stream: a filter (XEP-0198 resumption)
        // keeps the session bound until it is resumed or its window ends.
        state_ = State::Detached;
        idle_check_armed_ = false;
        // Waiting costs only the filters' queue: the parser and buffers go now.
        parser_.hibernate();
        transport_.release_idle();
        std::string().swap(serial_);
        server_.log().debug("c2s ", id(), ": connection lost (", reason, "), session kept");
        return;
    }
    state_ = State::Closed;
    server_.log().debug("c2s ", id(), ": closed (", reason, ")");
    leave_registry();
}

bool C2sSession::keep_detached() {
    bool keep = false;
    for (const auto& f : filters()) {
        keep = f->keep_detached(*this) || keep;
    }
    return keep;
}

void C2sSession::leave_registry() {
    // Once our closing tag is out the session is over for routing: stanzas for it go to the
    // account's other resources or to offline storage instead of into a stream that takes no
    // more (the connection itself may linger until the peer closes its side). It also puts a
    // replaced session's end (RFC 6120 §7.7.2.2) before the new session's start.
    if (left_registry_) {
        return;
    }
    left_registry_ = true;
    if (bound()) {
        auto self = shared_from_this();  // signal handlers may drop the registry's reference
        server_.sessions().unbind(*this);
        try {
            server_.session_closed.emit(*this);
        } catch (const std::exception& e) {
            // Every module saw the event (Signal::emit); the session is gone either way.
            server_.log().error("c2s ", id(), ": session_closed handler failed: ", e.what());
        }
        // After session_closed: what a filter still holds (XEP-0198's unacknowledged
        // messages) is routed again, to the account's other resources or offline storage.
        auto filters = std::move(this->filters());
        this->filters().clear();
        for (const auto& f : filters) {
            try {
                f->ended(*this);
            } catch (const std::exception& e) {
                server_.log().error("c2s ", id(), ": stream filter failed at the end: ", e.what());
            }
        }
    }
}

void C2sSession::on_tls_established() {
    handshake_.release();
    state_ = State::WaitStreamOpen;
    // RFC 6120 §4.3.3: a new stream; until we answer its header, an error needs one of ours
    // first (§4.9.1.1) or the client's fresh parser cannot read it.
    stream_opened_by_us_ = false;
    parser_.reset();
    server_.log().debug("c2s ", id(), ": TLS established",
                        transport_.records_taken_over() ? " (records by Haven)" : "");
}

void C2sSession::on_send_overflow() {
    // A reader that does not keep up must not grow our memory: end its stream. The error goes
    // after what is queued, so a client that is slow rather than gone still learns why; the
    // close deadline bounds how long we wait for it to read that far.
    server_.log().info("c2s ", id(), ": send queue full, closing");
    // Not here: send() is called from inside other handlers (a room's broadcast to its
    // occupants), and closing now would take this session out of the registry and run every
    // session_closed handler (a room removing the occupant) under their feet. The transport
    // drops whatever else is sent meanwhile; the stream error follows on the next turn.
    boost::asio::post(server_.io(), [weak = weak_from_this()] {
        if (auto self = std::static_pointer_cast<C2sSession>(weak.lock())) {
            self->stream_error("policy-violation", "too much unread data");
        }
    });
}

void C2sSession::on_stream_open(xml::StreamHeader&& header) {
    if (state_ != State::WaitStreamOpen) {
        stream_error("bad-format", "unexpected stream header");
        return;
    }
    if (auto l = header.attr("xml:lang"); !l.empty()) {
        set_lang(std::string(l));
    }
    std::vector<std::pair<std::string, std::string>> attrs{
        {"from", server_.domain()}, {"id", random_token(16)}, {"version", "1.0"},
        {"xml:lang", lang().empty() ? std::string("en") : lang()}};
    write_raw(xml::serialize_stream_open(ns::client, attrs));
    stream_opened_by_us_ = true;
    if (header.default_ns != ns::client) {
        stream_error("invalid-namespace", "this port speaks jabber:client");
        return;
    }
    auto to = Jid::parse(header.attr("to"));
    if (!to || *to != server_.host_jid()) {
        stream_error("host-unknown");
        return;
    }
    if (header.attr("version") != "1.0") {
        stream_error("unsupported-version");
        return;
    }
    send_features();
}

std::vector<std::string> C2sSession::offered_mechanisms() const {
    std::vector<std::string> out;
    bool have_cb = transport_.channel_binding().has_value();
    for (const auto& m : server_.config().get_list("sasl", "mechanisms")) {
        if (m.ends_with("-PLUS") && !have_cb) {
            continue;
        }
        if (m == "PLAIN" && !transport_.is_tls()) {
            continue;  // never a cleartext password over an unencrypted stream
        }
        out.push_back(m);
    }
    return out;
}

void C2sSession::send_features() {
    Element features("features", std::string(ns::streams));
    bool require_tls = server_.config().get_bool("c2s", "require_encryption");
    if (!authenticated_) {
        if (!transport_.is_tls() && options_.tls) {
            auto& starttls = features.add(Element("starttls", std::string(ns::tls)));
            if (require_tls) {
                starttls.add(Element("required", std::string(ns::tls)));
            }
        }
        if (transport_.is_tls() || !require_tls) {
            auto& mechs = features.add(Element("mechanisms", std::string(ns::sasl)));
            for (const auto& m : offered_mechanisms()) {
                mechs.add(Element("mechanism", std::string(ns::sasl))).text(m);
            }
            if (auto cb = transport_.channel_binding()) {
                // XEP-0440: tell clients which channel-binding type we support.
                auto& cbs = features.add(Element("sasl-channel-binding", std::string(ns::sasl_cb)));
                cbs.add(Element("channel-binding", std::string(ns::sasl_cb))).attr("type", cb->type);
            }
            server_.stream_extensions().for_each([&](const StreamExtension& ext) {
                if (ext.features) {
                    ext.features(*this, StreamStage::BeforeAuth, features);
                }
            });
        }
        state_ = State::Negotiating;
    } else {
        features.add(Element("bind", std::string(ns::bind)));
        auto& sess = features.add(Element("session", std::string(ns::session)));
        sess.add(Element("optional", std::string(ns::session)));
        server_.stream_extensions().for_each([&](const StreamExtension& ext) {
            if (ext.features) {
                ext.features(*this, StreamStage::AfterAuth, features);
            }
        });
        state_ = State::Authenticated;
    }
    serial_.clear();
    xml::serialize_to(serial_, features, ns::client);
    transport_.send(serial_);
}

bool C2sSession::on_stanza(Element&& stanza) {
    switch (state_) {
        case State::Negotiating:
        case State::Authenticating:
        case State::Authenticated:
            return handle_negotiation(stanza);
        case State::Active:
            handle_active(std::move(stanza));
            return state_ != State::Closing && state_ != State::Closed;
        case State::WaitStreamOpen:
        case State::TlsHandshake:
            stream_error("not-authorized");
            return false;
        case State::Detached:  // no connection, so no input
        case State::Closing:
        case State::Closed:
            return false;
    }
    return false;
}

bool C2sSession::handle_negotiation(Element& stanza) {
    const auto& ns = stanza.ns();
    if (ns == ns::tls && stanza.name() == "starttls" && state_ == State::Negotiating) {
        if (transport_.is_tls() || !options_.tls) {
            write_raw("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
            state_ = State::Closing;
            transport_.close_after_flush();
            return false;
        }
        if (!admit_handshake()) {
            // RFC 6120 §5.4.2.2: <failure/> and the stream ends; the client may come back.
            server_.log().debug("c2s ", id(), ": STARTTLS refused, too many handshakes");
            write_raw("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
            state_ = State::Closing;
            transport_.close_after_flush();
            arm_close_deadline();
            return false;
        }
        write_raw("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        state_ = State::TlsHandshake;
        transport_.start_tls(options_.tls, options_.take_over_tls);
        return false;  // stop parsing: the rest of this read is TLS (or an injection attempt)
    }
    if (ns == ns::sasl && state_ == State::Negotiating && stanza.name() == "auth") {
        bool require_tls = server_.config().get_bool("c2s", "require_encryption");
        if (require_tls && !transport_.is_tls()) {
            stream_error("policy-violation", "encryption required");
            return false;
        }
        handle_auth(stanza);
        return state_ != State::WaitStreamOpen;
    }
    if (ns == ns::sasl && state_ == State::Authenticating) {
        if (stanza.name() == "response") {
            handle_sasl_response(stanza);
            return state_ != State::WaitStreamOpen;
        }
        if (stanza.name() == "abort") {
            // An aborted check counts as a failed attempt (issue 10 point 5): otherwise
            // <auth/> + <abort/> pairs would be free guesses, or free work for the pool.
            const auto now = std::chrono::steady_clock::now();
            if (plain_ && plain_->deferred) {
                // Its check never started, but the aborted attempt counts all the same.
                plain_->deferred.reset();
                server_.throttle().record_failure(plain_->local, address_for_throttle(), now);
                sasl_failure("aborted");
                return true;
            }
            if (plain_pending_ && plain_) {
                server_.throttle().record_failure(plain_->local, address_for_throttle(), now);
            } else if (scram_ && !scram_->username().empty()) {
                auto user = Jid::make(scram_->username(), server_.domain());
                server_.throttle().record_failure(user ? user->local() : std::string{},
                                                  address_for_throttle(), now);
            }
            scram_.reset();
            ++sasl_attempt_;  // a PLAIN check still running must not log this stream in
            plain_pending_ = false;
            sasl_failure("aborted");
            return true;
        }
    }
    if (state_ == State::Authenticated && ns != ns::client) {
        if (const auto* ext = server_.stream_extensions().for_ns(ns)) {
            ext->nonza(*this, stanza);  // XEP-0198 <resume/> (or an <enable/> too early)
            return state_ == State::Authenticated || state_ == State::Active;
        }
    }
    if (stanza.name() == "iq" && ns == ns::client) {
        if (state_ == State::Authenticated) {
            const auto* bind = stanza.child("bind", ns::bind);
            if (bind && stanza.attr("type") == "set") {
                handle_bind(stanza);
                return true;
            }
            stream_error("not-authorized", "bind a resource first");
            return false;
        }
        if (state_ == State::Negotiating && transport_.is_tls()) {
            // XEP-0077 in-band registration before authentication, if a module takes it.
            StanzaEvent ev{server_, stanza, this, Jid{}, server_.host_jid(), StanzaKind::Iq,
                           RouteTarget::Host};
            std::string event = "iq-unauthenticated/";
            if (const auto* payload = stanza.first_child()) {
                event += payload->ns();
            }
            if (server_.bus().fire(event, ev) == FireResult::Handled) {
                return true;
            }
            if (!is_error_or_result(stanza)) {
                send(make_error(stanza, "service-unavailable"));
            }
            return true;
        }
    }
    stream_error("not-authorized");
    return false;
}

std::string C2sSession::address_for_throttle() const { return throttle_key_; }

void C2sSession::handle_auth(const Element& auth) {
    if (plain_in_flight_) {
        // At most one password check per stream on the hashing pool (issue 10 point 5): an
        // <auth/> behind an aborted PLAIN attempt whose check still runs waits for it, so
        // pipelined <auth/><abort/> pairs queue no work (each abort still counts, below).
        plain_->deferred = std::make_unique<Element>(auth);
        state_ = State::Authenticating;
        return;
    }
    ++sasl_attempt_;
    std::string mech(auth.attr("mechanism"));
    auto offered = offered_mechanisms();
    if (std::find(offered.begin(), offered.end(), mech) == offered.end()) {
        sasl_failure("invalid-mechanism");
        return;
    }
    auto text = auth.text();
    std::string payload;
    if (text != "=" && !text.empty()) {
        auto decoded = auth::base64_decode(text);
        if (!decoded) {
            sasl_failure("incorrect-encoding");
            return;
        }
        payload = std::move(*decoded);
    }
    auto& accounts = server_.accounts();
    auto now = std::chrono::steady_clock::now();
    if (mech == "PLAIN") {
        auto msg = auth::parse_plain(payload);
        if (!msg) {
            sasl_failure("malformed-request");
            return;
        }
        auto user = Jid::make(msg->authcid, server_.domain());
        if (!user) {
            sasl_failure("not-authorized");
            return;
        }
        std::string local = user->local();
        if (!msg->authzid.empty()) {
            auto authz = Jid::parse(msg->authzid);
            if (!authz || *authz != user->bare()) {
                sasl_failure("invalid-authzid");
                return;
            }
        }
        if (!server_.throttle().allowed(local, address_for_throttle(), now)) {
            sasl_failure("temporary-auth-failure",
                         server_.texts().get("login-throttled", lang()));
            return;
        }
        // Unknown users are checked against a fake record so both cost the same PBKDF2 time.
        auto cred = accounts.scram(local, auth::HashAlg::Sha256);
        if (!cred) {
            cred = auth::fake_credential(auth::HashAlg::Sha256, accounts.fake_salt_secret(),
                                         local, accounts.iterations());
        }
        std::string password = msg->password;
        state_ = State::Authenticating;
        plain_pending_ = true;
        plain_in_flight_ = true;
        plain_ = std::make_unique<PendingPlain>();
        plain_->local = local;
        transport_.pause_reading();
        auto ok = std::make_shared<bool>(false);
        // PBKDF2 is deliberately slow: run it off the event loop.
        server_.offload(
            [ok, cred, password, exists = accounts.exists(local)] {
                *ok = auth::verify_plain(*cred, password) && exists;
            },
            [self = std::static_pointer_cast<C2sSession>(shared_from_this()), local, ok,
             attempt = sasl_attempt_] { self->finish_plain(local, *ok, attempt); });
        return;
    }
    bool plus = mech.ends_with("-PLUS");
    auto alg = mech.starts_with("SCRAM-SHA-256") ? auth::HashAlg::Sha256 : auth::HashAlg::Sha1;
    std::optional<auth::ChannelBinding> cb;
    if (auto data = transport_.channel_binding()) {
        cb = auth::ChannelBinding{data->type, data->data};
    }
    bool plus_offered = std::any_of(offered.begin(), offered.end(),
                                    [](const std::string& m) { return m.ends_with("-PLUS"); });
    scram_ = std::make_unique<auth::ScramServer>(alg, plus, cb, plus_offered,
                                                 accounts.fake_salt_secret(),
                                                 accounts.iterations());
    bool throttled = false;
    auto step = scram_->client_first(payload, [&](std::string_view username)
                                                  -> std::optional<auth::ScramCredential> {
        auto user = Jid::make(username, server_.domain());
        if (!user) {
            return std::nullopt;
        }
        if (!server_.throttle().allowed(user->local(), address_for_throttle(), now)) {
            throttled = true;
            return std::nullopt;
        }
        return accounts.scram(user->local(), alg);
    });
    if (throttled) {
        scram_.reset();
        sasl_failure("temporary-auth-failure", server_.texts().get("login-throttled", lang()));
        return;
    }
    if (step.status != auth::ScramServer::Step::Status::Continue) {
        scram_.reset();
        sasl_failure(step.condition.empty() ? "malformed-request" : step.condition);
        return;
    }
    state_ = State::Authenticating;
    Element challenge("challenge", std::string(ns::sasl));
    challenge.text(auth::base64_encode(step.message));
    send(challenge);
}

void C2sSession::handle_sasl_response(const Element& response) {
    if (plain_ && plain_->deferred) {
        plain_->deferred.reset();  // a response to an exchange that has not started
        sasl_failure("malformed-request");
        return;
    }
    if (!scram_) {
        sasl_failure("malformed-request");
        return;
    }
    auto decoded = auth::base64_decode(response.text());
    if (!decoded) {
        scram_.reset();
        sasl_failure("incorrect-encoding");
        return;
    }
    auto user = Jid::make(scram_->username(), server_.domain());
    std::string local = user ? user->local() : std::string{};
    if (!server_.throttle().allowed(local, address_for_throttle(),
                                    std::chrono::steady_clock::now())) {
        // Checked again here, not only at <auth/>: exchanges opened in parallel on many
        // connections would otherwise each get a guess past the limit.
        scram_.reset();
        sasl_failure("temporary-auth-failure", server_.texts().get("login-throttled", lang()));
        return;
    }
    auto step = scram_->client_final(*decoded);
    if (step.status == auth::ScramServer::Step::Status::Success && user) {
        if (!scram_->authzid().empty()) {
            auto authz = Jid::parse(scram_->authzid());
            if (!authz || *authz != user->bare()) {
                scram_.reset();
                sasl_failure("invalid-authzid");
                return;
            }
        }
        scram_.reset();
        server_.throttle().record_success(local, address_for_throttle());
        sasl_success(local, step.message);
        return;
    }
    scram_.reset();
    if (step.password_checked) {
        // Only a proof that was checked is a guess: a malformed message or a channel-binding
        // mismatch never tested the password (old clients try -PLUS with a binding the
        // connection lacks, then fall back, and must not lock their own address out).
        server_.throttle().record_failure(local, address_for_throttle(),
                                          std::chrono::steady_clock::now());
    }
    sasl_failure(step.condition.empty() ? "not-authorized" : step.condition);
}

void C2sSession::finish_plain(const std::string& local, bool ok, std::uint64_t attempt) {
    plain_in_flight_ = false;
    auto pending = std::move(plain_);  // the check is over: its bookkeeping goes with it
    if (state_ == State::Closed || state_ == State::Closing) {
        return;
    }
    if (attempt != sasl_attempt_) {
        // Aborted while the check ran: an <auth/> that waited for it starts now.
        if (pending && pending->deferred) {
            handle_auth(*pending->deferred);
        }
        // Reading stays paused only for a newer PLAIN check.
        if (!plain_pending_) {
            transport_.resume_reading();
        }
        return;
    }
    plain_pending_ = false;
    transport_.resume_reading();
    if (!server_.throttle().allowed(local, address_for_throttle(),
                                    std::chrono::steady_clock::now())) {
        // Attempts verified in parallel finish one by one here: once the ones before this one
        // reached the limit, this outcome, right or wrong, must not be revealed.
        sasl_failure("temporary-auth-failure", server_.texts().get("login-throttled", lang()));
        return;
    }
    if (ok) {
        server_.throttle().record_success(local, address_for_throttle());
        sasl_success(local, {});
    } else {
        server_.throttle().record_failure(local, address_for_throttle(),
                                          std::chrono::steady_clock::now());
        sasl_failure("not-authorized");
    }
}

void C2sSession::sasl_success(const std::string& localpart, std::string additional) {
    Element success("success", std::string(ns::sasl));
    if (!additional.empty()) {
        success.text(auth::base64_encode(additional));
    }
    send(success);
    authenticated_ = true;
    unauthenticated_.release();
    localpart_ = localpart;
    state_ = State::WaitStreamOpen;
    stream_opened_by_us_ = false;  // RFC 6120 §6.4.6: the stream restarts (see above)
    parser_.set_limits(limits_for(server_, true));
    if (!in_feed_) {
        parser_.reset();  // PLAIN finished asynchronously: no parse is running, restart now
    }
    // Logged without the address unless [log] addresses = true, and only at debug unless
    // [log] login_events = true: when a help seeker logs in is personal data too.
    const std::string from = server_.log().log_addresses() ? " from " + remote_ : std::string{};
    if (server_.config().get_bool("log", "login_events")) {
        server_.log().info("c2s ", id(), ": authenticated ", localpart, from);
    } else {
        server_.log().debug("c2s ", id(), ": authenticated ", localpart, from);
    }
}

void C2sSession::sasl_failure(std::string_view condition, std::string_view text) {
    Element failure("failure", std::string(ns::sasl));
    failure.add(Element(std::string(condition), std::string(ns::sasl)));
    if (!text.empty()) {
        failure.add(Element("text", std::string(ns::sasl))).text(text);
    }
    send(failure);
    state_ = State::Negotiating;
}

void C2sSession::handle_bind(const Element& iq) {
    const auto* bind = iq.child("bind", ns::bind);
    std::string resource = bind ? bind->child_text("resource", ns::bind) : std::string{};
    if (resource.empty()) {
        resource = "haven-" + random_token(10);
    }
    auto full = Jid::make(localpart_, server_.domain(), resource);
    if (!full) {
        send(make_error(iq, "bad-request", "invalid resource"));
        return;
    }
    // [limits] max_sessions_per_account: the oldest session makes room (as ejabberd's
    // max_user_sessions does). Sessions waiting for a resumption (XEP-0198) count too, so
    // logging in and dropping the connection over and over cannot pile them up.
    const auto max_sessions =
        static_cast<std::size_t>(server_.config().get_int("limits", "max_sessions_per_account"));
    const auto& mine = server_.sessions().of(localpart_);
    const bool replaces = server_.sessions().find(*full) != nullptr;
    if (!replaces && mine.size() >= max_sessions && !mine.empty()) {
        auto oldest = mine.front();
        oldest->close("policy-violation", "too many sessions of this account");
    }
    set_jid(*full);
    auto self = shared_from_this();
    if (auto replaced = server_.sessions().bind(self)) {
        // RFC 6120 §7.7.2.2: the newer session wins; the old one ends with <conflict/>.
        // Closing it emits its session_closed (unavailable presence for that resource) now,
        // before this session's resource_bound.
        replaced->close("conflict", "replaced by a new session");
    }
    auto result = make_result(iq);
    result.remove_attr("from");
    result.remove_attr("to");
    auto& b = result.add(Element("bind", std::string(ns::bind)));
    b.add(Element("jid", std::string(ns::bind))).text(full->str());
    send(result);
    state_ = State::Active;
    deadline_.cancel();  // logged in: the login deadline is done
    arm_idle_check();
    server_.log().debug("c2s ", id(), ": bound");
    server_.resource_bound.emit(*this);
}

void C2sSession::handle_active(Element&& stanza) {
    if (stanza.ns() != ns::client) {
        if (const auto* ext = server_.stream_extensions().for_ns(stanza.ns())) {
            ext->nonza(*this, stanza);  // XEP-0198 <r/>, <a/>, <enable/>
            return;
        }
        stream_error("unsupported-stanza-type");
        return;
    }
    auto kind = kind_of(stanza);
    if (kind == StanzaKind::Other) {
        stream_error("unsupported-stanza-type");
        return;
    }
    for (const auto& f : filters()) {
        f->received(stanza);  // XEP-0198 counts every stanza, whatever becomes of it
    }
    if (auto from = stanza.attr("from"); !from.empty()) {
        // RFC 6120 §8.1.2.1: a client may only use its own full or bare JID.
        auto parsed = Jid::parse(from);
        if (!parsed || (*parsed != jid() && *parsed != jid().bare())) {
            stream_error("invalid-from");
            return;
        }
    }
    if (kind == StanzaKind::Iq && stanza.attr("type") == "set" &&
        stanza.child("session", ns::session) && stanza.attr("to").empty()) {
        // RFC 3921 session establishment: a no-op kept for older clients.
        auto result = make_result(stanza);
        result.remove_attr("from");
        send(result);
        return;
    }
    if (kind == StanzaKind::Iq && stanza.child("bind", ns::bind)) {
        send(make_error(stanza, "not-allowed", "already bound"));
        return;
    }
    server_.router().from_session(*this, std::move(stanza));
}

void C2sSession::on_stream_close() {
    // The client closed its stream: close ours and the connection (RFC 6120 §4.4).
    if (state_ == State::Closed || state_ == State::Closing) {
        return;
    }
    transport_.send_closing("</stream:stream>");
    state_ = State::Closing;
    transport_.close_after_flush();
    arm_close_deadline();
    leave_registry();
}

}  // namespace haven::net
