// WriteBatcher: flushes the connections of one event loop together, a few loop turns after the
// first byte was queued, so that a busy server sends fewer, larger writes.
//
// Why turns and not a timer: a deferred flush goes to the back of the loop's queue, behind the
// reactor's next poll. When the server is idle a turn is one epoll_wait(0) (microseconds), so
// the delay is nothing; when the server is saturated a turn is one full batch of ready sockets
// (milliseconds), and every stanza that reaches the same client in those batches leaves in one
// send() and one TLS record. The delay therefore grows with the load, which is where the saved
// system calls pay for it (one send() per delivered message was most of the kernel time in the
// messaging benchmark, contrib/bench/RESULTS.md). Netty's flush consolidation follows the same
// idea.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

namespace haven::net {

// What the batcher flushes (a Transport; an interface so the batching can be tested alone).
class Flushable {
public:
    virtual void run_scheduled_flush() = 0;

protected:
    ~Flushable() = default;
};

class WriteBatcher {
public:
    // `turns`: loop turns between the first queued byte and the flush (1 = at the end of the
    // current turn).
    WriteBatcher(boost::asio::any_io_executor executor, unsigned turns);
    WriteBatcher(const WriteBatcher&) = delete;
    WriteBatcher& operator=(const WriteBatcher&) = delete;

    // Calls target.run_scheduled_flush() in `turns` turns; `owner` keeps the target alive until
    // then. The caller schedules each target at most once per flush (Transport keeps a flag).
    void schedule(Flushable& target, std::shared_ptr<void> owner);
    unsigned turns() const { return turns_; }

private:
    struct Entry {
        Flushable* target;
        std::shared_ptr<void> owner;
    };
    void post_turn();
    void on_turn();

    boost::asio::any_io_executor executor_;
    unsigned turns_;
    unsigned waited_ = 0;
    bool posted_ = false;
    std::vector<Entry> pending_;
    std::vector<Entry> flushing_;
};

}  // namespace haven::net
