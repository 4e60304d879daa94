// The client side of havend's control socket. A CLI may block: plain POSIX calls, bounded by
// poll() timeouts.
#include "contrib/havenctl/control_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace haven::ctl {

namespace {

// The server's answer line encodes line ends and '%' (server/net/control_socket.cpp).
std::string decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && text.substr(i + 1, 2) == "0A") {
            out += '\n';
            i += 2;
        } else if (text[i] == '%' && text.substr(i + 1, 2) == "25") {
            out += '%';
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

// The descriptor, closed on every path out.
struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

std::chrono::milliseconds left(std::chrono::steady_clock::time_point deadline) {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
}

void wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
    pollfd p{fd, events, 0};
    for (;;) {
        const int r = ::poll(&p, 1, static_cast<int>(left(deadline).count()));
        if (r > 0) {
            return;
        }
        if (r == 0) {
            throw std::runtime_error("the running server did not answer in time");
        }
        if (errno != EINTR) {
            throw std::runtime_error(std::string("control socket: ") + std::strerror(errno));
        }
    }
}

}  // namespace

std::optional<ControlAnswer> ask_server(const std::filesystem::path& socket,
                                        const std::vector<std::string>& words,
                                        const std::string& secret,
                                        std::chrono::milliseconds timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket.native().size() >= sizeof addr.sun_path) {
        throw std::runtime_error("control socket path too long: " + socket.string());
    }
    std::memcpy(addr.sun_path, socket.c_str(), socket.native().size());
    Fd s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (s.fd < 0) {
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    }
    if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED) {
            return std::nullopt;  // no server runs on this data directory
        }
        if (errno == EACCES || errno == EPERM) {
            throw std::runtime_error("the running server's control socket " + socket.string() +
                                     " is not accessible: run havenctl as the server's user");
        }
        throw std::runtime_error("control socket " + socket.string() + ": " +
                                 std::strerror(errno));
    }
    // The password goes only to a server of our own user (or root): with [server]
    // control_socket in a directory others can write to, someone else could have bound it.
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(s.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != ::geteuid() && cred.uid != 0)) {
        throw std::runtime_error("the control socket " + socket.string() +
                                 " belongs to another user: not sending anything");
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // One line of words separated by spaces; a word's own spaces, line ends and '%' are
    // percent-encoded (a meeting title has spaces), which the server decodes.
    std::string request;
    for (const auto& w : words) {
        if (!request.empty()) {
            request += ' ';
        }
        for (char c : w) {
            switch (c) {
                case ' ': request += "%20"; break;
                case '%': request += "%25"; break;
                case '\n': request += "%0A"; break;
                case '\r': request += "%0D"; break;
                default: request += c;
            }
        }
    }
    request += '\n';
    request += secret;
    request += '\n';
    std::size_t sent = 0;
    while (sent < request.size()) {
        wait_for(s.fd, POLLOUT, deadline);
        const auto n = ::send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::runtime_error(std::string("control socket: ") + std::strerror(errno));
        }
        sent += static_cast<std::size_t>(n);
    }
    std::fill(request.begin(), request.end(), '\0');  // the password, in a CLI: best effort
    std::string answer;
    char buf[512];
    while (answer.find('\n') == std::string::npos) {
        wait_for(s.fd, POLLIN, deadline);
        const auto n = ::recv(s.fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw std::runtime_error("the running server closed the control connection without "
                                     "an answer (see its log)");
        }
        answer.append(buf, static_cast<std::size_t>(n));
        if (answer.size() > 64 * 1024) {
            throw std::runtime_error("control socket: answer too long");
        }
    }
    answer.resize(answer.find('\n'));
    if (answer.rfind("ok", 0) == 0) {
        return ControlAnswer{true, answer.size() > 3 ? decode(answer.substr(3)) : std::string()};
    }
    if (answer.rfind("error", 0) == 0) {
        return ControlAnswer{false,
                             answer.size() > 6 ? decode(answer.substr(6)) : std::string()};
    }
    throw std::runtime_error("control socket: unexpected answer");
}

}  // namespace haven::ctl
