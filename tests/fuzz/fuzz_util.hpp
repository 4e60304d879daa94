// Helpers shared by the fuzz harnesses: deterministic split points derived from the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace haven::fuzz {

// Chunk sizes from a small PRNG seeded with a hash of the whole input: the same input always
// splits the same way (so a crash reproduces), while the corpus files stay plain XML that the
// mutator and the dictionary work on directly.
class Splitter {
public:
    explicit Splitter(std::string_view input) {
        std::uint64_t h = 1469598103934665603ull;  // FNV-1a
        for (unsigned char c : input) {
            h = (h ^ c) * 1099511628211ull;
        }
        state_ = h | 1;
    }
    // xorshift64*
    std::uint64_t next() {
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return state_ * 2685821657736338717ull;
    }
    // A chunk length in [1, left]: mostly small (byte-by-byte splits find the most state bugs),
    // sometimes everything at once.
    std::size_t chunk(std::size_t left) {
        const std::uint64_t r = next();
        std::size_t n = 0;
        switch (r % 4) {
            case 0: n = 1 + (r >> 8) % 4; break;
            case 1: n = 1 + (r >> 8) % 64; break;
            case 2: n = 1 + (r >> 8) % 1024; break;
            default: n = left; break;
        }
        return n < left ? n : left;
    }

private:
    std::uint64_t state_;
};

}  // namespace haven::fuzz
