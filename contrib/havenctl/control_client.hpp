// The client side of havend's control socket (server/net/control_socket.hpp).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace haven::ctl {

struct ControlAnswer {
    bool ok = false;
    std::string text;
};

// Asks the running havend to carry out `words` (with `secret` as the password line) and waits
// for its answer, which comes once the change has taken effect. std::nullopt when no server
// is listening (no socket file, or nobody accepts on it): the caller then works on the
// database itself. Throws std::runtime_error when a server runs but cannot be asked (another
// user's socket) or does not answer within `timeout`.
std::optional<ControlAnswer> ask_server(const std::filesystem::path& socket,
                                        const std::vector<std::string>& words,
                                        const std::string& secret,
                                        std::chrono::milliseconds timeout);

}  // namespace haven::ctl
