// Transport: one TCP connection with optional TLS, driven reactor-style on the event loop.
// OpenSSL reads and writes the socket directly (SSL_set_fd) and the loop only waits for
// readiness, so an idle connection holds no read or record buffers at all.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "server/net/tls.hpp"

namespace haven::net {

class TransportHandler {
public:
    virtual ~TransportHandler() = default;
    virtual void on_transport_data(std::string_view data) = 0;
    // The connection is gone (EOF, error or after close()); called once.
    virtual void on_transport_closed(std::string_view reason) = 0;
    virtual void on_tls_established() = 0;
    // The send queue would exceed its bound: the handler closes the stream. The data that
    // overflowed is dropped; from then on send() takes the handler's closing bytes unbounded.
    virtual void on_send_overflow() = 0;
};

class Transport {
public:
    using tcp = boost::asio::ip::tcp;

    Transport(tcp::socket socket, TransportHandler& handler, std::span<char> scratch,
              std::size_t max_queue_bytes);
    ~Transport();

    // The owner's lifetime anchor: async waits hold it so the owner outlives them.
    void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

    void start_reading();
    void pause_reading() { paused_ = true; }
    void resume_reading();

    // Queues bytes; they go out at the end of the current loop turn, so several stanzas
    // to one client leave in one write (one TLS record).
    void send(std::string_view data);
    // Flushes pending plaintext, then runs the TLS server handshake on this socket.
    void start_tls(SSL_CTX* ctx);
    // Flushes what is queued (bounded by a short deadline in the owner), then closes.
    void close_after_flush();
    // Closes at once.
    void close_now(std::string_view reason);

    bool is_tls() const { return ssl_ != nullptr && tls_ready_; }
    bool closed() const { return closed_; }
    SSL* ssl() const { return ssl_.get(); }
    std::size_t queued_bytes() const { return out_.size() - out_offset_; }
    std::string remote_address() const;

private:
    enum class Io { Done, WantRead, WantWrite, Eof, Error };
    Io read_once(std::size_t& n);
    Io write_once(std::size_t& n);
    void do_read();
    void do_flush();
    void do_handshake();
    void schedule_flush();
    void compact();
    void wait(bool for_write, void (Transport::*next)());
    void finish_close();
    void linger_read();

    tcp::socket socket_;
    TransportHandler& handler_;
    std::span<char> scratch_;
    std::size_t max_queue_bytes_;
    std::weak_ptr<void> owner_;
    SslPtr ssl_;
    std::string out_;
    std::size_t out_offset_ = 0;
    bool tls_ready_ = false;
    bool handshaking_ = false;
    bool pending_tls_ = false;
    SSL_CTX* pending_tls_ctx_ = nullptr;
    bool reading_ = false;       // a read wait is outstanding
    bool paused_ = false;
    bool flush_scheduled_ = false;
    bool write_waiting_ = false;
    bool closing_ = false;
    bool closed_ = false;
    bool overflowed_ = false;
    std::size_t discarded_ = 0;  // input thrown away while lingering after our close
    static constexpr std::size_t max_linger_bytes = 1024 * 1024;
    std::string last_error_;
};

}  // namespace haven::net
