// Transport: reactor-style TCP/TLS I/O on the event loop.
#include "server/net/transport.hpp"

#include <boost/asio/post.hpp>
#include <openssl/err.h>

namespace haven::net {

namespace asio = boost::asio;

Transport::Transport(tcp::socket socket, TransportHandler& handler, LoopShared shared,
                     std::size_t max_queue_bytes)
    : socket_(std::move(socket)),
      handler_(handler),
      scratch_(shared.read_buffer),
      batcher_(shared.writes),
      max_queue_bytes_(max_queue_bytes) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(tcp::no_delay(true), ec);
}

Transport::~Transport() {
    boost::system::error_code ec;
    socket_.close(ec);
}

std::string Transport::remote_address() const {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string();
}

void Transport::wait(bool for_write, void (Transport::*next)()) {
    auto owner = owner_.lock();
    if (!owner || closed_) {
        return;
    }
    socket_.async_wait(for_write ? tcp::socket::wait_write : tcp::socket::wait_read,
                       [this, owner, next](const boost::system::error_code& ec) {
                           if (closed_) {
                               return;
                           }
                           if (ec) {
                               close_now(ec.message());
                               return;
                           }
                           (this->*next)();
                       });
}

Transport::Io Transport::read_once(std::size_t& n) {
    n = 0;
    if (ssl_) {
        ERR_clear_error();
        int r = SSL_read_ex(ssl_.get(), scratch_.data(), scratch_.size(), &n);
        if (r == 1) {
            return Io::Done;
        }
        switch (SSL_get_error(ssl_.get(), r)) {
            case SSL_ERROR_WANT_READ: return Io::WantRead;
            case SSL_ERROR_WANT_WRITE: return Io::WantWrite;
            case SSL_ERROR_ZERO_RETURN: return Io::Eof;
            case SSL_ERROR_SYSCALL:
                last_error_ = "connection reset";
                return ERR_peek_error() == 0 ? Io::Eof : Io::Error;
            default: last_error_ = last_ssl_error(); return Io::Error;
        }
    }
    boost::system::error_code ec;
    n = socket_.read_some(asio::buffer(scratch_.data(), scratch_.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        return Io::WantRead;
    }
    if (ec == asio::error::eof) {
        return Io::Eof;
    }
    if (ec) {
        last_error_ = ec.message();
        return Io::Error;
    }
    return Io::Done;
}

Transport::Io Transport::write_once(std::size_t& n) {
    n = 0;
    const char* data = out_.data() + out_offset_;
    std::size_t len = out_.size() - out_offset_;
    if (ssl_) {
        ERR_clear_error();
        int r = SSL_write_ex(ssl_.get(), data, len, &n);
        if (r == 1) {
            return Io::Done;
        }
        switch (SSL_get_error(ssl_.get(), r)) {
            case SSL_ERROR_WANT_READ: return Io::WantRead;
            case SSL_ERROR_WANT_WRITE: return Io::WantWrite;
            default: last_error_ = last_ssl_error(); return Io::Error;
        }
    }
    boost::system::error_code ec;
    n = socket_.write_some(asio::buffer(data, len), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        return Io::WantWrite;
    }
    if (ec) {
        last_error_ = ec.message();
        return Io::Error;
    }
    return Io::Done;
}

void Transport::start_reading() {
    paused_ = false;
    do_read();
}

void Transport::resume_reading() {
    if (!paused_) {
        return;
    }
    paused_ = false;
    if (!reading_) {
        auto owner = owner_.lock();
        asio::post(socket_.get_executor(), [this, owner] {
            if (!closed_ && !reading_) {
                do_read();
            }
        });
    }
}

void Transport::do_read() {
    reading_ = false;
    if (closing_) {
        return;  // input after our closing tag is discarded by linger_read()
    }
    // A bounded number of reads per turn keeps one busy client from starving the others.
    for (int i = 0; i < 8; ++i) {
        if (closed_ || closing_ || paused_ || handshaking_ || pending_tls_) {
            return;
        }
        std::size_t n = 0;
        switch (read_once(n)) {
            case Io::Done:
                if (records_) {
                    if (!open_records(n)) {
                        return;
                    }
                } else {
                    handler_.on_transport_data(std::string_view(scratch_.data(), n));
                }
                if (!ssl_ && n < scratch_.size() && !closed_ && !closing_ && !paused_ &&
                    !handshaking_ && !pending_tls_) {
                    // A short read drained the socket, so the read that would only say EAGAIN
                    // is skipped: data arriving from now on raises a new edge, and this loop is
                    // single-threaded, so the wait below is registered before the reactor
                    // looks at the socket again. (Not with OpenSSL, which reads per record.)
                    reading_ = true;
                    wait(false, &Transport::do_read);
                    return;
                }
                continue;
            case Io::WantRead:
                reading_ = true;
                wait(false, &Transport::do_read);
                return;
            case Io::WantWrite:
                reading_ = true;
                wait(true, &Transport::do_read);
                return;
            case Io::Eof: close_now("peer closed the connection"); return;
            case Io::Error: close_now(last_error_); return;
        }
    }
    reading_ = true;
    auto owner = owner_.lock();
    asio::post(socket_.get_executor(), [this, owner] {
        if (!closed_) {
            do_read();
        }
    });
}

void Transport::send(std::string_view data) {
    if (closed_ || closing_) {
        return;
    }
    // Only bytes the socket refused count against the bound (write_waiting_): those that just
    // wait for the write batch are no sign of a slow reader. The hard cap bounds what a burst
    // can queue before the batch finds out.
    if (overflowed_) {
        return;  // the stream is about to end (on_send_overflow); nothing more for it
    }
    const std::size_t after = queued_bytes() + data.size();
    if (write_waiting_ ? after > max_queue_bytes_ : after > 4 * max_queue_bytes_) {
        // Once: the handler closes the stream (on a later turn), with send_closing().
        overflowed_ = true;
        handler_.on_send_overflow();
        return;
    }
    (records_ ? staged_ : out_).append(data);
    schedule_flush();
}

void Transport::send_closing(std::string_view data) {
    if (closed_ || closing_) {
        return;
    }
    (records_ ? staged_ : out_).append(data);
    schedule_flush();
}

void Transport::schedule_flush() {
    if (flush_scheduled_ || write_waiting_ || handshaking_) {
        return;
    }
    auto owner = owner_.lock();
    if (!owner) {
        return;  // the connection is being torn down: nothing will be written any more
    }
    flush_scheduled_ = true;
    batcher_.schedule(*this, std::move(owner));
}

void Transport::run_scheduled_flush() {
    flush_scheduled_ = false;
    // A write wait armed since the batch was scheduled flushes everything when the socket
    // drains; flushing here too would only arm a second wait on the same socket.
    if (!closed_ && !write_waiting_) {
        do_flush();
    }
}

void Transport::do_flush() {
    write_waiting_ = false;
    if (handshaking_) {
        // Queued plaintext waits for the handshake (do_handshake flushes after it): written
        // now through OpenSSL, it would also use up sequence numbers behind TlsRecords' back.
        return;
    }
    if (records_ && !staged_.empty()) {
        // Everything queued this turn goes out as one record (or as few as its size needs).
        if (!records_->seal(staged_, out_)) {
            close_now(records_->failure());
            return;
        }
        staged_.clear();
        if (staged_.capacity() > 64 * 1024) {
            std::string().swap(staged_);
        }
    }
    while (out_offset_ < out_.size()) {
        std::size_t n = 0;
        switch (write_once(n)) {
            case Io::Done:
                out_offset_ += n;
                continue;
            case Io::WantWrite:
                compact();
                write_waiting_ = true;
                wait(true, &Transport::do_flush);
                return;
            case Io::WantRead:
                compact();
                write_waiting_ = true;
                wait(false, &Transport::do_flush);
                return;
            case Io::Eof:
            case Io::Error: close_now(last_error_); return;
        }
    }
    out_.clear();
    out_offset_ = 0;
    if (out_.capacity() > 64 * 1024) {
        out_.shrink_to_fit();  // don't pin a burst's buffer on an idle connection
    }
    if (pending_tls_) {
        pending_tls_ = false;
        ssl_.reset(SSL_new(pending_tls_ctx_));
        if (!ssl_ || SSL_set_fd(ssl_.get(), socket_.native_handle()) != 1) {
            close_now("cannot start TLS: " + last_ssl_error());
            return;
        }
        if (take_over_) {
            secrets_ = std::make_unique<TrafficSecrets>();
            attach_secrets(ssl_.get(), secrets_.get());
        }
        SSL_set_accept_state(ssl_.get());
        handshaking_ = true;
        do_handshake();
        return;
    }
    if (closing_) {
        finish_close();
    }
}

void Transport::compact() {
    // A reader that keeps up only partly never lets the buffer drain completely; without this
    // the bytes already written would pile up in front of the queue without bound. The unsent
    // tail keeps its content, which is all a retried SSL_write needs (ACCEPT_MOVING_WRITE_BUFFER).
    if (out_offset_ > 0 && out_offset_ >= out_.size() / 2) {
        out_.erase(0, out_offset_);
        out_offset_ = 0;
    }
}

void Transport::start_tls(SSL_CTX* ctx, bool take_over) {
    pending_tls_ = true;
    pending_tls_ctx_ = ctx;
    take_over_ = take_over;
    if (!write_waiting_) {
        // Flush synchronously-ordered: whatever is queued (e.g. <proceed/>) goes first.
        auto owner = owner_.lock();
        asio::post(socket_.get_executor(), [this, owner] {
            if (!closed_ && !write_waiting_) {
                do_flush();
            }
        });
    }
}

void Transport::do_handshake() {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_.get());
    if (r == 1) {
        handshaking_ = false;
        tls_ready_ = true;
        if (secrets_) {
            take_over_tls();
        }
        handler_.on_tls_established();
        if (!closed_) {
            if (queued_bytes() > 0) {
                schedule_flush();
            }
            if (!paused_) {
                do_read();
            }
        }
        return;
    }
    switch (SSL_get_error(ssl_.get(), r)) {
        case SSL_ERROR_WANT_READ: wait(false, &Transport::do_handshake); return;
        case SSL_ERROR_WANT_WRITE: wait(true, &Transport::do_handshake); return;
        default: close_now("TLS handshake failed: " + last_ssl_error()); return;
    }
}

