// ControlSocket: the Unix-domain socket where havenctl asks the running server to act.
#include "server/net/control_socket.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include <array>
#include <chrono>
#include <stdexcept>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "server/core/admin_commands.hpp"
#include "server/core/server.hpp"

namespace haven::net {

namespace {

using boost::asio::local::stream_protocol;

constexpr std::size_t max_request = 4096;
constexpr auto request_deadline = std::chrono::seconds(10);

// Only the server's own user, or root, may give it orders. The file mode already says so;
// SO_PEERCRED holds even if someone loosened the mode or the directory's.
bool trusted_peer(stream_protocol::socket& s) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        return false;
    }
    return cred.uid == ::geteuid() || cred.uid == 0;
}

// The answer is one line: line ends (a list) and '%' are percent-encoded; havenctl decodes.
std::string one_line(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\n') {
            out += "%0A";
        } else if (c == '%') {
            out += "%25";
        } else if (c != '\r') {
            out += c;
        }
    }
    return out;
}

class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(Server& server, stream_protocol::socket socket)
        : server_(server), socket_(std::move(socket)), deadline_(socket_.get_executor()) {
        request_.reserve(max_request + chunk_.size());  // never reallocated: no stray copies
    }

    void start() {
        deadline_.expires_after(request_deadline);
        deadline_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            if (auto self = weak.lock(); self && !ec) {
                self->close();  // a client that never finishes its request
            }
        });
        read();
    }

private:
    void read() {
        socket_.async_read_some(
            boost::asio::buffer(chunk_),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                if (ec) {
                    self->close();
                    return;
                }
                self->request_.append(self->chunk_.data(), n);
                if (self->request_.size() > max_request) {
                    self->close();
                    return;
                }
                const auto first = self->request_.find('\n');
                const auto second = first == std::string::npos
                                        ? std::string::npos
                                        : self->request_.find('\n', first + 1);
                if (second == std::string::npos) {
                    self->read();
                    return;
                }
                self->run(first, second);
            });
    }

    // havenctl percent-encodes spaces, '%' and line ends inside a word.
    static std::string decode_word(std::string_view w) {
        std::string out;
        for (std::size_t i = 0; i < w.size(); ++i) {
            if (w[i] == '%' && i + 2 < w.size()) {
                const auto hex = w.substr(i + 1, 2);
                if (hex == "20" || hex == "25" || hex == "0A" || hex == "0D") {
                    out += hex == "20" ? ' ' : hex == "25" ? '%' : hex == "0A" ? '\n' : '\r';
                    i += 2;
                    continue;
                }
            }
            out += w[i];
        }
        return out;
    }

    void run(std::size_t first, std::size_t second) {
        // The request is complete: from now on the command's own time counts (PBKDF2 may
        // queue behind logins on the hashing pool), and the answer must not be cut off after
        // the change happened.
        deadline_.cancel();
        AdminRequest req;
        std::string_view line(request_.data(), first);
        while (!line.empty()) {
            const auto sp = line.find(' ');
            auto word = line.substr(0, sp);
            if (!word.empty() && word.back() == '\r') {
                word.remove_suffix(1);
            }
            if (!word.empty()) {
                req.words.push_back(decode_word(word));
            }
            line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        }
        req.secret.assign(request_, first + 1, second - first - 1);
        if (!req.secret.empty() && req.secret.back() == '\r') {
            req.secret.pop_back();
        }
        // Wipe the copies in the read buffers: the password lives on only in `req`.
        sodium_memzero(request_.data(), request_.size());
        sodium_memzero(chunk_.data(), chunk_.size());
        const std::string verb =
            req.words.size() >= 2 ? req.words[0] + " " + req.words[1] : std::string("?");
        server_.log().info("control: ", verb);
        try {
            server_.admin().run(req, [self = shared_from_this()](AdminReply reply) {
                self->answer(reply);
            });
        } catch (const std::exception& e) {
            server_.log().error("control: ", verb, " failed: ", e.what());
        }
        sodium_memzero(req.secret.data(), req.secret.size());
    }

    void answer(const AdminReply& reply) {
        if (answered_) {
            return;
        }
        answered_ = true;
        deadline_.cancel();
        out_ = (reply.ok ? "ok " : "error ") + one_line(reply.text) + "\n";
        boost::asio::async_write(socket_, boost::asio::buffer(out_),
                                 [self = shared_from_this()](const boost::system::error_code&,
                                                             std::size_t) { self->close(); });
    }

    void close() {
        boost::system::error_code ignored;
        socket_.shutdown(stream_protocol::socket::shutdown_both, ignored);
        socket_.close(ignored);
        deadline_.cancel();
    }

    Server& server_;
    stream_protocol::socket socket_;
    boost::asio::steady_timer deadline_;
    std::array<char, 1024> chunk_{};
    std::string request_;
    std::string out_;
    bool answered_ = false;
};

}  // namespace

