// Strict base64 (RFC 4648 §4, padded, no whitespace) for SASL payloads (RFC 6120 §6.4.2).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace haven::auth {

std::string base64_encode(std::string_view bytes);

// Rejects anything that is not canonical padded base64: whitespace, missing or extra padding,
// characters outside the alphabet and non-zero trailing bits (RFC 4648 §3.3, §3.5). The empty
// string decodes to the empty string; RFC 6120 §6.4.2's "=" for an empty response is the
// session's business, not this function's.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace haven::auth
