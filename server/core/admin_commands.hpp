// AdminCommands: what an admin (havenctl, over the control socket) can ask the running server
// to do. The core registers the account commands; modules register their own ("grant end").
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace haven {

struct AdminRequest {
    std::vector<std::string> words;  // e.g. {"user", "delete", "alice"}
    std::string secret;              // a password, for commands that take one; never logged
};

struct AdminReply {
    bool ok = true;
    std::string text;  // one line for the admin: what happened, or why not
};

using AdminDone = std::function<void(AdminReply)>;
// Runs on the event loop. Calls `done` exactly once, now or later (after offloaded work), and
// only after the change has taken effect: sessions closed, pushes sent, state reloaded.
using AdminHandler = std::function<void(const AdminRequest&, AdminDone)>;

class AdminCommands {
public:
    // `verb` is the first two words ("user delete"); `args` how many words follow them.
    std::uint64_t add(std::string verb, std::size_t args, AdminHandler handler);
    void remove(std::uint64_t id);
    // Runs the matching command. An unknown verb, a wrong number of words or a handler that
    // throws answers an error reply (the exception text is for the log, not the socket).
    void run(const AdminRequest& request, const AdminDone& done) const;
    std::vector<std::string> verbs() const;

private:
    struct Entry {
        std::string verb;
        std::size_t args;
        AdminHandler handler;
    };
    std::map<std::uint64_t, Entry> entries_;
    std::uint64_t next_id_ = 1;
};

}  // namespace haven
