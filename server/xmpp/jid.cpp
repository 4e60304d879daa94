// Jid normalisation per RFC 7622: PRECIS (RFC 8264/8265) through ICU, IDNA2008 through libidn2.
#include "server/xmpp/jid.hpp"

#include <arpa/inet.h>
#include <idn2.h>
#include <netinet/in.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

namespace haven {
namespace {

// Mapping shrinks a part by at most 3x (a fullwidth letter is 3 octets, its ASCII form 1), so a
// raw part longer than this can never normalise to max_part_octets. Checking it first bounds the
// ICU and libidn2 work a hostile peer can cause per JID.
constexpr std::size_t max_raw_part_octets = 4 * Jid::max_part_octets;

// RFC 1034 §3.1 / RFC 5890 §2.3.2.1: a DNS label is at most 63 octets (A-label form for IDNs).
constexpr std::size_t max_label_octets = 63;

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// RFC 7622 §3.3.1: characters that would make a localpart ambiguous in URIs, mail addresses or
// the JID syntax itself, excluded on top of what UsernameCaseMapped allows.
bool excluded_from_localpart(char32_t c) {
    switch (c) {
    case U'"':
    case U'&':
    case U'\'':
    case U'/':
    case U':':
    case U'<':
    case U'>':
    case U'@':
        return true;
    default:
        return false;
    }
}

// --- ICU plumbing -------------------------------------------------------------------------------

struct Normalizers {
    const icu::Normalizer2* nfc = nullptr;
    const icu::Normalizer2* nfkc = nullptr;
};

// ICU's normaliser singletons are immutable and thread-safe; a failure here means a broken ICU
// install, in which case every non-ASCII part is rejected rather than mis-normalised.
const Normalizers* normalizers() {
    static const Normalizers instance = [] {
        Normalizers n;
        UErrorCode err = U_ZERO_ERROR;
        n.nfc = icu::Normalizer2::getNFCInstance(err);
        n.nfkc = icu::Normalizer2::getNFKCInstance(err);
        if (U_FAILURE(err)) {
            n.nfc = n.nfkc = nullptr;
        }
        return n;
    }();
    return instance.nfc != nullptr ? &instance : nullptr;
}

// Strict decoding: ICU's UnicodeString::fromUTF8 would silently substitute U+FFFD, whereas
// u_strFromUTF8 reports ill-formed input (overlongs, surrogates, truncation) as an error.
std::optional<icu::UnicodeString> from_utf8(std::string_view s) {
    UErrorCode err = U_ZERO_ERROR;
    int32_t len = 0;
    const auto n = static_cast<int32_t>(s.size());  // bounded by max_raw_part_octets
    u_strFromUTF8(nullptr, 0, &len, s.data(), n, &err);
    if (U_FAILURE(err) && err != U_BUFFER_OVERFLOW_ERROR) {
        return std::nullopt;
    }
    icu::UnicodeString out;
    UChar* buf = out.getBuffer(len);
    if (buf == nullptr) {
        return std::nullopt;
    }
    err = U_ZERO_ERROR;
    u_strFromUTF8(buf, len, &len, s.data(), n, &err);
    out.releaseBuffer(U_SUCCESS(err) ? len : 0);
    if (U_FAILURE(err)) {
        return std::nullopt;
    }
    return out;
}

std::string to_utf8(const icu::UnicodeString& s) {
    std::string out;
    s.toUTF8String(out);
    return out;
}

std::u32string code_points(const icu::UnicodeString& s) {
    std::u32string out;
    out.reserve(static_cast<std::size_t>(s.length()));
    for (int32_t i = 0; i < s.length();) {
        const UChar32 c = s.char32At(i);
        out.push_back(static_cast<char32_t>(c));
        i += U16_LENGTH(c);
    }
    return out;
}

// RFC 8264 §5.2.1 width mapping: fullwidth and halfwidth code points map to their decomposition
// (the <wide>/<narrow> compatibility mappings), e.g. U+FF41 to "a".
icu::UnicodeString map_width(const icu::UnicodeString& in, const Normalizers& norm) {
    icu::UnicodeString out;
    for (int32_t i = 0; i < in.length();) {
        const UChar32 c = in.char32At(i);
        i += U16_LENGTH(c);
        const int32_t type = u_getIntPropertyValue(c, UCHAR_DECOMPOSITION_TYPE);
        icu::UnicodeString mapped;
        const bool width = type == U_DT_WIDE || type == U_DT_NARROW;
        if (width && norm.nfkc->getRawDecomposition(c, mapped)) {
            out.append(mapped);
        } else {
            out.append(c);
        }
    }
    return out;
}

// --- PRECIS string classes (RFC 8264) ----------------------------------------------------------

enum class StringClass { Identifier, Freeform };

// The derived property values of RFC 8264 §9, with ID_DIS/FREE_PVAL collapsed into FreeformOnly.
enum class Derived { Pvalid, FreeformOnly, ContextJ, ContextO, Disallowed };

// RFC 5892 §2.6 "Exceptions (F)": a short fixed list from the IDNA2008 spec itself, not a
// Unicode property table, so it has to be spelled out here.
std::optional<Derived> exception_value(char32_t c) {
    switch (c) {
    case 0x00DF:  // LATIN SMALL LETTER SHARP S
    case 0x03C2:  // GREEK SMALL LETTER FINAL SIGMA
    case 0x06FD:
    case 0x06FE:
    case 0x0F0B:
    case 0x3007:
        return Derived::Pvalid;
    case 0x00B7:  // MIDDLE DOT
    case 0x0375:  // GREEK LOWER NUMERAL SIGN
    case 0x05F3:  // HEBREW PUNCTUATION GERESH
    case 0x05F4:  // HEBREW PUNCTUATION GERSHAYIM
    case 0x30FB:  // KATAKANA MIDDLE DOT
        return Derived::ContextO;
    case 0x0640:  // ARABIC TATWEEL
    case 0x07FA:  // NKO LAJANYALAN
    case 0x302E:
    case 0x302F:
    case 0x3031:
    case 0x3032:
    case 0x3033:
    case 0x3034:
    case 0x3035:
    case 0x303B:
        return Derived::Disallowed;
    default:
        break;
    }
    if ((c >= 0x0660 && c <= 0x0669) || (c >= 0x06F0 && c <= 0x06F9)) {
        return Derived::ContextO;  // Arabic-Indic digits, RFC 5892 A.8/A.9
    }
    return std::nullopt;
}

// RFC 8264 §8 (categories defined in §9): an ordered ladder where the first matching rule
// decides. The order matters, e.g. U+2163 ROMAN NUMERAL FOUR is Nl but HasCompat comes first.
Derived derive(char32_t cp, const Normalizers& norm) {
    if (auto e = exception_value(cp)) {
        return *e;
    }
    // BackwardCompatible is empty.
    const auto c = static_cast<UChar32>(cp);
    const int8_t gc = u_charType(c);
    if (gc == U_UNASSIGNED && !u_hasBinaryProperty(c, UCHAR_NONCHARACTER_CODE_POINT)) {
        return Derived::Disallowed;  // Unassigned
    }
    if (cp >= 0x21 && cp <= 0x7E) {
        return Derived::Pvalid;  // ASCII7
    }
    if (u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL)) {
        return Derived::ContextJ;  // JoinControl
    }
    const int32_t hst = u_getIntPropertyValue(c, UCHAR_HANGUL_SYLLABLE_TYPE);
    if (hst == U_HST_LEADING_JAMO || hst == U_HST_VOWEL_JAMO || hst == U_HST_TRAILING_JAMO) {
        return Derived::Disallowed;  // OldHangulJamo
    }
    if (u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) ||
        u_hasBinaryProperty(c, UCHAR_NONCHARACTER_CODE_POINT)) {
        return Derived::Disallowed;  // PrecisIgnorableProperties
    }
    if (gc == U_CONTROL_CHAR) {
        return Derived::Disallowed;  // Controls
    }
    UErrorCode err = U_ZERO_ERROR;
    if (!norm.nfkc->isNormalized(icu::UnicodeString(c), err)) {
        return Derived::FreeformOnly;  // HasCompat: toNFKC(cp) != cp
    }
    switch (gc) {
    case U_LOWERCASE_LETTER:
    case U_UPPERCASE_LETTER:
    case U_OTHER_LETTER:
    case U_DECIMAL_DIGIT_NUMBER:
    case U_MODIFIER_LETTER:
    case U_NON_SPACING_MARK:
    case U_COMBINING_SPACING_MARK:
        return Derived::Pvalid;  // LetterDigits
    case U_TITLECASE_LETTER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
    case U_ENCLOSING_MARK:        // OtherLetterDigits
    case U_SPACE_SEPARATOR:       // Spaces
    case U_MATH_SYMBOL:
    case U_CURRENCY_SYMBOL:
    case U_MODIFIER_SYMBOL:
    case U_OTHER_SYMBOL:          // Symbols
    case U_CONNECTOR_PUNCTUATION:
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
    case U_OTHER_PUNCTUATION:     // Punctuation
        return Derived::FreeformOnly;
    default:
        return Derived::Disallowed;  // Zl, Zp, Cf, Co, Cs, ...
    }
}

