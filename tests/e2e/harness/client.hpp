// TestClient (libstrophe), Stanza view and RawConnection (plain/TLS socket) for e2e tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <strophe.h>

namespace haven::test {

class TestServer;
struct StropheContext;  // one xmpp_ctx_t plus its logger; shared by a client and its stanzas

// A received (or parsed) stanza. Copies are cheap and share the same libstrophe tree; the tree
// and its context stay alive as long as any Stanza refers to them, even past the TestClient.
class Stanza {
public:
    Stanza() = default;
    explicit operator bool() const { return node_ != nullptr; }

    std::string name() const;
    std::string ns() const;
    std::string attr(std::string_view key) const;  // "" when absent
    bool has_attr(std::string_view key) const;
    std::string id() const { return attr("id"); }
    std::string type() const { return attr("type"); }
    std::string from() const { return attr("from"); }
    std::string to() const { return attr("to"); }

    // First child element with that name (and namespace, when ns is not empty).
    std::optional<Stanza> child(std::string_view name, std::string_view ns = {}) const;
    std::vector<Stanza> children() const;  // element children, in document order
    // Text of child(name, ns), "" when the child is absent.
    std::string child_text(std::string_view name, std::string_view ns = {}) const;
    std::string text() const;  // concatenated text children of this element
    std::string to_xml() const;

    xmpp_stanza_t* raw() const { return node_; }

private:
    friend class TestClient;
    Stanza(std::shared_ptr<xmpp_stanza_t> root, xmpp_stanza_t* node)
        : root_(std::move(root)), node_(node) {}
    static Stanza adopt(std::shared_ptr<StropheContext> ctx, xmpp_stanza_t* owned);

    std::shared_ptr<xmpp_stanza_t> root_;  // keeps the whole tree (and its ctx) alive
    xmpp_stanza_t* node_ = nullptr;
};

using StanzaPredicate = std::function<bool(const Stanza&)>;

struct StreamError {
    std::string condition;  // e.g. "policy-violation"; "" when the server sent none
    std::string text;
};

struct ClientOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;   // 0: the server's c2s (or direct TLS) port when built from a server
    bool direct_tls = false;  // XEP-0368 TLS from the first byte (XMPP_CONN_FLAG_LEGACY_SSL)
    bool trust_tls = true;    // accept the self-signed dev cert (XMPP_CONN_FLAG_TRUST_TLS)
    std::string ca_file{};    // verify against this file instead (use with trust_tls = false)
    bool mandatory_tls = true;
    bool disable_tls = false;  // plaintext; the server should refuse to authenticate
    // XEP-0198 stays off by default: its <r/>/<a/> traffic would make tests timing-dependent.
    bool stream_management = false;
    std::string resource{};  // empty: let the server assign one
    std::string label{};     // prefix of verbose log lines; defaults to the JID
};

// One XMPP client connection driven from the test thread. Nothing runs in the background:
// connect(), send(), wait_for(), expect_none() and pump() process this client's I/O, so while
// a test waits on bob, alice's socket is not read (the kernel buffers it).
class TestClient {
public:
    explicit TestClient(ClientOptions options);
    explicit TestClient(const TestServer& server, ClientOptions options = {});
    ~TestClient();
    TestClient(const TestClient&) = delete;
    TestClient& operator=(const TestClient&) = delete;