void Transport::close_after_flush() {
    if (closed_ || closing_) {
        return;
    }
    closing_ = true;
    if (handshaking_ || pending_tls_) {
        // Nothing queued now can reach the peer before a TLS handshake it has not finished
        // (e.g. the login deadline hit a client that never sent a ClientHello): waiting for it
        // would keep the connection forever.
        close_now("closed during the TLS handshake");
        return;
    }
    if (records_) {
        // Our close_notify goes out behind everything queued, through the normal write loop.
        if (!(staged_.empty() || records_->seal(staged_, out_)) ||
            !records_->seal_close_notify(out_)) {
            close_now(records_->failure());
            return;
        }
        staged_.clear();
    }
    if (queued_bytes() == 0 && !write_waiting_) {
        finish_close();
    } else if (!write_waiting_) {
        auto owner = owner_.lock();
        asio::post(socket_.get_executor(), [this, owner] {
            if (!closed_ && !write_waiting_) {
                do_flush();
            }
        });
    }
}

void Transport::finish_close() {
    if (ssl_ && tls_ready_) {
        ERR_clear_error();
        SSL_shutdown(ssl_.get());  // best effort close_notify; we don't wait for the peer's
    }
    // Lingering close: end our direction, then read and discard until the peer closes too.
    // Closing with unread input makes the kernel answer with a reset, which can destroy the
    // stream error still waiting in the peer's receive buffer (a client in the middle of sending
    // an oversized stanza would never learn why it was cut off). Bounded here by bytes and by
    // the owner's close deadline in time.
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
        close_now("closed");
        return;
    }
    linger_read();
}