bool is_virama(char32_t c) {
    return u_getCombiningClass(static_cast<UChar32>(c)) == 9;  // Canonical_Combining_Class=Virama
}

int32_t joining_type(char32_t c) {
    return u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_JOINING_TYPE);
}

UScriptCode script_of(char32_t c) {
    UErrorCode err = U_ZERO_ERROR;
    return uscript_getScript(static_cast<UChar32>(c), &err);
}

// RFC 5892 Appendix A.1 and A.2: the joiners are only allowed where they affect rendering.
bool context_j_ok(const std::u32string& s, std::size_t i) {
    if (i > 0 && is_virama(s[i - 1])) {
        return true;
    }
    if (s[i] != 0x200C) {
        return false;  // ZWJ needs a preceding virama
    }
    // ZWNJ: (Joining_Type:{L,D})(Joining_Type:T)* ZWNJ (Joining_Type:T)*(Joining_Type:{R,D})
    std::size_t b = i;
    while (b > 0 && joining_type(s[b - 1]) == U_JT_TRANSPARENT) {
        --b;
    }
    if (b == 0) {
        return false;
    }
    const int32_t before = joining_type(s[b - 1]);
    if (before != U_JT_LEFT_JOINING && before != U_JT_DUAL_JOINING) {
        return false;
    }
    std::size_t a = i + 1;
    while (a < s.size() && joining_type(s[a]) == U_JT_TRANSPARENT) {
        ++a;
    }
    if (a == s.size()) {
        return false;
    }
    const int32_t after = joining_type(s[a]);
    return after == U_JT_RIGHT_JOINING || after == U_JT_DUAL_JOINING;
}

