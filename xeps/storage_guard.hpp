// Storage writes on the event loop: a database locked by another process answers a temporary
// stanza error instead of stalling the loop (issue 10 §6, server/storage/README.md).
#pragma once

#include <utility>

#include "server/core/event_bus.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/storage/error.hpp"

namespace haven::xeps {

// Runs `handler` (returning Flow). When a write meets a lock that another process (havenctl, a
// backup, sqlite3) holds longer than [storage] busy_timeout_ms, the stanza is answered with
// <resource-constraint/> of type wait (RFC 6120 §8.3.3.18: retry later) and nothing is half
// written, provided the handler keeps related writes in one storage::Transaction. Other storage
// failures propagate to the router's guard (internal-server-error).
template <class Handler>
Flow retry_later_if_busy(Server& server, StanzaEvent& e, Handler&& handler) {
    try {
        return std::forward<Handler>(handler)();
    } catch (const storage::StorageError& err) {
        if (!err.busy()) {
            throw;
        }
        const auto lang = e.lang();
        e.reply_error("resource-constraint", server.texts().get("storage-busy", lang),
                      server.texts().pick_lang("storage-busy", lang));
        server.log().warn("storage: database locked by another process; <", e.stanza.name(),
                          "/> answered with resource-constraint");
        return Flow::Stop;
    }
}

}  // namespace haven::xeps
