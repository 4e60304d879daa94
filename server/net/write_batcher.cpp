// WriteBatcher: one deferred flush for all connections of a loop.
#include "server/net/write_batcher.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>

namespace haven::net {

WriteBatcher::WriteBatcher(boost::asio::any_io_executor executor, unsigned turns)
    : executor_(std::move(executor)), turns_(std::max(1u, turns)) {}

void WriteBatcher::schedule(Flushable& target, std::shared_ptr<void> owner) {
    pending_.push_back(Entry{&target, std::move(owner)});
    if (!posted_) {
        posted_ = true;
        waited_ = 0;
        post_turn();
    }
}

void WriteBatcher::post_turn() {
    boost::asio::post(executor_, [this] { on_turn(); });
}

void WriteBatcher::on_turn() {
    if (++waited_ < turns_) {
        post_turn();  // behind the reactor's next poll: one more turn
        return;
    }
    posted_ = false;
    // Flushing may queue more (a failed write closes a stream, which writes its goodbye): those
    // go into the fresh pending_ list and a new round.
    flushing_.swap(pending_);
    for (auto& e : flushing_) {
        e.target->run_scheduled_flush();
    }
    flushing_.clear();  // releases the owners; a closed session may end here
}

}  // namespace haven::net
