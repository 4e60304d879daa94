// PRECIS string preparation (RFC 8264, RFC 8265) and the XMPP address parts built on it (RFC 7622).
#pragma once

#include <optional>
#include <string>
#include <string_view>

// The one implementation behind JID localparts and resourceparts and SASL usernames and passwords,
// so an account name means the same thing to SASL, XEP-0077 and routing. Every function returns
// nullopt for ill-formed UTF-8 (overlongs, surrogates, truncation) and for anything the profile
// refuses; outputs are idempotent: applying the same function again returns them unchanged.
namespace haven::precis {

// RFC 8265 §3.3 UsernameCaseMapped. Preparation (§3.3.2): width mapping, then IdentifierClass
// only, so e.g. U+212A KELVIN SIGN is refused rather than mapped to "k". Enforcement (§3.3.3):
// lower case, NFC, the RFC 5893 Bidi Rule, IdentifierClass again, not empty. CONTEXTJ and
// CONTEXTO code points are allowed where their RFC 5892 Appendix A rules hold.
std::optional<std::string> username_case_mapped(std::string_view s);

// RFC 8265 §4.2 OpaqueString. Preparation (§4.2.2): FreeformClass only. Enforcement (§4.2.3):
// non-ASCII spaces become U+0020, NFC, FreeformClass again, not empty. Case and width are kept.
// No length limit: passwords use this directly.
std::optional<std::string> opaque_string(std::string_view s);

// RFC 7622 §3.3: a JID localpart (also the SASL username and the account key). UsernameCaseMapped
// without the §3.3.1 exclusions "&'/:<>@, and 1..1023 octets.
std::optional<std::string> localpart(std::string_view s);

// RFC 7622 §3.4: a JID resourcepart. OpaqueString, 1..1023 octets.
std::optional<std::string> resourcepart(std::string_view s);

// RFC 7622 §3.2.2 asks domainparts to be mapped as in RFC 5895 §2 before IDNA2008: width
// mapping, lower case, NFC. Nothing is validated here; IDNA2008 does that.
std::optional<std::string> map_for_idna(std::string_view s);

}  // namespace haven::precis
