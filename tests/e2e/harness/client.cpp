// TestClient over libstrophe 0.12 (one xmpp_ctx_t per client, test-pumped) and RawConnection.
#include "e2e/harness/client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "e2e/harness/server.hpp"

namespace haven::test {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

bool verbose() {
    static const bool v = [] {
        const char* e = std::getenv("HAVEN_TEST_VERBOSE");
        return e != nullptr && *e != '\0';
    }();
    return v;
}

void init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        xmpp_initialize();
        // libstrophe writes with plain send(); a server that hangs up must not kill the test.
        std::signal(SIGPIPE, SIG_IGN);
    });
}

std::string str_or_empty(const char* s) {
    return s != nullptr ? std::string(s) : std::string();
}

// Remaining time until deadline as whole milliseconds, clamped to [0, cap].
unsigned long slice_ms(Clock::time_point deadline, std::chrono::milliseconds cap) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<unsigned long>(std::clamp(left, 0ms, cap).count());
}

constexpr const char* ns_streams = "urn:ietf:params:xml:ns:xmpp-streams";

}  // namespace

// The context and the logger it points at live together so that stanzas handed to the test can
// outlive their TestClient without dangling.
struct StropheContext {
    xmpp_log_t log{};
    xmpp_ctx_t* ctx = nullptr;
    std::string label;
    std::string last_problem;        // last warning/error libstrophe logged
    std::deque<std::string> recent;  // last few log lines of any level, for failure reports

    StropheContext() {
        log.handler = &StropheContext::on_log;
        log.userdata = this;
        ctx = xmpp_ctx_new(nullptr, &log);
        if (ctx == nullptr) {
            throw std::runtime_error("xmpp_ctx_new failed");
        }
    }
    ~StropheContext() { xmpp_ctx_free(ctx); }
    StropheContext(const StropheContext&) = delete;
    StropheContext& operator=(const StropheContext&) = delete;

    static void on_log(void* userdata, xmpp_log_level_t level, const char* area, const char* msg) {
        auto* self = static_cast<StropheContext*>(userdata);
        std::string line = str_or_empty(area) + ": " + str_or_empty(msg);
        if (line.size() > 200) {
            line.resize(200);  // RECV/SENT lines carry whole stanzas
            line += "...";
        }
        if (level >= XMPP_LEVEL_WARN) {
            self->last_problem = line;
        }
        // Some failures (e.g. connection refused) are only ever logged at debug level.
        self->recent.push_back(std::move(line));
        if (self->recent.size() > 4) {
            self->recent.pop_front();
        }
        if (verbose()) {
            static const char* const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
            std::fprintf(stderr, "[%s] %s %s: %s\n", self->label.c_str(),
                         names[std::clamp(static_cast<int>(level), 0, 3)], area, msg);
        }
    }
};

// ---------------------------------------------------------------------------------------------
// Stanza

Stanza Stanza::adopt(std::shared_ptr<StropheContext> ctx, xmpp_stanza_t* owned) {
    // The deleter holds the context so xmpp_stanza_release never runs after xmpp_ctx_free.
    std::shared_ptr<xmpp_stanza_t> root(
        owned, [ctx = std::move(ctx)](xmpp_stanza_t* s) { xmpp_stanza_release(s); });
    return Stanza(root, owned);
}

std::string Stanza::name() const {
    return node_ != nullptr ? str_or_empty(xmpp_stanza_get_name(node_)) : std::string();
}

std::string Stanza::ns() const {
    return node_ != nullptr ? str_or_empty(xmpp_stanza_get_ns(node_)) : std::string();
}

std::string Stanza::attr(std::string_view key) const {
    if (node_ == nullptr) {
        return {};
    }
    return str_or_empty(xmpp_stanza_get_attribute(node_, std::string(key).c_str()));
}

bool Stanza::has_attr(std::string_view key) const {
    return node_ != nullptr &&
           xmpp_stanza_get_attribute(node_, std::string(key).c_str()) != nullptr;
}

