// Random identifiers (stanza ids, command sessions, meeting ids): hex of libsodium bytes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <sodium.h>

namespace haven {

// 2 * bytes lower-case hex digits, unpredictable (randombytes_buf).
inline std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    randombytes_buf(raw.data(), raw.size());
    std::string out(2 * bytes + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), raw.data(), raw.size());
    out.pop_back();  // sodium writes a terminating NUL
    return out;
}

}  // namespace haven