// RFC 5892 Appendix A.3-A.9.
bool context_o_ok(const std::u32string& s, std::size_t i) {
    const char32_t c = s[i];
    const bool has_before = i > 0;
    const bool has_after = i + 1 < s.size();
    if (c == 0x00B7) {  // MIDDLE DOT: only in Catalan "l·l"
        return has_before && has_after && s[i - 1] == U'l' && s[i + 1] == U'l';
    }
    if (c == 0x0375) {  // GREEK KERAIA: before a Greek character
        return has_after && script_of(s[i + 1]) == USCRIPT_GREEK;
    }
    if (c == 0x05F3 || c == 0x05F4) {  // GERESH, GERSHAYIM: after a Hebrew character
        return has_before && script_of(s[i - 1]) == USCRIPT_HEBREW;
    }
    if (c == 0x30FB) {  // KATAKANA MIDDLE DOT: somewhere near Japanese script
        return std::any_of(s.begin(), s.end(), [](char32_t o) {
            if (o == 0x30FB) {
                return false;
            }
            const UScriptCode sc = script_of(o);
            return sc == USCRIPT_HIRAGANA || sc == USCRIPT_KATAKANA || sc == USCRIPT_HAN;
        });
    }
    const auto in = [&s](char32_t lo, char32_t hi) {
        return std::any_of(s.begin(), s.end(), [lo, hi](char32_t o) { return o >= lo && o <= hi; });
    };
    if (c >= 0x0660 && c <= 0x0669) {  // the two Arabic-Indic digit sets must not be mixed
        return !in(0x06F0, 0x06F9);
    }
    if (c >= 0x06F0 && c <= 0x06F9) {
        return !in(0x0660, 0x0669);
    }
    return false;  // a CONTEXTO code point without a rule is disallowed
}

