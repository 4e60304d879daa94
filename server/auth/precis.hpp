// SASL string preparation (RFC 8265 for XMPP): names over the shared PRECIS code, so the account a
// SASL exchange names is exactly the JID localpart XEP-0077 registered and routing uses.
#pragma once

#include "server/xmpp/precis.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace haven::auth {

// RFC 8265 §4.2 OpaqueString: non-ASCII spaces become U+0020, NFC, FreeformClass only, no length
// limit. nullopt for ill-formed UTF-8, an empty result, controls, default-ignorables, unassigned
// code points and the other DISALLOWED categories. Idempotent, so applying it twice is harmless.
inline std::optional<std::string> prepare_password(std::string_view password) {
    return precis::opaque_string(password);
}

// RFC 8265 §3.3 UsernameCaseMapped (width mapping, lower case, NFC, Bidi Rule, IdentifierClass),
// then RFC 7622 §3.3.1: no "&'/:<>@ and at most 1023 octets. This is the form the user store is
// keyed by, so "User" and "user" are the same account.
inline std::optional<std::string> prepare_username(std::string_view username) {
    return precis::localpart(username);
}

}  // namespace haven::auth
