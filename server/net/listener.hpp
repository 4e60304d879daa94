// Listener: accepts client connections on one address/port and starts a C2sSession for each.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/net/c2s_session.hpp"

namespace haven::net {

class Listener : public std::enable_shared_from_this<Listener> {
public:
    // Throws boost::system::system_error when the address cannot be bound.
    Listener(Server& server, const boost::asio::ip::tcp::endpoint& endpoint, C2sOptions options,
             LoopShared shared);
    void start();
    // Stops accepting; open sessions are left alone.
    void stop();
    std::uint16_t port() const;

    // Shutdown: every live session of this listener, whether it has logged in or not.
    void close_sessions(std::string_view condition);
    bool sessions_finished();
    void abort_sessions(std::string_view reason);

private:
    void accept();
    void track(const std::shared_ptr<C2sSession>& session);
    void refused(boost::asio::ip::tcp::socket& socket);

    Server& server_;
    boost::asio::ip::tcp::acceptor acceptor_;
    C2sOptions options_;
    LoopShared shared_;
    std::uint64_t next_id_ = 1;
    boost::asio::steady_timer retry_;  // accept back-off when descriptors run out
    std::chrono::milliseconds accept_backoff_{0};
    // Weak: a session lives as long as its I/O; expired entries are pruned as the list grows.
    std::vector<std::weak_ptr<C2sSession>> sessions_;
    std::size_t prune_at_ = 64;
    std::chrono::steady_clock::time_point last_refusal_log_{};
};

}  // namespace haven::net