bool conforms(const std::u32string& s, StringClass cls, const Normalizers& norm) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        switch (derive(s[i], norm)) {
        case Derived::Pvalid:
            break;
        case Derived::FreeformOnly:
            if (cls != StringClass::Freeform) {
                return false;
            }
            break;
        case Derived::ContextJ:
            if (!context_j_ok(s, i)) {
                return false;
            }
            break;
        case Derived::ContextO:
            if (!context_o_ok(s, i)) {
                return false;
            }
            break;
        case Derived::Disallowed:
            return false;
        }
    }
    return true;
}

// RFC 5893 §2, which RFC 8265 §3.3.1 applies to usernames containing right-to-left code points.
bool bidi_rule_ok(const std::u32string& s) {
    const auto dir = [](char32_t c) { return u_charDirection(static_cast<UChar32>(c)); };
    const bool has_rtl = std::any_of(s.begin(), s.end(), [&dir](char32_t c) {
        const UCharDirection d = dir(c);
        return d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC || d == U_ARABIC_NUMBER;
    });
    if (!has_rtl || s.empty()) {
        return true;
    }
    // Condition 1. An LTR string (first character L) may only hold LTR-compatible classes
    // (condition 5), which a string with R/AL/AN code points never satisfies.
    const UCharDirection first = dir(s.front());
    if (first != U_RIGHT_TO_LEFT && first != U_RIGHT_TO_LEFT_ARABIC) {
        return false;
    }
    bool has_en = false;
    bool has_an = false;
    for (char32_t c : s) {
        switch (dir(c)) {  // condition 2
        case U_EUROPEAN_NUMBER:
            has_en = true;
            break;
        case U_ARABIC_NUMBER:
            has_an = true;
            break;
        case U_RIGHT_TO_LEFT:
        case U_RIGHT_TO_LEFT_ARABIC:
        case U_EUROPEAN_NUMBER_SEPARATOR:
        case U_COMMON_NUMBER_SEPARATOR:
        case U_EUROPEAN_NUMBER_TERMINATOR:
        case U_OTHER_NEUTRAL:
        case U_BOUNDARY_NEUTRAL:
        case U_DIR_NON_SPACING_MARK:
            break;
        default:
            return false;
        }
    }
    if (has_en && has_an) {
        return false;  // condition 4
    }
    auto last = s.rbegin();  // condition 3: end with R, AL, EN or AN, then any NSMs
    while (last != s.rend() && dir(*last) == U_DIR_NON_SPACING_MARK) {
        ++last;
    }
    if (last == s.rend()) {
        return false;
    }
    const UCharDirection d = dir(*last);
    return d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC || d == U_EUROPEAN_NUMBER ||
           d == U_ARABIC_NUMBER;
}

// --- localpart: UsernameCaseMapped (RFC 8265 §3.3) + RFC 7622 §3.3.1 ---------------------------

