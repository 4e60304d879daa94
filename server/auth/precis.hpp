// PRECIS profiles used by SASL (RFC 8264, RFC 8265): OpaqueString passwords, UsernameCaseMapped
// usernames with the XMPP localpart exclusions of RFC 7622 §3.3.1.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace haven::auth {

// RFC 8265 §4.2 OpaqueString: non-ASCII spaces become U+0020, NFC, FreeformClass only.
// nullopt for ill-formed UTF-8, an empty result, controls, default-ignorables, unassigned code
// points and the other DISALLOWED categories. Idempotent, so applying it twice is harmless.
std::optional<std::string> prepare_password(std::string_view password);

// RFC 8265 §3.3 UsernameCaseMapped (width mapping, lower case, NFC, Bidi Rule, IdentifierClass),
// then RFC 7622 §3.3.1: no "&'/:<>@ and at most 1023 octets. This is the form the user store is
// keyed by, so "User" and "user" are the same account.
std::optional<std::string> prepare_username(std::string_view username);

}  // namespace haven::auth