std::optional<Stanza> Stanza::child(std::string_view name, std::string_view ns) const {
    if (node_ == nullptr) {
        return std::nullopt;
    }
    const std::string n(name);
    xmpp_stanza_t* c = ns.empty() ? xmpp_stanza_get_child_by_name(node_, n.c_str())
                                  : xmpp_stanza_get_child_by_name_and_ns(node_, n.c_str(),
                                                                         std::string(ns).c_str());
    if (c == nullptr) {
        return std::nullopt;
    }
    return Stanza(root_, c);
}

std::vector<Stanza> Stanza::children() const {
    std::vector<Stanza> out;
    if (node_ == nullptr) {
        return out;
    }
    for (xmpp_stanza_t* c = xmpp_stanza_get_children(node_); c != nullptr;
         c = xmpp_stanza_get_next(c)) {
        if (xmpp_stanza_is_tag(c)) {
            out.push_back(Stanza(root_, c));
        }
    }
    return out;
}

std::string Stanza::child_text(std::string_view name, std::string_view ns) const {
    const auto c = child(name, ns);
    return c ? c->text() : std::string();
}

std::string Stanza::text() const {
    if (node_ == nullptr) {
        return {};
    }
    char* t = xmpp_stanza_get_text(node_);
    if (t == nullptr) {
        return {};
    }
    std::string out(t);
    xmpp_free(xmpp_stanza_get_context(node_), t);
    return out;
}

std::string Stanza::to_xml() const {
    if (node_ == nullptr) {
        return {};
    }
    char* buf = nullptr;
    size_t len = 0;
    if (xmpp_stanza_to_text(node_, &buf, &len) != XMPP_EOK || buf == nullptr) {
        return {};
    }
    std::string out(buf, len);
    xmpp_free(xmpp_stanza_get_context(node_), buf);
    return out;
}

// ---------------------------------------------------------------------------------------------
// TestClient

TestClient::TestClient(ClientOptions options) : options_(std::move(options)) {
    init_once();
    ctx_ = std::make_shared<StropheContext>();
}

TestClient::TestClient(const TestServer& server, ClientOptions options)
    : TestClient([&] {
          if (options.port == 0) {
              options.port = options.direct_tls ? server.direct_tls_port() : server.c2s_port();
          }
          return std::move(options);
      }()) {}

TestClient::~TestClient() {
    if (conn_ != nullptr && state_ == State::Connected) {
        disconnect(1s);
    }
    release_conn();
}

void TestClient::release_conn() {
    if (conn_ != nullptr) {
        // Releasing a live connection fires on_conn_event, which only touches this object.
        xmpp_conn_release(conn_);
        conn_ = nullptr;
    }
    handler_added_ = false;
}

void TestClient::run_once(Clock::time_point deadline) {
    // Short slices keep deadlines accurate; xmpp_run_once returns early on socket activity.
    xmpp_run_once(ctx_->ctx, slice_ms(deadline, 20ms));
}

