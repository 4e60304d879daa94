// AdminCommands: the registry behind the control socket.
#include "server/core/admin_commands.hpp"

#include <exception>
#include <memory>

namespace haven {

std::uint64_t AdminCommands::add(std::string verb, std::size_t args, AdminHandler handler) {
    const auto id = next_id_++;
    entries_.emplace(id, Entry{std::move(verb), args, std::move(handler)});
    return id;
}

void AdminCommands::remove(std::uint64_t id) { entries_.erase(id); }

void AdminCommands::run(const AdminRequest& request, const AdminDone& done) const {
    if (request.words.size() < 2) {
        done({false, "no command"});
        return;
    }
    const std::string verb = request.words[0] + " " + request.words[1];
    for (const auto& [id, e] : entries_) {
        if (e.verb != verb) {
            continue;
        }
        if (request.words.size() != e.args + 2) {
            done({false, "wrong number of arguments for " + verb});
            return;
        }
        // `done` at most once, even if the handler answered and then threw.
        auto answered = std::make_shared<bool>(false);
        auto once = [answered, done](AdminReply reply) {
            if (!*answered) {
                *answered = true;
                done(std::move(reply));
            }
        };
        try {
            e.handler(request, once);
        } catch (const std::exception&) {
            once({false, "the server could not do this; see its log"});
            throw;  // the control socket logs it
        }
        return;
    }
    done({false, "unknown command: " + verb});
}

std::vector<std::string> AdminCommands::verbs() const {
    std::vector<std::string> out;
    for (const auto& [id, e] : entries_) {
        out.push_back(e.verb);
    }
    return out;
}

}  // namespace haven
