// PRECIS (RFC 8264 §8-9, RFC 8265 §3.3, §4.2) and RFC 7622 address parts on ICU properties.
#include "server/xmpp/precis.hpp"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace haven::precis {
namespace {

// RFC 7622 §3.3.1, §3.4.1: a localpart or resourcepart is at most 1023 octets once prepared.
constexpr std::size_t max_part_octets = 1023;

// Mapping shrinks a string by at most 3x (a fullwidth letter is 3 octets, its ASCII form 1), so
// a raw part longer than this can never prepare to max_part_octets. Checking it first bounds the
// ICU work a hostile peer can cause per JID.
constexpr std::size_t max_raw_part_octets = 4 * max_part_octets;

// The ASCII fast paths: Jid::parse runs on every stanza and nearly every part is plain ASCII.
// Printable ASCII is PVALID (RFC 8264 §9.11 ASCII7) and U+0020 is a FreeformClass space; width
// mapping, NFC and the space mapping leave both unchanged, and no Bidi Rule applies to them.
bool all_ascii_between(std::string_view s, char lo, char hi) {
    return std::all_of(s.begin(), s.end(), [lo, hi](char c) { return c >= lo && c <= hi; });
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 7622 §3.3.1: characters that would make a localpart ambiguous in URIs, mail addresses or
// the JID syntax itself, excluded on top of what UsernameCaseMapped allows.
bool excluded_from_localpart(char c) {
    switch (c) {
        case '"':
        case '&':
        case '\'':
        case '/':
        case ':':
        case '<':
        case '>':
        case '@':
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
// install, in which case every non-ASCII string is refused rather than mis-prepared.
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
    if (s.size() > static_cast<std::size_t>(std::numeric_limits<int32_t>::max())) {
        return std::nullopt;
    }
    UErrorCode err = U_ZERO_ERROR;
    int32_t len = 0;
    const auto n = static_cast<int32_t>(s.size());
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

std::optional<icu::UnicodeString> nfc(const icu::UnicodeString& s, const Normalizers& norm) {
    UErrorCode err = U_ZERO_ERROR;
    icu::UnicodeString out = norm.nfc->normalize(s, err);
    if (U_FAILURE(err)) {
        return std::nullopt;
    }
    return out;
}

// --- PRECIS string classes (RFC 8264) ----------------------------------------------------------

enum class StringClass { Identifier, Freeform };

// The derived property values of RFC 8264 §9, with ID_DIS/FREE_PVAL collapsed into FreeformOnly.
enum class Derived { Pvalid, FreeformOnly, ContextJ, ContextO, Disallowed };

// RFC 5892 §2.6 "Exceptions (F)", which RFC 8264 §9.6 adopts: a short fixed list from the
// IDNA2008 spec itself, not a Unicode property table, so it has to be spelled out here.
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
    if (!norm.nfkc->isNormalized(icu::UnicodeString(c), err) || U_FAILURE(err)) {
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
        case U_ENCLOSING_MARK:   // OtherLetterDigits
        case U_SPACE_SEPARATOR:  // Spaces
        case U_MATH_SYMBOL:
        case U_CURRENCY_SYMBOL:
        case U_MODIFIER_SYMBOL:
        case U_OTHER_SYMBOL:  // Symbols
        case U_CONNECTOR_PUNCTUATION:
        case U_DASH_PUNCTUATION:
        case U_START_PUNCTUATION:
        case U_END_PUNCTUATION:
        case U_INITIAL_PUNCTUATION:
        case U_FINAL_PUNCTUATION:
        case U_OTHER_PUNCTUATION:  // Punctuation
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

// RFC 8264 §4.2.1, §4.3.1: every code point valid in the class, or allowed by its context rule.
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

// RFC 5893 §2, which RFC 8265 §3.3.1 rule 5 applies to strings with right-to-left code points
// (R, AL or AN: an "RTL label" in RFC 5893 §1.4).
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

}  // namespace

std::optional<std::string> username_case_mapped(std::string_view in) {
    if (in.empty()) {
        return std::nullopt;
    }
    if (all_ascii_between(in, 0x21, 0x7E)) {
        std::string out(in);
        std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
        return out;
    }
    const Normalizers* norm = normalizers();
    auto decoded = norm != nullptr ? from_utf8(in) : std::nullopt;
    if (!decoded) {
        return std::nullopt;
    }
    // Preparation (§3.3.2): the class is checked after width mapping but before case mapping.
    icu::UnicodeString s = map_width(*decoded, *norm);
    if (!conforms(code_points(s), StringClass::Identifier, *norm)) {
        return std::nullopt;
    }
    // Enforcement (§3.3.3): Unicode toLowerCase (not case folding, so ß stays), NFC, Bidi Rule,
    // and RFC 8264 §7 checks the class once more on the result.
    s.toLower(icu::Locale::getRoot());
    auto enforced = nfc(s, *norm);
    if (!enforced) {
        return std::nullopt;
    }
    const std::u32string cps = code_points(*enforced);
    if (cps.empty() || !bidi_rule_ok(cps) || !conforms(cps, StringClass::Identifier, *norm)) {
        return std::nullopt;
    }
    return to_utf8(*enforced);
}

std::optional<std::string> opaque_string(std::string_view in) {
    if (in.empty()) {
        return std::nullopt;
    }
    if (all_ascii_between(in, 0x20, 0x7E)) {
        return std::string(in);
    }
    const Normalizers* norm = normalizers();
    auto decoded = norm != nullptr ? from_utf8(in) : std::nullopt;
    if (!decoded || !conforms(code_points(*decoded), StringClass::Freeform, *norm)) {
        return std::nullopt;  // preparation (§4.2.2)
    }
    // Enforcement (§4.2.3): non-ASCII spaces become U+0020 (§4.2.1), NFC, the class again.
    icu::UnicodeString s;
    for (int32_t i = 0; i < decoded->length();) {
        const UChar32 c = decoded->char32At(i);
        i += U16_LENGTH(c);
        s.append(u_charType(c) == U_SPACE_SEPARATOR ? UChar32{0x20} : c);
    }
    auto enforced = nfc(s, *norm);
    if (!enforced || enforced->isEmpty() ||
        !conforms(code_points(*enforced), StringClass::Freeform, *norm)) {
        return std::nullopt;
    }
    return to_utf8(*enforced);
}

std::optional<std::string> localpart(std::string_view in) {
    if (in.size() > max_raw_part_octets) {
        return std::nullopt;
    }
    auto out = username_case_mapped(in);
    // The exclusions are ASCII, so a byte search of the UTF-8 result finds exactly them; checking
    // the result also catches mapped forms such as U+FF20 FULLWIDTH COMMERCIAL AT. (A lambda, not
    // the function pointer, so the compiler inlines it: this runs for every JID parsed.)
    if (!out || out->size() > max_part_octets ||
        std::any_of(out->begin(), out->end(), [](char c) { return excluded_from_localpart(c); })) {
        return std::nullopt;
    }
    return out;
}

std::optional<std::string> resourcepart(std::string_view in) {
    if (in.size() > max_raw_part_octets) {
        return std::nullopt;
    }
    auto out = opaque_string(in);
    if (!out || out->size() > max_part_octets) {
        return std::nullopt;
    }
    return out;
}

std::optional<std::string> map_for_idna(std::string_view in) {
    if (all_ascii_between(in, 0x00, 0x7F)) {
        std::string out(in);
        std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
        return out;
    }
    const Normalizers* norm = normalizers();
    auto decoded = norm != nullptr ? from_utf8(in) : std::nullopt;
    if (!decoded) {
        return std::nullopt;
    }
    icu::UnicodeString s = map_width(*decoded, *norm);
    s.toLower(icu::Locale::getRoot());
    auto mapped = nfc(s, *norm);
    if (!mapped) {
        return std::nullopt;
    }
    return to_utf8(*mapped);
}

}  // namespace haven::precis