bool TestClient::connect(std::string_view jid, std::string_view password,
                         std::chrono::milliseconds timeout) {
    if (state_ == State::Connecting || state_ == State::Connected) {
        failure_ = "connect() called on a live connection";
        return false;
    }
    release_conn();
    failure_.clear();
    stream_error_.reset();
    bound_jid_.clear();
    ctx_->last_problem.clear();
    ctx_->recent.clear();

    std::string full(jid);
    if (!options_.resource.empty() && full.find('/') == std::string::npos) {
        full += "/" + options_.resource;
    }
    ctx_->label = options_.label.empty() ? full : options_.label;

    conn_ = xmpp_conn_new(ctx_->ctx);
    if (conn_ == nullptr) {
        failure_ = "xmpp_conn_new failed";
        return false;
    }
    long flags = 0;
    if (options_.disable_tls) {
        // libstrophe rejects DISABLE_TLS combined with any other TLS flag.
        flags |= XMPP_CONN_FLAG_DISABLE_TLS;
    } else {
        if (options_.mandatory_tls) {
            flags |= XMPP_CONN_FLAG_MANDATORY_TLS;
        }
        if (options_.direct_tls) {
            flags |= XMPP_CONN_FLAG_LEGACY_SSL;
        }
        if (options_.trust_tls) {
            flags |= XMPP_CONN_FLAG_TRUST_TLS;
        }
    }
    if (!options_.stream_management) {
        flags |= XMPP_CONN_FLAG_DISABLE_SM;
    }
    if (xmpp_conn_set_flags(conn_, flags) != XMPP_EOK) {
        failure_ = "xmpp_conn_set_flags rejected the option combination";
        return false;
    }
    if (!options_.ca_file.empty()) {
        xmpp_conn_set_cafile(conn_, options_.ca_file.c_str());
    }
    xmpp_conn_set_jid(conn_, full.c_str());
    xmpp_conn_set_pass(conn_, std::string(password).c_str());

    state_ = State::Connecting;
    if (xmpp_connect_client(conn_, options_.host.c_str(), options_.port, &TestClient::on_conn_event,
                            this) != XMPP_EOK) {
        state_ = State::Disconnected;
        failure_ = "xmpp_connect_client failed for " + options_.host + ":" +
                   std::to_string(options_.port) + " (" + ctx_->last_problem + ")";
        return false;
    }
    const auto deadline = Clock::now() + timeout;
    while (state_ == State::Connecting && Clock::now() < deadline) {
        run_once(deadline);
    }
    if (state_ == State::Connecting) {
        const std::string problem = ctx_->last_problem;
        disconnect(1s);
        failure_ = "timed out after " + std::to_string(timeout.count()) + " ms" +
                   (problem.empty() ? "" : " (last libstrophe problem: " + problem + ")");
        return false;
    }
    return state_ == State::Connected;
}

void TestClient::on_conn_event(xmpp_conn_t* conn, xmpp_conn_event_t event, int error,
                               xmpp_stream_error_t* stream_error, void* userdata) {
    auto* self = static_cast<TestClient*>(userdata);
    if (event == XMPP_CONN_CONNECT) {
        self->state_ = State::Connected;
        self->bound_jid_ = str_or_empty(xmpp_conn_get_bound_jid(conn));
        // Added only now, after bind, so negotiation replies never land in the queue.
        if (!self->handler_added_) {
            xmpp_handler_add(conn, &TestClient::on_stanza, nullptr, nullptr, nullptr, self);
            self->handler_added_ = true;
        }
        return;
    }
    if (event == XMPP_CONN_RAW_CONNECT) {
        return;  // only for xmpp_connect_raw, which the harness does not use
    }
    const bool during_connect = self->state_ == State::Connecting;
    self->state_ = State::Disconnected;
    std::string reason;
    if (stream_error != nullptr) {
        StreamError se;
        se.text = str_or_empty(stream_error->text);
        if (stream_error->stanza != nullptr) {
            for (xmpp_stanza_t* c = xmpp_stanza_get_children(stream_error->stanza); c != nullptr;
                 c = xmpp_stanza_get_next(c)) {
                const char* name = xmpp_stanza_get_name(c);
                const char* ns = xmpp_stanza_get_ns(c);
                if (xmpp_stanza_is_tag(c) && name != nullptr && std::strcmp(name, "text") != 0 &&
                    (ns == nullptr || std::strcmp(ns, ns_streams) == 0)) {
                    se.condition = name;
                    break;
                }
            }
        }
        reason = "stream error <" + se.condition + "/>" + (se.text.empty() ? "" : " " + se.text);
        self->stream_error_ = std::move(se);
    } else if (error != 0 && self->conn_ != nullptr && xmpp_conn_is_secured(self->conn_)) {
        // Under TLS libstrophe reports OpenSSL's SSL_get_error() code, not an errno.
        reason = "connection lost (TLS error code " + std::to_string(error) + ")";
    } else if (error != 0) {
        reason = std::string("socket error: ") + std::strerror(error);
    } else {
        reason = during_connect ? "connection closed during negotiation" : "disconnected";
    }
    if (!self->ctx_->last_problem.empty()) {
        reason += " (libstrophe: " + self->ctx_->last_problem + ")";
    } else if (during_connect) {
        reason += " (libstrophe log:";
        for (const auto& line : self->ctx_->recent) {
            reason += " [" + line + "]";
        }
        reason += ")";
    }
    if (during_connect || self->failure_.empty()) {
        self->failure_ = reason;
    }
}

