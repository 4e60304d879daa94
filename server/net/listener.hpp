// Listener: accepts client connections on one address/port and starts a C2sSession for each.
#pragma once

#include <array>
#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "server/net/c2s_session.hpp"

namespace haven::net {

class Listener : public std::enable_shared_from_this<Listener> {
public:
    // Throws boost::system::system_error when the address cannot be bound.
    Listener(Server& server, const boost::asio::ip::tcp::endpoint& endpoint, C2sOptions options,
             std::span<char> scratch);
    void start();
    void stop();
    std::uint16_t port() const;

private:
    void accept();

    Server& server_;
    boost::asio::ip::tcp::acceptor acceptor_;
    C2sOptions options_;
    std::span<char> scratch_;
    std::uint64_t next_id_ = 1;
};

}  // namespace haven::net
