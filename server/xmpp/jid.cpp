// Jid normalisation per RFC 7622: PRECIS (RFC 8264/8265) in precis.cpp, IDNA2008 via libidn2.
#include "server/xmpp/jid.hpp"

#include "server/xmpp/precis.hpp"

#include <arpa/inet.h>
#include <idn2.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

namespace haven {
namespace {

// Mapping shrinks a part by at most 3x (a fullwidth letter is 3 octets, its ASCII form 1), so a
// raw part longer than this can never normalise to max_part_octets. Checking it first bounds the
// ICU and libidn2 work a hostile peer can cause per JID (precis::localpart does the same).
constexpr std::size_t max_raw_part_octets = 4 * Jid::max_part_octets;

// RFC 1034 §3.1 / RFC 5890 §2.3.2.1: a DNS label is at most 63 octets (A-label form for IDNs).
constexpr std::size_t max_label_octets = 63;

bool is_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// --- domainpart (RFC 7622 §3.2) ----------------------------------------------------------------

// Labels after IDNA processing are ASCII: LDH labels and A-labels (RFC 5890 §2.3.1), plus '_',
// which is not a hostname character but is tolerated because internal component names use it.
// Everything else (space, '<', ':', controls) can never reach DNS and is refused.
bool ascii_label_ok(std::string_view label) {
    if (label.empty() || label.size() > max_label_octets) {
        return false;
    }
    if (label.front() == '-' || label.back() == '-') {
        return false;  // RFC 5891 §4.2.3.1, RFC 1123 §2.1
    }
    return std::all_of(label.begin(), label.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

template <typename F>
bool all_labels(std::string_view domain, F&& ok) {
    for (;;) {
        const std::size_t dot = domain.find('.');
        if (!ok(domain.substr(0, dot))) {
            return false;
        }
        if (dot == std::string_view::npos) {
            return true;
        }
        domain.remove_prefix(dot + 1);
    }
}

struct IdnFree {
    void operator()(void* p) const { idn2_free(p); }
};

// IDNA2008 (RFC 5891) through libidn2 with TR46 off, so the strict IDNA2008 rules apply. The
// A-label result is checked label by label (libidn2 passes ASCII labels through unchecked), and
// the U-label form is what we store: XMPP carries domains as UTF-8 and RFC 7622 §3.2.3 compares
// them as U-labels.
std::optional<std::string> normalize_idn(const std::string& s) {
    if (s.find('\0') != std::string::npos) {
        return std::nullopt;  // libidn2 takes C strings
    }
    uint8_t* alabel_raw = nullptr;
    const int rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(s.c_str()), &alabel_raw,
                                  IDN2_NFC_INPUT | IDN2_NO_TR46);
    const std::unique_ptr<uint8_t, IdnFree> alabel(alabel_raw);
    if (rc != IDN2_OK || !alabel) {
        return std::nullopt;
    }
    const std::string_view ascii(reinterpret_cast<const char*>(alabel.get()));
    if (ascii.size() > Jid::max_part_octets || !all_labels(ascii, ascii_label_ok)) {
        return std::nullopt;
    }
    char* ulabel_raw = nullptr;
    const int rc2 =
        idn2_to_unicode_8z8z(reinterpret_cast<const char*>(alabel.get()), &ulabel_raw, 0);
    const std::unique_ptr<char, IdnFree> ulabel(ulabel_raw);
    if (rc2 != IDN2_OK || !ulabel) {
        return std::nullopt;
    }
    std::string out(ulabel.get());
    if (out.empty() || out.size() > Jid::max_part_octets) {
        return std::nullopt;
    }
    return out;
}

// RFC 7622 §3.2 allows IP literals: "[IPv6]" (RFC 3986 IP-literal, without IPvFuture or zone)
// and dotted-quad IPv4. Both are stored in inet_ntop form so equal addresses compare equal.
std::optional<std::string> normalize_ipv6_literal(const std::string& s) {
    if (s.size() < 3 || s.back() != ']') {
        return std::nullopt;
    }
    const std::string inner = s.substr(1, s.size() - 2);
    in6_addr addr{};
    char buf[INET6_ADDRSTRLEN] = {};
    if (inet_pton(AF_INET6, inner.c_str(), &addr) != 1 ||
        inet_ntop(AF_INET6, &addr, buf, sizeof buf) == nullptr) {
        return std::nullopt;
    }
    return "[" + std::string(buf) + "]";
}

std::optional<std::string> normalize_ipv4(const std::string& s) {
    in_addr addr{};
    char buf[INET_ADDRSTRLEN] = {};
    if (inet_pton(AF_INET, s.c_str(), &addr) != 1 ||
        inet_ntop(AF_INET, &addr, buf, sizeof buf) == nullptr) {
        return std::nullopt;
    }
    return std::string(buf);
}

std::optional<std::string> normalize_domain(std::string_view in) {
    if (in.empty() || in.size() > max_raw_part_octets) {
        return std::nullopt;
    }
    // RFC 7622 §3.2.2 mapping ahead of IDNA2008 (as RFC 5895 §2): width, lower case, NFC.
    auto mapped = precis::map_for_idna(in);
    if (!mapped) {
        return std::nullopt;
    }
    std::string s = std::move(*mapped);
    // RFC 7622 §3.2: a final label separator is stripped before the domainpart is used.
    if (!s.empty() && s.back() == '.') {
        s.pop_back();
    }
    if (s.empty()) {
        return std::nullopt;
    }
    if (s.front() == '[') {
        return normalize_ipv6_literal(s);
    }
    if (!is_ascii(s)) {
        return normalize_idn(s);
    }
    // Fast path for ASCII names. A numeric final label cannot be a TLD (RFC 3696 §2), so such a
    // name must be an IPv4 address or nothing.
    const std::string_view tail = std::string_view(s).substr(s.rfind('.') + 1);
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!tail.empty() && std::all_of(tail.begin(), tail.end(), is_digit)) {
        return normalize_ipv4(s);
    }
    if (s.size() > Jid::max_part_octets || !all_labels(s, ascii_label_ok)) {
        return std::nullopt;
    }
    // A-labels are converted so that "xn--mller-kva.de" and "müller.de" are one domain.
    const bool has_alabel = !all_labels(s, [](std::string_view label) {
        return label.substr(0, 4) != "xn--";
    });
    if (has_alabel) {
        return normalize_idn(s);
    }
    return s;
}

}  // namespace

Jid::Jid(std::string local, std::string domain, std::string resource)
    : local_(std::move(local)), domain_(std::move(domain)), resource_(std::move(resource)) {
    full_.reserve(local_.size() + domain_.size() + resource_.size() + 2);
    if (!local_.empty()) {
        full_ += local_;
        full_ += '@';
    }
    full_ += domain_;
    if (!resource_.empty()) {
        full_ += '/';
        full_ += resource_;
    }
}

std::optional<Jid> Jid::make(std::string_view local, std::string_view domain,
                             std::string_view resource) {
    std::string l;
    if (!local.empty()) {
        auto n = precis::localpart(local);
        if (!n) {
            return std::nullopt;
        }
        l = std::move(*n);
    }
    auto d = normalize_domain(domain);
    if (!d) {
        return std::nullopt;
    }
    std::string r;
    if (!resource.empty()) {
        auto n = precis::resourcepart(resource);
        if (!n) {
            return std::nullopt;
        }
        r = std::move(*n);
    }
    return Jid(std::move(l), std::move(*d), std::move(r));
}

std::optional<Jid> Jid::parse(std::string_view s) {
    if (s.empty() || s.size() > 3 * max_raw_part_octets + 2) {
        return std::nullopt;
    }
    // RFC 7622 §3.2: the resourcepart starts after the first '/', and only then is the localpart
    // split off at the first '@', so "a.example.com/b@example.net" has no localpart.
    std::string_view rest = s;
    std::string_view resource;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        resource = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
        if (resource.empty()) {
            return std::nullopt;  // RFC 7622 §3.4.1: a '/' demands a non-empty resourcepart
        }
    }
    std::string_view local;
    if (const auto at = rest.find('@'); at != std::string_view::npos) {
        local = rest.substr(0, at);
        rest = rest.substr(at + 1);
        if (local.empty()) {
            return std::nullopt;  // RFC 7622 §3.3.1: an '@' demands a non-empty localpart
        }
    }
    return make(local, rest, resource);
}

Jid Jid::bare() const {
    if (resource_.empty()) {
        return *this;
    }
    return Jid(local_, domain_, {});
}

std::optional<Jid> Jid::with_resource(std::string_view resource) const {
    if (empty()) {
        return std::nullopt;
    }
    auto r = precis::resourcepart(resource);
    if (!r) {
        return std::nullopt;
    }
    return Jid(local_, domain_, std::move(*r));
}

std::string Jid::bare_str() const {
    if (resource_.empty()) {
        return full_;
    }
    return full_.substr(0, full_.size() - resource_.size() - 1);
}

std::strong_ordering operator<=>(const Jid& a, const Jid& b) {
    if (auto c = a.domain_ <=> b.domain_; c != 0) {
        return c;
    }
    if (auto c = a.local_ <=> b.local_; c != 0) {
        return c;
    }
    return a.resource_ <=> b.resource_;
}

}  // namespace haven
