// OfflineStore: XEP-0160 messages for offline users, sealed at rest, never stalling the loop.
#include "server/storage/offline_store.hpp"

#include <algorithm>
#include <thread>

namespace haven::storage {

std::string offline_row(std::string_view user) { return pack({"offline", user}); }
namespace {

std::int64_t clamp64(std::size_t v) {
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(v < max ? v : max);
}

}  // namespace

OfflineStore::OfflineStore(Database& db, const SecretBox& box, boost::asio::io_context* io,
                           DeferredLimits limits)
    : db_(db), box_(box), limits_(limits) {
    if (io != nullptr) {
        timer_ = std::make_unique<boost::asio::steady_timer>(*io);
    }
}

// The timer's pending wait is cancelled with it; its handler then sees operation_aborted and
// does not touch this object.
OfflineStore::~OfflineStore() = default;

OfflineStore::Usage OfflineStore::usage(std::string_view user) const {
    Usage u;
    auto& st = db_.prepare_cached("SELECT id, length(payload) FROM offline WHERE user = ?1");
    ScopedReset guard(st);
    st.bind(1, user);
    while (st.step()) {
        if (!pending_removals_.contains(st.column_int64(0))) {
            ++u.messages;
            u.bytes += static_cast<std::size_t>(st.column_int64(1));
        }
    }
    for (const auto& p : pending_) {
        if (p.user == user) {
            ++u.messages;
            u.bytes += p.sealed.size();
        }
    }
    return u;
}

PushResult OfflineStore::classify(std::string_view user, std::size_t size,
                                  OfflineQuota quota) const {
    auto& st = db_.prepare_cached("SELECT 1 FROM accounts WHERE localpart = ?1");
    ScopedReset guard(st);
    st.bind(1, user);
    if (!st.step()) {
        return PushResult::NoAccount;
    }
    const Usage u = usage(user);
    if (u.messages >= quota.messages || u.bytes + size > quota.bytes) {
        return PushResult::Full;
    }
    return PushResult::Stored;  // room left: the caller goes on to write or queue
}

PushResult OfflineStore::push(std::string_view user, std::int64_t stamp, std::string_view payload,
                              OfflineQuota quota) {
    std::string sealed = box_.seal(payload, offline_row(user));
    if (quota.messages == 0 || sealed.size() > quota.bytes) {
        return PushResult::Full;
    }
    // Anything still queued must be written first, or ids would no longer follow arrival order.
    // flush() does not wait, so this costs one failed lock attempt while the database is held.
    if (!pending_.empty() || !pending_removals_.empty()) {
        try {
            if (!flush()) {
                return enqueue(user, stamp, std::move(sealed), quota);
            }
        } catch (const StorageError&) {
            return enqueue(user, stamp, std::move(sealed), quota);
        }
    }
    try {
        // Quota check and insert in one statement: atomic without a transaction, even with the
        // admin CLI writing concurrently.
        auto& st = db_.prepare_cached(
            "INSERT INTO offline(user, stamp, payload) SELECT ?1, ?2, ?3"
            " WHERE EXISTS(SELECT 1 FROM accounts WHERE localpart = ?1)"
            " AND (SELECT count(*) FROM offline WHERE user = ?1) < ?4"
            " AND (SELECT coalesce(sum(length(payload)), 0) FROM offline WHERE user = ?1)"
            " + length(?3) <= ?5");
        ScopedReset guard(st);
        st.bind(1, user)
            .bind(2, stamp)
            .bind(3, Blob{sealed})
            .bind(4, clamp64(quota.messages))
            .bind(5, clamp64(quota.bytes));
        st.step();
        if (db_.changes() == 1) {
            return PushResult::Stored;
        }
    } catch (const StorageError& e) {
        if (!e.busy()) {
            throw;
        }
        return enqueue(user, stamp, std::move(sealed), quota);
    }
    const PushResult r = classify(user, sealed.size(), quota);
    return r == PushResult::Stored ? PushResult::Full : r;  // lost a race: call it full
}

PushResult OfflineStore::enqueue(std::string_view user, std::int64_t stamp, std::string sealed,
                                 OfflineQuota quota) {
    // Reads still work while another connection holds the write lock (WAL), so the quota is
    // checked against what is stored plus what is queued.
    PushResult r;
    try {
        r = classify(user, sealed.size(), quota);
    } catch (const StorageError& e) {
        if (!e.busy()) {
            throw;
        }
        return PushResult::Overloaded;
    }
    if (r != PushResult::Stored) {
        return r;
    }
    Pending p{next_pending_id_, std::string(user), stamp, std::move(sealed)};
    const std::size_t cost = pending_cost(p);
    if (pending_.size() >= limits_.max_messages || pending_bytes_ + cost > limits_.max_bytes) {
        return PushResult::Overloaded;
    }
    --next_pending_id_;
    pending_bytes_ += cost;
    pending_.push_back(std::move(p));
    arm_retry();
    return PushResult::Queued;
}

std::vector<OfflineMessage> OfflineStore::list(std::string_view user) const {
    auto& st =
        db_.prepare_cached("SELECT id, stamp, payload FROM offline WHERE user = ?1 ORDER BY id");
    ScopedReset guard(st);
    st.bind(1, user);
    std::vector<OfflineMessage> out;
    const std::string row = offline_row(user);
    auto open = [this, &row](std::int64_t id, std::string_view sealed) {
        auto payload = box_.open(sealed, row);
        if (!payload) {
            // Not skipped: silently losing messages would hide a misconfigured key file.
            throw StorageError("storage: offline message " + std::to_string(id) +
                               " does not decrypt: wrong key file?");
        }
        return std::move(*payload);
    };
    while (st.step()) {
        const std::int64_t id = st.column_int64(0);
        if (pending_removals_.contains(id)) {
            continue;  // delivered already; its DELETE is waiting for the lock
        }
        out.push_back({id, st.column_int64(1), open(id, st.column_blob(2))});
    }
    // Queued messages arrived after every stored one (push keeps that order).
    for (const auto& p : pending_) {
        if (p.user == user) {
            out.push_back({p.id, p.stamp, open(p.id, p.sealed)});
        }
    }
    return out;
}

std::size_t OfflineStore::remove(std::string_view user, std::span<const std::int64_t> ids) {
    std::size_t removed = 0;
    std::vector<std::int64_t> stored;
    for (const std::int64_t id : ids) {
        if (id >= 0) {
            stored.push_back(id);
            continue;
        }
        auto it = std::find_if(pending_.begin(), pending_.end(),
                               [&](const Pending& p) { return p.id == id && p.user == user; });
        if (it != pending_.end()) {
            pending_bytes_ -= pending_cost(*it);
            pending_.erase(it);
            ++removed;
        }
    }
    if (stored.empty()) {
        return removed;
    }
    try {
        Transaction tx(db_);  // one commit (one fsync at checkpoint) for the whole batch
        auto& st = db_.prepare_cached("DELETE FROM offline WHERE id = ?1 AND user = ?2");
        for (const std::int64_t id : stored) {
            ScopedReset guard(st);
            st.bind(1, id).bind(2, user);
            st.step();
            removed += static_cast<std::size_t>(db_.changes());
        }
        tx.commit();
    } catch (const StorageError& e) {
        if (!e.busy()) {
            throw;
        }
        // Delivered but not yet deleted: hide them (exactly-once) and delete them later. Only
        // ids of this user's rows are kept, so another user's id cannot hide their messages.
        auto& st = db_.prepare_cached("SELECT 1 FROM offline WHERE id = ?1 AND user = ?2");
        for (const std::int64_t id : stored) {
            ScopedReset guard(st);
            st.bind(1, id).bind(2, user);
            if (st.step() && pending_removals_.insert(id).second) {
                ++removed;
            }
        }
        arm_retry();
    }
    return removed;
}

std::size_t OfflineStore::count(std::string_view user) const { return usage(user).messages; }

std::size_t OfflineStore::bytes(std::string_view user) const { return usage(user).bytes; }

std::size_t OfflineStore::remove_older_than(std::int64_t stamp) {
    try {
        auto& st = db_.prepare_cached("DELETE FROM offline WHERE stamp < ?1");
        ScopedReset guard(st);
        st.bind(1, stamp);
        st.step();
        return static_cast<std::size_t>(db_.changes());
    } catch (const StorageError& e) {
        if (!e.busy()) {
            throw;
        }
        return 0;
    }
}

bool OfflineStore::flush() {
    if (pending_.empty() && pending_removals_.empty()) {
        return true;
    }
    ScopedBusyTimeout no_wait(db_, std::chrono::milliseconds(0));
    try {
        Transaction tx(db_);
        auto& del = db_.prepare_cached("DELETE FROM offline WHERE id = ?1");
        for (const std::int64_t id : pending_removals_) {
            ScopedReset guard(del);
            del.bind(1, id);
            del.step();
        }
        // The quota was checked when each message was accepted; only a vanished account
        // (deleted meanwhile, its data already erased) drops a queued message now.
        auto& ins = db_.prepare_cached(
            "INSERT INTO offline(user, stamp, payload) SELECT ?1, ?2, ?3"
            " WHERE EXISTS(SELECT 1 FROM accounts WHERE localpart = ?1)");
        for (const auto& p : pending_) {
            ScopedReset guard(ins);
            ins.bind(1, p.user).bind(2, p.stamp).bind(3, Blob{p.sealed});
            ins.step();
        }
        tx.commit();
    } catch (const StorageError& e) {
        if (!e.busy()) {
            throw;
        }
        return false;
    }
    pending_.clear();
    pending_bytes_ = 0;
    pending_removals_.clear();
    return true;
}

std::size_t OfflineStore::flush_for_shutdown(std::chrono::milliseconds max_wait) {
    const auto deadline = std::chrono::steady_clock::now() + max_wait;
    for (int attempt = 0; attempt < 10000; ++attempt) {
        try {
            if (flush()) {
                return 0;
            }
        } catch (const StorageError&) {
            break;  // not a lock: retrying will not help
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // shutdown, not the loop
    }
    return pending_.size();
}

void OfflineStore::arm_retry() {
    if (!timer_ || timer_armed_) {
        return;
    }
    timer_armed_ = true;
    timer_->expires_after(limits_.retry_interval);
    timer_->async_wait([this](const boost::system::error_code& ec) {
        if (ec) {
            return;  // cancelled: the store is being destroyed
        }
        timer_armed_ = false;
        bool done = false;
        try {
            done = flush();
        } catch (const StorageError&) {
            // e.g. disk full: keep the queue (bounded) and retry; nothing is dropped silently.
        }
        if (!done) {
            arm_retry();
        }
    });
}

}  // namespace haven::storage