void Transport::linger_read() {
    while (!closed_) {
        boost::system::error_code ec;
        const std::size_t n = socket_.read_some(asio::buffer(scratch_.data(), scratch_.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            wait(false, &Transport::linger_read);
            return;
        }
        discarded_ += n;
        if (ec || discarded_ > max_linger_bytes) {
            close_now("closed");
            return;
        }
    }
}

void Transport::close_now(std::string_view reason) {
    if (closed_) {
        return;
    }
    closed_ = true;
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    handler_.on_transport_closed(reason);
}

void Transport::take_over_tls() {
    auto secrets = std::move(secrets_);
    attach_secrets(ssl_.get(), nullptr);
    records_ = TlsRecords::take_over(ssl_.get(), *secrets);
    if (!records_) {
        return;  // OpenSSL keeps the connection (e.g. a TLS 1.2 client)
    }
    // The handshake left nothing behind in OpenSSL (take_over() checked), so the SSL can go
    // without a shutdown; plaintext queued meanwhile will be sealed by us.
    ssl_.reset();
    staged_.append(out_, out_offset_);
    out_.clear();
    out_offset_ = 0;
}

bool Transport::open_records(std::size_t n) {
    const auto status = records_->open(scratch_.first(n), out_, [this](std::string_view plain) {
        if (closed_ || closing_) {
            return false;
        }
        handler_.on_transport_data(plain);
        return !closed_ && !closing_;
    });
    if (closed_) {
        return false;
    }
    switch (status) {
        case TlsRecords::Status::Ok:
            return !closing_;
        case TlsRecords::Status::PeerClosed:
            close_now("peer closed the connection");
            return false;
        case TlsRecords::Status::Failed:
            write_now_best_effort();  // the fatal alert, if we raised one
            close_now(records_->failure());
            return false;
    }
    return false;
}

void Transport::write_now_best_effort() {
    if (closed_ || out_offset_ >= out_.size()) {
        return;
    }
    boost::system::error_code ec;
    out_offset_ += socket_.write_some(
        asio::buffer(out_.data() + out_offset_, out_.size() - out_offset_), ec);
}

std::optional<ChannelBindingData> Transport::channel_binding() const {
    if (records_) {
        return ChannelBindingData{"tls-exporter", records_->exporter_channel_binding()};
    }
    if (ssl_ && tls_ready_) {
        return net::channel_binding(ssl_.get());
    }
    return std::nullopt;
}

void Transport::release_idle() {
    if (records_) {
        records_->release_idle();
    }
    if (staged_.empty()) {
        std::string().swap(staged_);
    }
    if (out_offset_ >= out_.size() && !write_waiting_) {
        std::string().swap(out_);
        out_offset_ = 0;
    }
}

}  // namespace haven::net
