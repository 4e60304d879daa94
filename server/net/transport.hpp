// Transport: one TCP connection with optional TLS, driven reactor-style on the event loop.
// OpenSSL runs the TLS handshake on the socket directly (SSL_set_fd) and the loop only waits for
// readiness. A finished TLS 1.3 handshake is then usually handed to TlsRecords and the SSL freed
// (see tls_records.hpp); otherwise OpenSSL keeps reading and writing the socket. Reads go into
// one buffer shared by all connections, so an idle connection holds no read buffer.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "server/net/tls.hpp"
#include "server/net/tls_records.hpp"
#include "server/net/write_batcher.hpp"

namespace haven::net {

// What every connection on one event loop shares: the read buffer (reads are handled
// synchronously, so one is enough) and the loop's write batching.
struct LoopShared {
    std::span<char> read_buffer;
    WriteBatcher& writes;
};

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

class Transport final : public Flushable {
public:
    using tcp = boost::asio::ip::tcp;

    Transport(tcp::socket socket, TransportHandler& handler, LoopShared shared,
              std::size_t max_queue_bytes);
    ~Transport();

    // The owner's lifetime anchor: async waits hold it so the owner outlives them.
    void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

    void start_reading();
    void pause_reading() { paused_ = true; }
    void resume_reading();

    // Queues bytes; they go out with the loop's next write batch (see WriteBatcher), so
    // several stanzas to one client leave in one write (one TLS record).
    // After an overflow nothing more is queued, except by send_closing(): the stream's last
    // bytes (its error and </stream:stream>), which may go past the bound.
    void send(std::string_view data);
    void send_closing(std::string_view data);
    // Called by the WriteBatcher.
    void run_scheduled_flush() override;
    // Flushes pending plaintext, then runs the TLS server handshake on this socket. With
    // `take_over`, a TLS 1.3 connection moves to TlsRecords once the handshake is done (the
    // context must have been set up with enable_record_takeover()).
    void start_tls(SSL_CTX* ctx, bool take_over);
    // Flushes what is queued (bounded by a short deadline in the owner), then closes.
    void close_after_flush();
    // Closes at once.
    void close_now(std::string_view reason);

    bool is_tls() const { return tls_ready_; }
    // True once TlsRecords protects the records instead of OpenSSL.
    bool records_taken_over() const { return records_ != nullptr; }
    bool closed() const { return closed_; }
    // Channel-binding data of the TLS connection (nullopt before TLS or if unavailable).
    std::optional<ChannelBindingData> channel_binding() const;
    std::size_t queued_bytes() const { return out_.size() - out_offset_ + staged_.size(); }
    // Releases what an idle connection can rebuild later: spare buffer capacity and the TLS
    // cipher contexts.
    void release_idle();
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
    void take_over_tls();
    bool open_records(std::size_t n);
    void write_now_best_effort();

    tcp::socket socket_;
    TransportHandler& handler_;
    std::span<char> scratch_;
    WriteBatcher& batcher_;
    std::size_t max_queue_bytes_;
    std::weak_ptr<void> owner_;
    SslPtr ssl_;
    std::unique_ptr<TrafficSecrets> secrets_;  // during a handshake that may be taken over
    std::unique_ptr<TlsRecords> records_;      // after the takeover
    std::string staged_;  // with records_: plaintext not yet sealed (sealed once per flush)
    std::string out_;     // bytes for the socket (or for SSL_write while OpenSSL has the stream)
    std::size_t out_offset_ = 0;
    bool tls_ready_ = false;
    bool handshaking_ = false;
    bool pending_tls_ = false;
    bool take_over_ = false;
    SSL_CTX* pending_tls_ctx_ = nullptr;
    bool reading_ = false;       // a read wait is outstanding
    bool paused_ = false;
    bool flush_scheduled_ = false;
    bool write_waiting_ = false;
    bool closing_ = false;
    bool closed_ = false;
    bool overflowed_ = false;
    std::size_t discarded_ = 0;  // input thrown away while lingering after our close
    // A client in the middle of a large write must get to read our stream error: discarding
    // is cheap (raw bytes, never decrypted) and the owner's close deadline bounds it in time.
    static constexpr std::size_t max_linger_bytes = 8 * 1024 * 1024;
    std::string last_error_;
};

}  // namespace haven::net
