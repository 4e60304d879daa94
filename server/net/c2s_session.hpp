// C2sSession: one client stream (RFC 6120): STARTTLS, SASL, resource binding, then stanzas.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/auth/base64.hpp"
#include "server/auth/plain.hpp"
#include "server/auth/scram.hpp"
#include "server/core/session.hpp"
#include "server/net/connection_gate.hpp"
#include "server/net/transport.hpp"
#include "server/xml/stream_parser.hpp"

namespace haven {
class Server;
}

namespace haven::net {

struct C2sOptions {
    SSL_CTX* tls = nullptr;
    bool direct_tls = false;  // XEP-0368 port: TLS from the first byte
    bool take_over_tls = false;  // [tls] compact_connections: see tls_records.hpp
    ConnectionGate* gate = nullptr;  // the loop's caps before login; null = no caps
};

class C2sSession final : public Session,
                         public ClientStream,
                         private TransportHandler,
                         private xml::StreamHandler {
public:
    C2sSession(Server& server, boost::asio::ip::tcp::socket socket, C2sOptions options,
               LoopShared shared, std::uint64_t id);
    ~C2sSession() override;

    // The "unauthenticated" ticket the listener got for this connection (given back at login).
    void admit(ConnectionGate::Ticket ticket) { unauthenticated_ = std::move(ticket); }
    void start();
    void send(const Element& stanza) override;
    void close(std::string_view condition = {}, std::string_view text = {}) override;
    // Drops the connection at once, without a closing tag (shutdown of streams that did not
    // close in time).
    void abort(std::string_view reason);
    bool finished() const { return state_ == State::Closed; }

    // How long a closing stream waits for the peer to take the last bytes.
    static constexpr std::chrono::seconds close_grace{5};

    // Whether the stream is encrypted and authenticated (for modules such as registration).
    bool secure() const override { return transport_.is_tls(); }
    bool authenticated() const { return authenticated_; }

    // ClientStream (what stream extensions see)
    Session& session() override { return *this; }
    const std::string& account() const override { return localpart_; }
    bool active() const override { return state_ == State::Active || state_ == State::Detached; }
    void send_nonza(const Element& nonza) override;
    void send_serialised(std::string_view bytes) override;
    void fail(std::string_view condition, std::string_view text = {}) override {
        stream_error(condition, text);
    }
    bool take_over(Session& old) override;

private:
    enum class State {
        WaitStreamOpen,  // before a (re)started stream header
        Negotiating,     // features sent; expecting STARTTLS / SASL / registration
        TlsHandshake,
        Authenticating,  // a SASL exchange is running
        Authenticated,   // SASL done; expecting bind
        Active,          // resource bound; stanzas are routed
        Detached,        // bound, but the connection is gone: kept for a resumption (XEP-0198)
        Closing,
        Closed,
    };

    // TransportHandler
    void on_transport_data(std::string_view data) override;
    void on_transport_closed(std::string_view reason) override;
    void on_tls_established() override;
    void on_send_overflow() override;
    // StreamHandler
    void on_stream_open(xml::StreamHeader&& header) override;
    bool on_stanza(Element&& stanza) override;
    void on_stream_close() override;

    void send_features();
    bool handle_negotiation(Element& stanza);
    void handle_auth(const Element& auth);
    void handle_sasl_response(const Element& response);
    void finish_plain(const std::string& local, bool ok, std::uint64_t attempt);
    void sasl_success(const std::string& localpart, std::string additional);
    void sasl_failure(std::string_view condition, std::string_view text = {});
    void handle_bind(const Element& iq);
    void handle_active(Element&& stanza);
    void stream_error(std::string_view condition, std::string_view text = {});
    void contain_failure(std::string_view what);
    void arm_negotiation_deadline();
    void arm_close_deadline();
    std::chrono::seconds hibernate_after() const;  // [c2s] hibernate_after_s; 0 = never
    void arm_idle_check();
    void idle_check();
    void send_ping();
    bool keep_detached();
    void leave_registry();
    void write_raw(std::string_view data);
    std::vector<std::string> offered_mechanisms() const;
    std::string address_for_throttle() const;

    Server& server_;
    C2sOptions options_;
    Transport transport_;
    xml::StreamParser parser_;
    boost::asio::steady_timer deadline_;
    State state_ = State::WaitStreamOpen;
    bool stream_opened_by_us_ = false;
    bool authenticated_ = false;
    bool left_registry_ = false;      // unbound and session_closed emitted (once)
    std::uint64_t sasl_attempt_ = 0;  // bumped by each <auth/> and <abort/>
    bool plain_pending_ = false;      // a PLAIN check for the current attempt runs off the loop
    bool plain_in_flight_ = false;    // a PLAIN check (current or aborted) has not finished yet
    // Only while a PLAIN check is off the loop (most sessions never need it after login).
    struct PendingPlain {
        std::string local;                 // the account the check is for (throttling)
        std::unique_ptr<Element> deferred;  // an <auth/> waiting for the check to finish
    };
    std::unique_ptr<PendingPlain> plain_;
    bool in_feed_ = false;  // inside parser_.feed(): a restart must wait until it returns
    bool idle_check_armed_ = false;   // deadline_ is the idle check (in State::Active)
    bool idle_released_ = false;      // parser and buffers given back since the last input
    std::chrono::steady_clock::time_point last_input_{};  // for the idle check
    std::chrono::steady_clock::time_point ping_sent_{};   // our last keepalive ping
    std::string localpart_;                       // after SASL
    std::unique_ptr<auth::ScramServer> scram_;    // during a SCRAM exchange
    std::string remote_;                          // peer address, only for throttling/logs
    std::string throttle_key_;                    // remote_, or its /64 for IPv6
    std::string serial_;                          // reusable serialisation buffer
    ConnectionGate::Ticket unauthenticated_;      // held until SASL success
    ConnectionGate::Ticket handshake_;            // held while the TLS handshake runs
    bool admit_handshake();
};

}  // namespace haven::net
