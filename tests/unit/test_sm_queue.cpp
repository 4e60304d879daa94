// Unit tests for the XEP-0198 acknowledgement arithmetic (xeps/xep0198_queue.hpp): counts
// modulo 2^32, old acks, acks beyond what was sent.
#include <doctest/doctest.h>

#include <limits>

#include "xeps/xep0198_queue.hpp"

using haven::xeps::UnackedQueue;

TEST_CASE("XEP-0198 §4: an ack drops exactly the stanzas it covers") {
    UnackedQueue q;
    for (int i = 0; i < 5; ++i) {
        q.push("s" + std::to_string(i), i % 2 == 0);
    }
    CHECK(q.sent_count() == 5);
    CHECK(q.ack(2) == UnackedQueue::Ack::Ok);
    REQUIRE(q.size() == 3);
    CHECK(q.items().front().bytes == "s2");
    CHECK(q.bytes() == 6);
    CHECK(q.ack(2) == UnackedQueue::Ack::Ok);  // the same ack again: nothing more
    CHECK(q.size() == 3);
    CHECK(q.ack(1) == UnackedQueue::Ack::Ok);  // an older one: harmless
    CHECK(q.size() == 3);
    CHECK(q.ack(5) == UnackedQueue::Ack::Ok);
    CHECK(q.size() == 0);
    CHECK(q.bytes() == 0);
}

TEST_CASE("XEP-0198 §4: acknowledging more than was sent is an error and changes nothing") {
    UnackedQueue q;
    q.push("a", true);
    CHECK(q.ack(2) == UnackedQueue::Ack::TooHigh);
    CHECK(q.size() == 1);
    CHECK(q.acked() == 0);
}

TEST_CASE("XEP-0198 §4: h wraps around at 2^32") {
    constexpr auto max = std::numeric_limits<std::uint32_t>::max();
    UnackedQueue q(max - 2);  // three stanzas before the wrap
    for (int i = 0; i < 6; ++i) {
        q.push("s" + std::to_string(i), false);
    }
    CHECK(q.sent_count() == 3);                  // (2^32 - 3 + 6) mod 2^32
    CHECK(q.ack(max) == UnackedQueue::Ack::Ok);  // two of them
    CHECK(q.size() == 4);
    CHECK(q.ack(1) == UnackedQueue::Ack::Ok);  // past the wrap: two more
    REQUIRE(q.size() == 2);
    CHECK(q.items().front().bytes == "s4");
    CHECK(q.ack(max - 1) == UnackedQueue::Ack::Ok);  // an old ack from before the wrap
    CHECK(q.size() == 2);
    CHECK(q.ack(4) == UnackedQueue::Ack::TooHigh);
    CHECK(q.ack(3) == UnackedQueue::Ack::Ok);
    CHECK(q.size() == 0);
}

TEST_CASE("take() hands over everything unacknowledged, in order") {
    UnackedQueue q;
    q.push("m1", true);
    q.push("p", false);
    auto items = q.take();
    REQUIRE(items.size() == 2);
    CHECK(items[0].reroute);
    CHECK_FALSE(items[1].reroute);
    CHECK(q.size() == 0);
    CHECK(q.bytes() == 0);
    CHECK(q.sent_count() == 0);  // what was taken is not counted as acknowledged
}
