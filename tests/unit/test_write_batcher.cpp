// WriteBatcher: flushes wait the configured number of loop turns, run once per schedule, in
// order, release their owners, and a flush that schedules again lands in the next round.
#include "server/net/write_batcher.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

using haven::net::Flushable;
using haven::net::WriteBatcher;

namespace {

// Counts loop turns: a handler that re-posts itself runs once per pass through the queue, the
// same way the batcher's own deferral does.
struct Ticker {
    boost::asio::io_context& io;
    int ticks = 0;
    int limit = 20;
    void start() {
        boost::asio::post(io, [this] {
            ++ticks;
            if (ticks < limit) {
                start();
            }
        });
    }
};

struct Target final : Flushable {
    std::function<void()> on_flush;
    void run_scheduled_flush() override { on_flush(); }
};

}  // namespace

TEST_CASE("a flush waits the configured turns and runs each target once, in order") {
    for (unsigned turns : {1u, 2u, 3u, 7u}) {
        CAPTURE(turns);
        boost::asio::io_context io;
        Ticker ticker{io};
        WriteBatcher batcher(io.get_executor(), turns);
        std::vector<std::pair<int, int>> flushed;  // (target, tick)
        Target a, b;
        a.on_flush = [&] { flushed.emplace_back(1, ticker.ticks); };
        b.on_flush = [&] { flushed.emplace_back(2, ticker.ticks); };
        ticker.start();
        batcher.schedule(a, nullptr);
        batcher.schedule(b, nullptr);
        io.run();
        REQUIRE(flushed.size() == 2);
        CHECK(flushed[0] == std::pair{1, static_cast<int>(turns)});
        CHECK(flushed[1] == std::pair{2, static_cast<int>(turns)});
    }
}

TEST_CASE("zero turns means the end of the current turn") {
    boost::asio::io_context io;
    WriteBatcher batcher(io.get_executor(), 0);
    CHECK(batcher.turns() == 1);
    int flushes = 0;
    Target t;
    t.on_flush = [&] { ++flushes; };
    batcher.schedule(t, nullptr);
    CHECK(io.run() == 1);
    CHECK(flushes == 1);
}

TEST_CASE("the owner stays alive until the flush and is released after it") {
    boost::asio::io_context io;
    WriteBatcher batcher(io.get_executor(), 2);
    auto owner = std::make_shared<int>(42);
    std::weak_ptr<int> watch = owner;
    bool alive_at_flush = false;
    Target t;
    t.on_flush = [&] { alive_at_flush = !watch.expired(); };
    batcher.schedule(t, std::move(owner));
    io.run();
    CHECK(alive_at_flush);
    CHECK(watch.expired());
}

TEST_CASE("a target scheduled during a flush goes out in the next round") {
    boost::asio::io_context io;
    Ticker ticker{io};
    WriteBatcher batcher(io.get_executor(), 2);
    std::vector<int> ticks_at_flush;
    Target t;
    t.on_flush = [&] {
        ticks_at_flush.push_back(ticker.ticks);
        if (ticks_at_flush.size() < 3) {
            batcher.schedule(t, nullptr);  // e.g. a failed write queues the closing tag
        }
    };
    ticker.start();
    batcher.schedule(t, nullptr);
    io.run();
    CHECK(ticks_at_flush == std::vector<int>{2, 4, 6});
}

TEST_CASE("nothing scheduled, nothing posted") {
    boost::asio::io_context io;
    WriteBatcher batcher(io.get_executor(), 3);
    CHECK(io.run() == 0);
}
