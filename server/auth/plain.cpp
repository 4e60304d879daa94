// SASL PLAIN (RFC 4616 §2) message parsing.
#include "server/auth/plain.hpp"

#include <unicode/utf8.h>

#include <cstdint>

namespace haven::auth {
namespace {

bool valid_field(std::string_view s) {
    if (s.size() > max_plain_field) {
        return false;
    }
    const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
    const auto len = static_cast<std::int32_t>(s.size());
    for (std::int32_t i = 0; i < len;) {
        UChar32 c = 0;
        U8_NEXT(p, i, len, c);
        if (c < 0) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::optional<PlainMessage> parse_plain(std::string_view msg) {
    const auto first = msg.find('\0');
    if (first == std::string_view::npos) {
        return std::nullopt;
    }
    const auto second = msg.find('\0', first + 1);
    if (second == std::string_view::npos || msg.find('\0', second + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    const auto authzid = msg.substr(0, first);
    const auto authcid = msg.substr(first + 1, second - first - 1);
    const auto password = msg.substr(second + 1);
    if (authcid.empty() || password.empty() || !valid_field(authzid) || !valid_field(authcid) ||
        !valid_field(password)) {
        return std::nullopt;
    }
    return PlainMessage{std::string(authzid), std::string(authcid), std::string(password)};
}

}  // namespace haven::auth
