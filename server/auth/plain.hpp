// SASL PLAIN message parsing (RFC 4616 §2); offered only over TLS (RFC 6120 §13.8.3).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace haven::auth {

struct PlainMessage {
    std::string authzid;  // empty when absent
    std::string authcid;  // as sent: the caller runs prepare_username()
    std::string password;  // as sent: verify_plain() runs prepare_password()
};

// message = [authzid] UTF8NUL authcid UTF8NUL passwd. nullopt unless there are exactly two NULs,
// authcid and passwd are non-empty, every field is well-formed UTF-8 and no field is longer
// than max_plain_field octets (RFC 4616 §2 only requires accepting 255).
inline constexpr std::size_t max_plain_field = 1024;
std::optional<PlainMessage> parse_plain(std::string_view msg);

}  // namespace haven::auth
