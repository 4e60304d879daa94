// OfflineStore: XEP-0160 messages for offline users, sealed at rest, never stalling the loop.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::storage {

// What each payload is sealed to (SecretBox additional data): its recipient, so a row moved to
// another account no longer opens.
std::string offline_row(std::string_view user);

struct OfflineMessage {
    std::int64_t id = 0;     // unique while stored (negative while still queued in memory)
    std::int64_t stamp = 0;  // unix seconds, for the XEP-0203 delay
    std::string payload;     // the serialised stanza, decrypted
};

// Per-recipient limits. Bytes count what is stored (the sealed payload, ~40 bytes more than the
// stanza), so a recipient's store stays bounded however its messages are shaped.
struct OfflineQuota {
    OfflineQuota(std::size_t max_messages,  // NOLINT: a bare count is a quota without a byte cap
                 std::size_t max_bytes = std::numeric_limits<std::size_t>::max())
        : messages(max_messages), bytes(max_bytes) {}
    std::size_t messages;
    std::size_t bytes;
};

enum class PushResult {
    Stored,      // committed
    Queued,      // accepted; the database is locked by another process, written when it frees
    Full,        // the recipient's quota (messages or bytes) would be exceeded
    NoAccount,   // no such account (e.g. deleted meanwhile)
    Overloaded,  // the database is locked and the in-memory queue is full: try again later
};
inline bool accepted(PushResult r) { return r == PushResult::Stored || r == PushResult::Queued; }

// Bounds of the in-memory queue that holds writes while another process locks the database.
struct DeferredLimits {
    std::size_t max_messages = 10000;
    std::size_t max_bytes = 16 * 1024 * 1024;
    std::chrono::milliseconds retry_interval{100};
};

// Messages arrive on the event loop, so a push must never wait for SQLite's busy timeout: when
// the write lock is taken (havenctl, a backup, sqlite3), the sealed message goes to a bounded
// in-memory queue that a timer retries (without waiting) until the lock is gone. Reads (list,
// count, quota checks) see the queue, so a queued message is delivered at the next login,
// exactly once and in order; deletions after delivery are deferred the same way. See README.md.
class OfflineStore {
public:
    // `box` must outlive the store. Without `io` nothing retries by itself: call flush().
    OfflineStore(Database& db, const SecretBox& box, boost::asio::io_context* io = nullptr,
                 DeferredLimits limits = {});
    ~OfflineStore();
    OfflineStore(const OfflineStore&) = delete;
    OfflineStore& operator=(const OfflineStore&) = delete;

    PushResult push(std::string_view user, std::int64_t stamp, std::string_view payload,
                    OfflineQuota quota);
    // Oldest first, queued messages last. Throws StorageError if a payload does not decrypt
    // (wrong key file). Call remove() for what was delivered in the same event-loop turn.
    std::vector<OfflineMessage> list(std::string_view user) const;
    // Ids of other users are ignored. Returns how many were removed (or are queued for removal).
    std::size_t remove(std::string_view user, std::span<const std::int64_t> ids);
    std::size_t count(std::string_view user) const;
    std::size_t bytes(std::string_view user) const;
    // Retention: drops every stored message older than `stamp`, for all users. Returns the
    // count; 0 while the database is locked (the next run catches up).
    std::size_t remove_older_than(std::int64_t stamp);

    // Writes what is queued in one transaction, without waiting for a lock. true: nothing is
    // left queued. Throws StorageError for failures other than a busy database.
    bool flush();
    // At shutdown: retries flush() for at most `max_wait`. Returns how many queued messages
    // could not be written (they are lost; the caller logs them).
    std::size_t flush_for_shutdown(std::chrono::milliseconds max_wait);
    std::size_t queued() const { return pending_.size(); }

private:
    struct Pending {
        std::int64_t id;  // negative, unique
        std::string user;
        std::int64_t stamp;
        std::string sealed;
    };
    struct Usage {
        std::size_t messages = 0;
        std::size_t bytes = 0;
    };
    Usage usage(std::string_view user) const;
    PushResult enqueue(std::string_view user, std::int64_t stamp, std::string sealed,
                       OfflineQuota quota);
    PushResult classify(std::string_view user, std::size_t size, OfflineQuota quota) const;
    void arm_retry();
    std::size_t pending_cost(const Pending& p) const { return p.sealed.size() + p.user.size(); }

    Database& db_;
    const SecretBox& box_;
    DeferredLimits limits_;
    std::deque<Pending> pending_;
    std::size_t pending_bytes_ = 0;
    std::int64_t next_pending_id_ = -1;
    // Delivered rows whose DELETE met a locked database: hidden from reads until deleted.
    // Bounded without a cap of its own: remove() admits only ids that are rows of that user
    // (checked in the table), once each, so it never holds more ids than the table holds rows,
    // and those are bounded by [offline] quota_messages per account (~40 bytes per id here
    // against a stored row of at least a hundred).
    std::unordered_set<std::int64_t> pending_removals_;
    std::unique_ptr<boost::asio::steady_timer> timer_;
    bool timer_armed_ = false;
};

}  // namespace haven::storage
