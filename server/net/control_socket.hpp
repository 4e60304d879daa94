// ControlSocket: the Unix-domain socket where havenctl asks the running server to act.
#pragma once

#include <sys/types.h>

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
class ControlSocket {
public:
    // Binds `path`. The caller holds the data directory's lock (storage::DataDirLock), so a
    // socket file there is a crashed server's and is replaced; one that still answers belongs
    // to a havend on other data configured with the same path: refused. Throws
    // std::runtime_error with the reason.
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
    // The inode we bound: at exit only that file is removed, never one a later server made.
    ino_t inode_ = 0;
};

}  // namespace haven::net
