// Jid: an XMPP address per RFC 7622, parsed and normalised once at the edge (PRECIS + IDNA2008).
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace haven {

// A normalised JID. Every Jid other than the default-constructed empty one is valid, and its parts
// are already in their canonical form, so comparison is plain string comparison (RFC 7622 §3.1).
//
// Canonical forms:
//   localpart    PRECIS UsernameCaseMapped (RFC 8265 §3.3) plus the RFC 7622 §3.3.1 exclusions.
//   domainpart   lower case; one trailing dot stripped; IDNs stored as U-labels in UTF-8 (A-labels
//                such as "xn--mller-kva.de" are converted, so both spellings compare equal); IP
//                literals in their inet_ntop form ("[::1]", "192.0.2.1").
//   resourcepart PRECIS OpaqueString (RFC 8265 §4.2): case and spaces preserved.
class Jid {
public:
    // RFC 7622 §3.2.1, §3.3.1, §3.4.1: every part is 1..1023 octets after normalisation.
    static constexpr std::size_t max_part_octets = 1023;

    Jid() = default;  // the empty Jid: no domain; never produced by parse() or make()

    // Splits per RFC 7622 §3.2 (resource at the first '/', then localpart at the first '@' before
    // it), normalises each part, and returns nullopt for anything invalid, including bad UTF-8.
    static std::optional<Jid> parse(std::string_view s);

    // Builds a Jid from unescaped parts; an empty local or resource means "absent".
    static std::optional<Jid> make(std::string_view local, std::string_view domain,
                                   std::string_view resource = {});

    const std::string& local() const { return local_; }
    const std::string& domain() const { return domain_; }
    const std::string& resource() const { return resource_; }

    bool empty() const { return domain_.empty(); }
    bool is_bare() const { return resource_.empty(); }
    bool is_domain() const { return local_.empty() && resource_.empty(); }

    Jid bare() const;  // the same address without its resource
    std::optional<Jid> with_resource(std::string_view resource) const;

    const std::string& str() const { return full_; }  // "local@domain/resource", built once
    std::string bare_str() const;

    friend bool operator==(const Jid& a, const Jid& b) { return a.full_ == b.full_; }
    // Ordered by domain, then localpart, then resource, so sorted containers group by host and
    // account. Consistent with ==: full_ is a one-to-one encoding of the three parts.
    friend std::strong_ordering operator<=>(const Jid& a, const Jid& b);

private:
    Jid(std::string local, std::string domain, std::string resource);

    std::string local_;
    std::string domain_;
    std::string resource_;
    std::string full_;
};

}  // namespace haven

template <>
struct std::hash<haven::Jid> {
    std::size_t operator()(const haven::Jid& j) const noexcept {
        return std::hash<std::string>{}(j.str());
    }
};