std::optional<std::string> normalize_local(std::string_view in) {
    if (in.empty() || in.size() > max_raw_part_octets) {
        return std::nullopt;
    }
    // Fast path: printable ASCII is PVALID (ASCII7), width mapping and NFC leave it unchanged and
    // no Bidi rule applies, so the whole profile reduces to ASCII lower-casing.
    if (std::all_of(in.begin(), in.end(), [](char c) { return c >= 0x21 && c <= 0x7E; })) {
        if (in.size() > Jid::max_part_octets) {
            return std::nullopt;
        }
        std::string out(in);
        for (char& c : out) {
            if (excluded_from_localpart(static_cast<char32_t>(c))) {
                return std::nullopt;
            }
            c = ascii_lower(c);
        }
        return out;
    }
    const Normalizers* norm = normalizers();
    if (norm == nullptr) {
        return std::nullopt;
    }
    auto decoded = from_utf8(in);
    if (!decoded) {
        return std::nullopt;
    }
    // Preparation (RFC 8265 §3.3.2): width mapping, then only IdentifierClass code points. The
    // class is checked before case mapping, so e.g. U+212A KELVIN SIGN is refused, not mapped.
    icu::UnicodeString s = map_width(*decoded, *norm);
    if (!conforms(code_points(s), StringClass::Identifier, *norm)) {
        return std::nullopt;
    }
    // Enforcement (RFC 8265 §3.3.3): case mapping (Unicode toLowerCase), NFC, Bidi rule.
    s.toLower(icu::Locale::getRoot());
    UErrorCode err = U_ZERO_ERROR;
    s = norm->nfc->normalize(s, err);
    if (U_FAILURE(err)) {
        return std::nullopt;
    }
    const std::u32string cps = code_points(s);
    if (!bidi_rule_ok(cps)) {
        return std::nullopt;
    }
    // The stored form must itself be a valid localpart, so str() re-parses to an equal Jid.
    if (!conforms(cps, StringClass::Identifier, *norm) ||
        std::any_of(cps.begin(), cps.end(), excluded_from_localpart)) {
        return std::nullopt;
    }
    std::string out = to_utf8(s);
    if (out.empty() || out.size() > Jid::max_part_octets) {
        return std::nullopt;
    }
    return out;
}

// --- resourcepart: OpaqueString (RFC 8265 §4.2) -------------------------------------------------

std::optional<std::string> normalize_resource(std::string_view in) {
    if (in.empty() || in.size() > max_raw_part_octets) {
        return std::nullopt;
    }
    // Fast path: printable ASCII and U+0020 are valid in FreeformClass and no mapping touches
    // them; OpaqueString preserves case.
    if (std::all_of(in.begin(), in.end(), [](char c) { return c >= 0x20 && c <= 0x7E; })) {
        if (in.size() > Jid::max_part_octets) {
            return std::nullopt;
        }
        return std::string(in);
    }
    const Normalizers* norm = normalizers();
    if (norm == nullptr) {
        return std::nullopt;
    }
    auto decoded = from_utf8(in);
    if (!decoded || !conforms(code_points(*decoded), StringClass::Freeform, *norm)) {
        return std::nullopt;  // preparation (RFC 8265 §4.2.2)
    }
    // Enforcement (RFC 8265 §4.2.3): non-ASCII spaces become U+0020, then NFC.
    icu::UnicodeString s;
    for (int32_t i = 0; i < decoded->length();) {
        const UChar32 c = decoded->char32At(i);
        i += U16_LENGTH(c);
        s.append(u_charType(c) == U_SPACE_SEPARATOR ? UChar32{0x20} : c);
    }
    UErrorCode err = U_ZERO_ERROR;
    s = norm->nfc->normalize(s, err);
    if (U_FAILURE(err) || !conforms(code_points(s), StringClass::Freeform, *norm)) {
        return std::nullopt;
    }
    std::string out = to_utf8(s);
    if (out.empty() || out.size() > Jid::max_part_octets) {
        return std::nullopt;
    }
    return out;
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
    std::string s;
    if (is_ascii(in)) {
        s.assign(in);
        std::transform(s.begin(), s.end(), s.begin(), ascii_lower);
    } else {
        // RFC 7622 §3.2.2 mapping ahead of IDNA2008 (as RFC 5895 §2): width, lower case, NFC.
        const Normalizers* norm = normalizers();
        auto decoded = norm != nullptr ? from_utf8(in) : std::nullopt;
        if (!decoded) {
            return std::nullopt;
        }
        icu::UnicodeString u = map_width(*decoded, *norm);
        u.toLower(icu::Locale::getRoot());
        UErrorCode err = U_ZERO_ERROR;
        u = norm->nfc->normalize(u, err);
        if (U_FAILURE(err)) {
            return std::nullopt;
        }
        s = to_utf8(u);
    }
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
        auto n = normalize_local(local);
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
        auto n = normalize_resource(resource);
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
    auto r = normalize_resource(resource);
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
