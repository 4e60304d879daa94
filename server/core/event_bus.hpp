// Event bus: named stanza events with prioritised handlers (higher first), Prosody-style.
#pragma once

#include <exception>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/core/string_map.hpp"

namespace haven {

struct StanzaEvent;

enum class Flow { Continue, Stop };

// Named priorities so the order of concerns is visible at the hook site.
namespace prio {
inline constexpr int guard = 1000;     // limits, validation
inline constexpr int policy = 500;     // peer-support rules, blocking
inline constexpr int normal = 0;       // features
inline constexpr int fallback = -1000; // offline storage, default replies
}  // namespace prio

using StanzaHandler = std::function<Flow(StanzaEvent&)>;
using HookId = std::uint64_t;

enum class FireResult { Unhandled, Handled, Failed };

// Why a handler failed: the text for the log and whether the same stanza can succeed later.
// Temporary means another process holds the database (havenctl, a backup): the sender gets
// <resource-constraint/> (type wait) and retries, instead of internal-server-error (type cancel),
// which tells a client to give up.
struct HandlerFailure {
    std::string what;
    bool temporary = false;

    std::string_view condition() const {
        return temporary ? "resource-constraint" : "internal-server-error";
    }
    // Fills this from the exception being handled (call only inside a catch block).
    void from_current_exception();
};

class EventBus {
public:
    HookId hook(std::string_view event, int priority, StanzaHandler handler);
    void unhook(HookId id);
    // Runs handlers in priority order until one returns Flow::Stop. A throwing handler is
    // reported as Failed (the caller answers failure->condition()) and never escapes.
    FireResult fire(std::string_view event, StanzaEvent& ev,
                    HandlerFailure* failure = nullptr) const;
    bool has_handlers(std::string_view event) const;

private:
    struct Entry {
        HookId id;
        int priority;
        StanzaHandler handler;
    };
    // Copy-on-write lists: fire() holds a reference to the list it started with, so handlers may
    // (un)hook while an event runs without invalidating the iteration, at no per-fire copy.
    using List = std::vector<Entry>;
    StringMap<std::shared_ptr<const List>> events_;
    std::unordered_map<HookId, std::string> index_;
    HookId next_id_ = 1;
};

// A typed lifecycle signal (resource bound, session closed, user deleted, ...).
template <class... Args>
class Signal {
public:
    using Slot = std::function<void(Args...)>;
    HookId connect(Slot slot) {
        slots_.push_back({next_id_, std::move(slot)});
        return next_id_++;
    }
    void disconnect(HookId id) {
        std::erase_if(slots_, [id](const auto& s) { return s.first == id; });
    }
    void emit(Args... args) const {
        // Copy: a slot may connect/disconnect while we iterate.
        auto copy = slots_;
        // One failing slot must not keep the others from seeing a lifecycle event (a session
        // that closed must still go unavailable everywhere): all run, then the first failure
        // goes on to the caller's guard.
        std::exception_ptr failure;
        for (const auto& [id, slot] : copy) {
            try {
                slot(args...);
            } catch (...) {
                if (!failure) {
                    failure = std::current_exception();
                }
            }
        }
        if (failure) {
            std::rethrow_exception(failure);
        }
    }

private:
    std::vector<std::pair<HookId, Slot>> slots_;
    HookId next_id_ = 1;
};

}  // namespace haven
