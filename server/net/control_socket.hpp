// ControlSocket: the Unix-domain socket where havenctl asks the running server to act.
#pragma once

#include <filesystem>
#include <memory>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

namespace haven {
class Server;
}

namespace haven::net {

// Like `prosodyctl shell` or `ejabberdctl`, but no TCP at all: a socket file of mode 0600 that
// only the server's own user (or root) may use, checked again per connection with
// SO_PEERCRED. The protocol is two lines, then one answer line, then close:
//
//   client: <words of the command, separated by spaces> LF
//           <password, or empty> LF
//   server: "ok <text>" or "error <text>" LF
//
// The answer is written when the change has taken effect (Server::admin(), AdminCommands).
// A request larger than 4 KiB, or slower than 10 s to arrive, is dropped. Nothing of it is
// logged except the command's first two words.
// Throws std::runtime_error if a havend already answers on `path`. Called before the server
// opens its database: a second server must not even load its modules (which write to it).
void refuse_if_server_running(const std::filesystem::path& path);

class ControlSocket {
public:
    // Binds `path`. A socket file that still answers belongs to a running havend: refused
    // (two servers on one database would each think their memory is the truth). A stale one
    // (a crash) is replaced. Throws std::runtime_error with the reason.
    ControlSocket(Server& server, std::filesystem::path path);
    ~ControlSocket();  // closes and removes the socket file
    ControlSocket(const ControlSocket&) = delete;
    ControlSocket& operator=(const ControlSocket&) = delete;

    void start();
    void stop();
    const std::filesystem::path& path() const { return path_; }

private:
    void accept();

    Server& server_;
    std::filesystem::path path_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    bool bound_ = false;
};

}  // namespace haven::net