    // Connects, negotiates TLS/SASL/bind and returns once the session is ready (true) or has
    // failed (false; see failure() and stream_error()). jid may be bare or full.
    bool connect(std::string_view jid, std::string_view password,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
    bool connected() const;
    // Closes the stream and waits (bounded) for the server's side of the close.
    void disconnect(std::chrono::milliseconds timeout = std::chrono::seconds(3));
    // True once the server has closed the connection (within timeout).
    bool wait_disconnected(std::chrono::milliseconds timeout = std::chrono::seconds(5));

    const std::string& failure() const { return failure_; }  // why connect/the stream ended
    const std::optional<StreamError>& stream_error() const { return stream_error_; }
    const std::string& bound_jid() const { return bound_jid_; }  // full JID after bind
    bool secured() const;                                        // TLS is active

    // Sends raw XML (no validation, so tests can send anything) and flushes it to the socket;
    // false when not connected. Payloads larger than the socket buffer finish on later pumps.
    bool send(std::string_view xml);
    // A fresh stanza id unique within this client.
    std::string next_id();

    // First queued or newly received top-level stanza matching pred, removed from the queue.
    std::optional<Stanza> wait_for(const StanzaPredicate& pred,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // True when no matching stanza is queued or arrives within duration (always waits it out).
    bool expect_none(const StanzaPredicate& pred,
                     std::chrono::milliseconds duration = std::chrono::milliseconds(500));
    // Sends an IQ (an id is added when missing) and waits for the result/error with that id.
    std::optional<Stanza> iq_roundtrip(std::string_view xml,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Processes I/O for duration.
    void pump(std::chrono::milliseconds duration);

    std::deque<Stanza>& received() { return queue_; }  // everything not yet consumed
    void clear_received() { queue_.clear(); }
    // Parses an XML string into a Stanza (throws std::invalid_argument on malformed XML).
    Stanza parse(std::string_view xml) const;

private:
    enum class State { Idle, Connecting, Connected, Disconnected };

    static void on_conn_event(xmpp_conn_t* conn, xmpp_conn_event_t event, int error,
                              xmpp_stream_error_t* stream_error, void* userdata);
    static int on_stanza(xmpp_conn_t* conn, xmpp_stanza_t* stanza, void* userdata);
    void release_conn();
    void run_once(std::chrono::steady_clock::time_point deadline);

    ClientOptions options_;
    std::shared_ptr<StropheContext> ctx_;
    xmpp_conn_t* conn_ = nullptr;  // owned; released in release_conn()
    State state_ = State::Idle;
    bool handler_added_ = false;
    std::string failure_;
    std::optional<StreamError> stream_error_;
    std::string bound_jid_;
    std::deque<Stanza> queue_;
    std::uint64_t id_counter_ = 0;
};

// A bare socket for hostile-input tests: bytes in, bytes out, no XMPP logic unless asked.
// Optional TLS (no certificate verification) for inputs that must arrive after STARTTLS.
class RawConnection {
public:
    RawConnection();
    ~RawConnection();
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    bool connect(std::uint16_t port, std::string_view host = "127.0.0.1",
                 std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // TLS client handshake on the open socket (after <proceed/>, or at once for direct TLS).
    bool tls_handshake(std::string_view sni = "localhost",
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Writes all bytes (bounded by timeout); false once the peer is gone.
    bool send(std::string_view bytes, std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Reads until needle has arrived and returns everything up to and including it (consumed).
    // nullopt on timeout or close; the unconsumed bytes stay in pending().
    std::optional<std::string> read_until(
        std::string_view needle, std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // True once the peer closed or reset the connection within timeout (data read meanwhile is
    // kept in pending()).
    bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    bool closed() const { return closed_; }
    const std::string& pending() const { return pending_; }
    std::string take_pending();
    void close();
    int fd() const { return fd_; }
    bool tls() const { return tls_state_ != nullptr; }

    // XMPP conveniences built on the above.
    // Sends a client stream header and returns the text up to </stream:features>.
    std::optional<std::string> open_stream(
        std::string_view domain = "localhost",
        std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // <starttls/>, <proceed/>, TLS handshake, new stream header; returns the new features.
    std::optional<std::string> negotiate_starttls(
        std::string_view domain = "localhost",
        std::chrono::milliseconds timeout = std::chrono::seconds(5));

private:
    enum class Io { Data, Eof, Timeout };
    Io read_some(std::chrono::steady_clock::time_point deadline);

    struct TlsState;  // OpenSSL objects; defined in client.cpp so no OpenSSL header leaks
    int fd_ = -1;
    std::unique_ptr<TlsState> tls_state_;
    bool closed_ = false;
    std::string pending_;
};

}  // namespace haven::test
