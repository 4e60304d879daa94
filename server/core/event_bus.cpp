// Event bus: named stanza events with prioritised handlers (higher first).
#include "server/core/event_bus.hpp"

#include "server/storage/error.hpp"

#include <algorithm>
#include <exception>

namespace haven {

HookId EventBus::hook(std::string_view event, int priority, StanzaHandler handler) {
    auto id = next_id_++;
    auto& slot = events_[std::string(event)];
    auto list = slot ? std::make_shared<List>(*slot) : std::make_shared<List>();
    // Stable insertion: equal priorities keep registration order.
    auto pos = std::find_if(list->begin(), list->end(),
                            [&](const Entry& e) { return e.priority < priority; });
    list->insert(pos, Entry{id, priority, std::move(handler)});
    slot = std::move(list);
    index_.emplace(id, std::string(event));
    return id;
}

void EventBus::unhook(HookId id) {
    auto it = index_.find(id);
    if (it == index_.end()) {
        return;
    }
    if (auto ev = events_.find(it->second); ev != events_.end()) {
        auto list = std::make_shared<List>(*ev->second);
        std::erase_if(*list, [id](const Entry& e) { return e.id == id; });
        if (list->empty()) {
            events_.erase(ev);
        } else {
            ev->second = std::move(list);
        }
    }
    index_.erase(it);
}

void HandlerFailure::from_current_exception() {
    try {
        throw;
    } catch (const storage::StorageError& e) {
        what = e.what();
        temporary = e.busy();
    } catch (const std::exception& e) {
        what = e.what();
        temporary = false;
    } catch (...) {
        what = "unknown exception";
        temporary = false;
    }
}

FireResult EventBus::fire(std::string_view event, StanzaEvent& ev,
                          HandlerFailure* failure) const {
    auto it = events_.find(event);
    if (it == events_.end()) {
        return FireResult::Unhandled;
    }
    const auto handlers = it->second;  // keeps this list alive even if a handler unhooks
    for (const auto& entry : *handlers) {
        try {
            if (entry.handler(ev) == Flow::Stop) {
                return FireResult::Handled;
            }
        } catch (...) {
            if (failure) {
                failure->from_current_exception();
            }
            return FireResult::Failed;
        }
    }
    return FireResult::Unhandled;
}

bool EventBus::has_handlers(std::string_view event) const { return events_.contains(event); }

}  // namespace haven