int TestClient::on_stanza(xmpp_conn_t*, xmpp_stanza_t* stanza, void* userdata) {
    auto* self = static_cast<TestClient*>(userdata);
    // The handler is added from inside libstrophe's bind (or session) reply handler, and
    // libstrophe then offers that same reply to it; its internal ids all start "_xmpp_".
    const char* id = xmpp_stanza_get_id(stanza);
    const char* name = xmpp_stanza_get_name(stanza);
    if (id != nullptr && name != nullptr && std::strcmp(name, "iq") == 0 &&
        std::strncmp(id, "_xmpp_", 6) == 0) {
        return 1;
    }
    // xmpp_stanza_clone takes a reference; libstrophe frees its own after the handlers ran.
    self->queue_.push_back(Stanza::adopt(self->ctx_, xmpp_stanza_clone(stanza)));
    return 1;  // keep the handler
}

bool TestClient::connected() const {
    return state_ == State::Connected;
}

bool TestClient::secured() const {
    return conn_ != nullptr && xmpp_conn_is_secured(conn_) != 0;
}

void TestClient::disconnect(std::chrono::milliseconds timeout) {
    if (conn_ == nullptr) {
        return;
    }
    if (state_ == State::Connected || state_ == State::Connecting) {
        xmpp_disconnect(conn_);
    }
    const auto deadline = Clock::now() + timeout;
    while ((state_ == State::Connected || state_ == State::Connecting) && Clock::now() < deadline) {
        run_once(deadline);
    }
}

bool TestClient::wait_disconnected(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (state_ == State::Connected && Clock::now() < deadline) {
        run_once(deadline);
    }
    return state_ != State::Connected;
}

bool TestClient::send(std::string_view xml) {
    if (state_ != State::Connected) {
        return false;
    }
    xmpp_send_raw(conn_, xml.data(), xml.size());
    // Nothing else pumps this client while the test waits on another one, so write now.
    const auto deadline = Clock::now() + 5s;
    int passes = 0;
    while (state_ == State::Connected && Clock::now() < deadline &&
           (xmpp_conn_send_queue_len(conn_) > 0 || passes < 2)) {
        xmpp_run_once(ctx_->ctx, passes < 2 ? 0 : 1);
        ++passes;
    }
    return state_ == State::Connected;
}

std::string TestClient::next_id() {
    // Appending instead of "t" + to_string(...) dodges GCC 12's false -Wrestrict (PR 105329).
    std::string id = "t";
    id += std::to_string(++id_counter_);
    return id;
}

void TestClient::pump(std::chrono::milliseconds duration) {
    const auto deadline = Clock::now() + duration;
    while (Clock::now() < deadline) {
        if (conn_ == nullptr || state_ == State::Idle) {
            return;
        }
        run_once(deadline);
    }
}

std::optional<Stanza> TestClient::wait_for(const StanzaPredicate& pred,
                                           std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
        const auto it = std::find_if(queue_.begin(), queue_.end(), pred);
        if (it != queue_.end()) {
            Stanza s = *it;
            queue_.erase(it);
            return s;
        }
        // Once the stream is gone nothing more can arrive.
        if (state_ != State::Connected || Clock::now() >= deadline) {
            return std::nullopt;
        }
        run_once(deadline);
    }
}