namespace {
void refuse_if_server_running(const std::filesystem::path& path) {
    std::error_code fs_ec;
    if (!std::filesystem::is_socket(std::filesystem::symlink_status(path, fs_ec))) {
        return;
    }
    boost::asio::io_context io;
    stream_protocol::socket probe(io);
    boost::system::error_code ec;
    probe.connect(stream_protocol::endpoint(path.string()), ec);  // at startup: may block
    if (!ec) {
        throw std::runtime_error("another havend answers on the control socket " +
                                 path.string());
    }
}
}  // namespace

ControlSocket::ControlSocket(Server& server, std::filesystem::path path)
    : server_(server), path_(std::move(path)), acceptor_(server.io()), retry_(server.io()) {
    if (path_.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
        throw std::runtime_error("[server] control_socket: path longer than " +
                                 std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                 " bytes: " + path_.string());
    }
    const stream_protocol::endpoint ep(path_.string());
    std::error_code fs_ec;
    const auto status = std::filesystem::symlink_status(path_, fs_ec);
    if (std::filesystem::exists(status)) {
        if (!std::filesystem::is_socket(status)) {
            throw std::runtime_error("[server] control_socket: " + path_.string() +
                                     " exists and is not a socket");
        }
        refuse_if_server_running(path_);
        std::filesystem::remove(path_, fs_ec);  // left behind by a crash
    }
    // Created as 0600 (no window in which it is wider), then chmod for good measure.
    const mode_t old_mask = ::umask(0077);
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) {
        acceptor_.bind(ep, ec);
    }
    ::umask(old_mask);
    if (ec) {
        throw std::runtime_error("[server] control_socket: cannot bind " + path_.string() + ": " +
                                 ec.message());
    }
    ::chmod(path_.c_str(), 0600);
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0) {
        inode_ = st.st_ino;
    }
    acceptor_.listen(16, ec);
    if (ec) {
        std::filesystem::remove(path_, fs_ec);  // the destructor does not run for a throw here
        throw std::runtime_error("[server] control_socket: cannot listen: " + ec.message());
    }
    bound_ = true;
}

ControlSocket::~ControlSocket() {
    stop();
    struct stat st {};
    if (bound_ && ::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
}

void ControlSocket::start() { accept(); }

void ControlSocket::stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
}

void ControlSocket::accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec,
                                  stream_protocol::socket socket) {
        if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) {
            return;
        }
        if (ec) {
            // Out of descriptors, say: try again shortly instead of spinning on the error.
            server_.log().warn("control: accept failed: ", ec.message());
            retry_.expires_after(std::chrono::milliseconds(200));
            retry_.async_wait([this](const boost::system::error_code& e) {
                if (!e && acceptor_.is_open()) {
                    accept();
                }
            });
            return;
        }
        if (trusted_peer(socket)) {
            std::make_shared<Connection>(server_, std::move(socket))->start();
        } else {
            server_.log().warn("control: connection from another user refused");
        }
        accept();
    });
}

}  // namespace haven::net
