// Listener: accepts client connections and starts a C2sSession for each.
#include "server/net/listener.hpp"

#include <algorithm>

#include "server/core/server.hpp"

namespace haven::net {

Listener::Listener(Server& server, const boost::asio::ip::tcp::endpoint& endpoint,
                   C2sOptions options, LoopShared shared)
    : server_(server),
      acceptor_(server.io()),
      options_(options),
      shared_(shared),
      retry_(server.io()) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(4096);
}

std::uint16_t Listener::port() const { return acceptor_.local_endpoint().port(); }

void Listener::start() { accept(); }

void Listener::stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
}

void Listener::accept() {
    acceptor_.async_accept([self = shared_from_this()](const boost::system::error_code& ec,
                                                       boost::asio::ip::tcp::socket socket) {
        if (ec == boost::asio::error::operation_aborted) {
            return;
        }
        if (!ec) {
            ConnectionGate::Ticket ticket;
            if (auto* gate = self->options_.gate) {
                boost::system::error_code ep_ec;
                auto ep = socket.remote_endpoint(ep_ec);
                ticket = gate->admit(ConnectionGate::Kind::Unauthenticated,
                                     address_key(ep_ec ? "?" : ep.address().to_string()));
                if (!ticket) {
                    // Over the caps before login: closed before any parsing or TLS.
                    self->refused(socket);
                    self->accept();
                    return;
                }
            }
            // Each session gets a distinct id across both listeners (odd/even would collide
            // otherwise): mix in the listening port.
            auto id = (static_cast<std::uint64_t>(self->port()) << 40) | self->next_id_++;
            auto session = std::make_shared<C2sSession>(self->server_, std::move(socket),
                                                        self->options_, self->shared_, id);
            session->admit(std::move(ticket));
            self->track(session);
            session->start();
            self->accept_backoff_ = std::chrono::milliseconds(0);
            self->accept();
            return;
        }
        // EMFILE and friends: accepting again at once would spin at full CPU (and flood the
        // log) until a descriptor frees up, so wait, backing off from 100 ms to 1 s.
        self->accept_backoff_ = std::min(std::chrono::milliseconds(1000),
                                         std::max(std::chrono::milliseconds(100),
                                                  self->accept_backoff_ * 2));
        if (self->accept_backoff_ == std::chrono::milliseconds(100) ||
            self->accept_backoff_ == std::chrono::milliseconds(1000)) {
            self->server_.log().warn("accept failed: ", ec.message(), "; retrying in ",
                                     self->accept_backoff_.count(), " ms");
        }
        self->retry_.expires_after(self->accept_backoff_);
        self->retry_.async_wait([self](const boost::system::error_code& wait_ec) {
            if (!wait_ec && self->acceptor_.is_open()) {
                self->accept();
            }
        });
    });
}

void Listener::refused(boost::asio::ip::tcp::socket& socket) {
    boost::system::error_code ec;
    socket.close(ec);
    // One line per minute at most: a flood of refusals must not flood the log too.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refusal_log_ >= std::chrono::minutes(1)) {
        last_refusal_log_ = now;
        server_.log().warn("connections refused over the [limits] caps before login: ",
                           options_.gate->refused(), " so far");
    }
}

void Listener::track(const std::shared_ptr<C2sSession>& session) {
    if (sessions_.size() >= prune_at_) {
        std::erase_if(sessions_, [](const std::weak_ptr<C2sSession>& w) { return w.expired(); });
        prune_at_ = std::max<std::size_t>(64, sessions_.size() * 2);
    }
    sessions_.push_back(session);
}

void Listener::close_sessions(std::string_view condition) {
    for (const auto& w : sessions_) {
        if (auto s = w.lock()) {
            s->close(condition);
        }
    }
}

bool Listener::sessions_finished() {
    return std::all_of(sessions_.begin(), sessions_.end(), [](const std::weak_ptr<C2sSession>& w) {
        auto s = w.lock();
        return !s || s->finished();
    });
}

void Listener::abort_sessions(std::string_view reason) {
    for (const auto& w : sessions_) {
        if (auto s = w.lock()) {
            s->abort(reason);
        }
    }
}

}  // namespace haven::net