bool TestClient::expect_none(const StanzaPredicate& pred, std::chrono::milliseconds duration) {
    pump(duration);
    return std::none_of(queue_.begin(), queue_.end(), pred);
}

Stanza TestClient::parse(std::string_view xml) const {
    xmpp_stanza_t* s = xmpp_stanza_new_from_string(ctx_->ctx, std::string(xml).c_str());
    if (s == nullptr) {
        throw std::invalid_argument("TestClient::parse: malformed XML: " + std::string(xml));
    }
    return Stanza::adopt(ctx_, s);
}

std::optional<Stanza> TestClient::iq_roundtrip(std::string_view xml,
                                               std::chrono::milliseconds timeout) {
    Stanza iq = parse(xml);
    std::string id = iq.id();
    if (id.empty()) {
        id = next_id();
        xmpp_stanza_set_id(iq.raw(), id.c_str());
    }
    // The server may answer and close the stream at once (e.g. account removal): the answer is
    // then already queued even though send() reports the close, so look for it regardless.
    send(iq.to_xml());
    return wait_for(
        [&id](const Stanza& s) {
            return s.name() == "iq" && s.id() == id &&
                   (s.type() == "result" || s.type() == "error");
        },
        timeout);
}

// ---------------------------------------------------------------------------------------------
// RawConnection

struct RawConnection::TlsState {
    struct CtxFree {
        void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
    };
    struct SslFree {
        void operator()(SSL* s) const { SSL_free(s); }
    };
    std::unique_ptr<SSL_CTX, CtxFree> ctx;
    std::unique_ptr<SSL, SslFree> ssl;
};

RawConnection::RawConnection() {
    init_once();
}

RawConnection::~RawConnection() {
    close();
}

void RawConnection::close() {
    tls_state_.reset();
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

std::string RawConnection::take_pending() {
    return std::exchange(pending_, {});
}

bool RawConnection::connect(std::uint16_t port, std::string_view host,
                            std::chrono::milliseconds timeout) {
    close();
    closed_ = false;
    pending_.clear();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port_str = std::to_string(port);
    if (::getaddrinfo(std::string(host).c_str(), port_str.c_str(), &hints, &res) != 0 ||
        res == nullptr) {
        return false;
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
    fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) {
        return false;
    }
    if (::connect(fd_, res->ai_addr, res->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            close();
            return false;
        }
        pollfd p{fd_, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            close();
            return false;
        }
    }
    return true;
}

bool RawConnection::tls_handshake(std::string_view sni, std::chrono::milliseconds timeout) {
    if (fd_ < 0 || tls_state_) {
        return false;
    }
    auto state = std::make_unique<TlsState>();
    state->ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (!state->ctx) {
        return false;
    }
    // Hostile-input tests care about the server's parser, not its certificate.
    SSL_CTX_set_verify(state->ctx.get(), SSL_VERIFY_NONE, nullptr);
    state->ssl.reset(SSL_new(state->ctx.get()));
    if (!state->ssl || SSL_set_fd(state->ssl.get(), fd_) != 1) {
        return false;
    }
    SSL_set_tlsext_host_name(state->ssl.get(), std::string(sni).c_str());
    SSL_set_mode(state->ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE);
    const auto deadline = Clock::now() + timeout;
    while (true) {
        ERR_clear_error();
        const int r = SSL_connect(state->ssl.get());
        if (r == 1) {
            break;
        }
        const int e = SSL_get_error(state->ssl.get(), r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            return false;
        }
        pollfd p{fd_, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
        if (::poll(&p, 1, static_cast<int>(slice_ms(deadline, 1h))) != 1) {
            return false;
        }
    }
    tls_state_ = std::move(state);
    return true;
}

bool RawConnection::send(std::string_view bytes, std::chrono::milliseconds timeout) {
    if (fd_ < 0 || closed_) {
        return false;
    }
    const auto deadline = Clock::now() + timeout;
    std::size_t off = 0;
    while (off < bytes.size()) {
        short wait_for = POLLOUT;
        if (tls_state_) {
            ERR_clear_error();
            const int n =
                SSL_write(tls_state_->ssl.get(), bytes.data() + off,
                          static_cast<int>(std::min<std::size_t>(bytes.size() - off, 1 << 20)));
            if (n > 0) {
                off += static_cast<std::size_t>(n);
                continue;
            }
            const int e = SSL_get_error(tls_state_->ssl.get(), n);
            if (e == SSL_ERROR_WANT_READ) {
                wait_for = POLLIN;
            } else if (e != SSL_ERROR_WANT_WRITE) {
                closed_ = true;
                return false;
            }
        } else {
            const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                closed_ = true;
                return false;
            }
        }
        pollfd p{fd_, wait_for, 0};
        if (::poll(&p, 1, static_cast<int>(slice_ms(deadline, 1h))) != 1) {
            return false;
        }
    }
    return true;
}

RawConnection::Io RawConnection::read_some(Clock::time_point deadline) {
    char buf[16384];
    while (true) {
        short wait_for = POLLIN;
        if (tls_state_) {
            ERR_clear_error();
            const int n = SSL_read(tls_state_->ssl.get(), buf, sizeof buf);
            if (n > 0) {
                pending_.append(buf, static_cast<std::size_t>(n));
                return Io::Data;
            }
            const int e = SSL_get_error(tls_state_->ssl.get(), n);
            if (e == SSL_ERROR_WANT_WRITE) {
                wait_for = POLLOUT;
            } else if (e != SSL_ERROR_WANT_READ) {
                closed_ = true;  // close_notify, EOF or reset
                return Io::Eof;
            }
        } else {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                pending_.append(buf, static_cast<std::size_t>(n));
                return Io::Data;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                closed_ = true;
                return Io::Eof;
            }
        }
        pollfd p{fd_, wait_for, 0};
        const int r = ::poll(&p, 1, static_cast<int>(slice_ms(deadline, 1h)));
        if (r == 0) {
            return Io::Timeout;
        }
        if (r < 0 && errno != EINTR) {
            closed_ = true;
            return Io::Eof;
        }
    }
}

std::optional<std::string> RawConnection::read_until(std::string_view needle,
                                                     std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::size_t searched = 0;
    while (true) {
        const auto pos = pending_.find(needle, searched);
        if (pos != std::string::npos) {
            std::string out = pending_.substr(0, pos + needle.size());
            pending_.erase(0, pos + needle.size());
            return out;
        }
        // Only rescan the tail that could still complete a match.
        searched = pending_.size() >= needle.size() ? pending_.size() - needle.size() + 1 : 0;
        if (fd_ < 0 || closed_ || read_some(deadline) != Io::Data) {
            return std::nullopt;
        }
    }
}

bool RawConnection::wait_closed(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (fd_ >= 0 && !closed_) {
        if (read_some(deadline) == Io::Timeout) {
            return false;
        }
    }
    return true;
}

std::optional<std::string> RawConnection::open_stream(std::string_view domain,
                                                      std::chrono::milliseconds timeout) {
    const std::string header =
        "<?xml version='1.0'?><stream:stream to='" + std::string(domain) +
        "' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
    if (!send(header, timeout)) {
        return std::nullopt;
    }
    return read_until("</stream:features>", timeout);
}

std::optional<std::string> RawConnection::negotiate_starttls(std::string_view domain,
                                                             std::chrono::milliseconds timeout) {
    if (!send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", timeout)) {
        return std::nullopt;
    }
    const auto reply = read_until("<proceed", timeout);
    if (!reply || !read_until(">", timeout)) {
        return std::nullopt;
    }
    // RFC 6120 §5.4.3.3: the server sends nothing more in the clear after <proceed/>.
    pending_.clear();
    if (!tls_handshake(domain, timeout)) {
        return std::nullopt;
    }
    return open_stream(domain, timeout);
}

}  // namespace haven::test
