// PRECIS string classes and profiles (RFC 8264 §8-9, RFC 8265 §3.3, §4.2) on ICU properties.
#include "server/auth/precis.hpp"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace haven::auth {
namespace {

using CodePoints = std::vector<UChar32>;

std::optional<CodePoints> decode_utf8(std::string_view s) {
    CodePoints out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
    const auto len = static_cast<std::int32_t>(s.size());
    for (std::int32_t i = 0; i < len;) {
        UChar32 c = 0;
        U8_NEXT(p, i, len, c);  // negative for ill-formed input, overlongs and surrogates
        if (c < 0) {
            return std::nullopt;
        }
        out.push_back(c);
    }
    return out;
}

std::string encode_utf8(const CodePoints& cps) {
    std::string out;
    out.reserve(cps.size() * 2);
    for (UChar32 c : cps) {
        std::uint8_t buf[U8_MAX_LENGTH];
        std::int32_t n = 0;
        U8_APPEND_UNSAFE(buf, n, c);  // c came from U8_NEXT or ICU, so it is a scalar value
        out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
    }
    return out;
}

std::u16string to_utf16(const CodePoints& cps) {
    std::u16string out;
    out.reserve(cps.size());
    for (UChar32 c : cps) {
        if (U_IS_BMP(c)) {
            out.push_back(static_cast<char16_t>(c));
        } else {
            out.push_back(static_cast<char16_t>(U16_LEAD(c)));
            out.push_back(static_cast<char16_t>(U16_TRAIL(c)));
        }
    }
    return out;
}

CodePoints from_utf16(const std::u16string& s) {
    CodePoints out;
    out.reserve(s.size());
    const auto len = static_cast<std::int32_t>(s.size());
    for (std::int32_t i = 0; i < len;) {
        UChar32 c = 0;
        U16_NEXT(s.data(), i, len, c);
        out.push_back(c);
    }
    return out;
}

// Runs an ICU "preflight then fill" UTF-16 transform; nullopt on any ICU error.
template <typename Fn>
std::optional<std::u16string> icu_transform(const std::u16string& in, Fn&& fn) {
    std::u16string out(in.size() + 16, u'\0');
    for (int attempt = 0; attempt < 2; ++attempt) {
        UErrorCode err = U_ZERO_ERROR;
        const std::int32_t n = fn(out.data(), static_cast<std::int32_t>(out.size()), in.data(),
                                  static_cast<std::int32_t>(in.size()), &err);
        if (err == U_BUFFER_OVERFLOW_ERROR) {
            out.assign(static_cast<std::size_t>(n), u'\0');
            continue;
        }
        if (U_FAILURE(err)) {
            return std::nullopt;
        }
        out.resize(static_cast<std::size_t>(n));
        return out;
    }
    return std::nullopt;
}

const UNormalizer2* nfc() {
    UErrorCode err = U_ZERO_ERROR;
    return unorm2_getNFCInstance(&err);  // singleton owned by ICU; null if data is missing
}

const UNormalizer2* nfkc() {
    UErrorCode err = U_ZERO_ERROR;
    return unorm2_getNFKCInstance(&err);
}

std::optional<CodePoints> normalize_nfc(const CodePoints& cps) {
    const UNormalizer2* n = nfc();
    if (n == nullptr) {
        return std::nullopt;
    }
    auto out = icu_transform(to_utf16(cps), [n](UChar* d, std::int32_t cap, const UChar* s,
                                                std::int32_t len, UErrorCode* e) {
        return unorm2_normalize(n, s, len, d, cap, e);
    });
    if (!out) {
        return std::nullopt;
    }
    return from_utf16(*out);
}

// RFC 8264 §9.17 HasCompat: toNFKC(cp) != cp.
bool has_compat(UChar32 c) {
    const UNormalizer2* n = nfkc();
    if (n == nullptr) {
        return true;  // fail closed
    }
    UChar buf[2];
    std::int32_t len = 0;
    U16_APPEND_UNSAFE(buf, len, c);
    UErrorCode err = U_ZERO_ERROR;
    const bool normalized = unorm2_isNormalized(n, buf, len, &err);
    return U_FAILURE(err) || !normalized;
}

enum class Derived { Pvalid, IdDisallowed, Disallowed };

// RFC 8264 §8: the derived property of one code point, rules taken in the order given there.
// CONTEXTJ and CONTEXTO code points are refused outright: their context rules (RFC 5892
// Appendix A) exist for scripts where a username or password of ours has never needed them, and
// refusing is the safe direction.
Derived derive(UChar32 c) {
    switch (c) {  // §9.6 Exceptions (RFC 5892 §2.6)
        case 0x00DF: case 0x03C2: case 0x06FD: case 0x06FE: case 0x0F0B: case 0x3007:
            return Derived::Pvalid;
        case 0x00B7: case 0x0375: case 0x05F3: case 0x05F4: case 0x30FB:  // CONTEXTO
        case 0x0640: case 0x07FA: case 0x302E: case 0x302F: case 0x3031: case 0x3032:
        case 0x3033: case 0x3034: case 0x3035: case 0x303B:
            return Derived::Disallowed;
        default:
            break;
    }
    const auto type = static_cast<UCharCategory>(u_charType(c));
    if (type == U_UNASSIGNED && !u_hasBinaryProperty(c, UCHAR_NONCHARACTER_CODE_POINT)) {
        return Derived::Disallowed;  // §9.10 Unassigned
    }
    if (c >= 0x21 && c <= 0x7E) {
        return Derived::Pvalid;  // §9.11 ASCII7
    }
    if (u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL)) {
        return Derived::Disallowed;  // §9.8 JoinControl (CONTEXTJ)
    }
    const auto hst = u_getIntPropertyValue(c, UCHAR_HANGUL_SYLLABLE_TYPE);
    if (hst == U_HST_LEADING_JAMO || hst == U_HST_VOWEL_JAMO || hst == U_HST_TRAILING_JAMO) {
        return Derived::Disallowed;  // §9.9 OldHangulJamo
    }
    if (u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) ||
        u_hasBinaryProperty(c, UCHAR_NONCHARACTER_CODE_POINT)) {
        return Derived::Disallowed;  // §9.13 PrecisIgnorableProperties
    }
    if (type == U_CONTROL_CHAR) {
        return Derived::Disallowed;  // §9.12 Controls
    }
    if (has_compat(c)) {
        return Derived::IdDisallowed;  // §9.17 HasCompat
    }
    switch (type) {
        case U_LOWERCASE_LETTER: case U_UPPERCASE_LETTER: case U_OTHER_LETTER:
        case U_DECIMAL_DIGIT_NUMBER: case U_MODIFIER_LETTER: case U_NON_SPACING_MARK:
        case U_COMBINING_SPACING_MARK:
            return Derived::Pvalid;  // §9.1 LetterDigits
        case U_TITLECASE_LETTER: case U_LETTER_NUMBER: case U_OTHER_NUMBER:
        case U_ENCLOSING_MARK:  // §9.18 OtherLetterDigits
        case U_SPACE_SEPARATOR:  // §9.14 Spaces
        case U_MATH_SYMBOL: case U_CURRENCY_SYMBOL: case U_MODIFIER_SYMBOL:
        case U_OTHER_SYMBOL:  // §9.15 Symbols
        case U_CONNECTOR_PUNCTUATION: case U_DASH_PUNCTUATION: case U_START_PUNCTUATION:
        case U_END_PUNCTUATION: case U_INITIAL_PUNCTUATION: case U_FINAL_PUNCTUATION:
        case U_OTHER_PUNCTUATION:  // §9.16 Punctuation
            return Derived::IdDisallowed;
        default:
            return Derived::Disallowed;
    }
}

// RFC 5893 §2 Bidi Rule, applied (RFC 8265 §3.3.2 rule 5) only to strings holding R, AL or AN.
bool passes_bidi_rule(const CodePoints& cps) {
    std::vector<UCharDirection> dirs;
    dirs.reserve(cps.size());
    bool has_rtl = false;
    for (UChar32 c : cps) {
        const UCharDirection d = u_charDirection(c);
        has_rtl = has_rtl || d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC ||
                  d == U_ARABIC_NUMBER;
        dirs.push_back(d);
    }
    if (!has_rtl) {
        return true;
    }
    const UCharDirection first = dirs.front();
    const bool rtl = first == U_RIGHT_TO_LEFT || first == U_RIGHT_TO_LEFT_ARABIC;
    if (!rtl && first != U_LEFT_TO_RIGHT) {
        return false;  // rule 1
    }
    bool has_en = false;
    bool has_an = false;
    for (UCharDirection d : dirs) {
        switch (d) {
            case U_EUROPEAN_NUMBER: has_en = true; break;
            case U_ARABIC_NUMBER:
                has_an = true;
                if (!rtl) {
                    return false;  // rule 5
                }
                break;
            case U_RIGHT_TO_LEFT: case U_RIGHT_TO_LEFT_ARABIC:
                if (!rtl) {
                    return false;  // rule 5
                }
                break;
            case U_LEFT_TO_RIGHT:
                if (rtl) {
                    return false;  // rule 2
                }
                break;
            case U_EUROPEAN_NUMBER_SEPARATOR: case U_COMMON_NUMBER_SEPARATOR:
            case U_EUROPEAN_NUMBER_TERMINATOR: case U_OTHER_NEUTRAL: case U_BOUNDARY_NEUTRAL:
            case U_DIR_NON_SPACING_MARK:
                break;
            default:
                return false;  // rules 2 and 5
        }
    }
    if (rtl && has_en && has_an) {
        return false;  // rule 4
    }
    // Rules 3 and 6: the last character that is not a non-spacing mark.
    auto last = std::find_if(dirs.rbegin(), dirs.rend(),
                             [](UCharDirection d) { return d != U_DIR_NON_SPACING_MARK; });
    if (last == dirs.rend()) {
        return false;
    }
    if (rtl) {
        return *last == U_RIGHT_TO_LEFT || *last == U_RIGHT_TO_LEFT_ARABIC ||
               *last == U_EUROPEAN_NUMBER || *last == U_ARABIC_NUMBER;
    }
    return *last == U_LEFT_TO_RIGHT || *last == U_EUROPEAN_NUMBER;
}

// RFC 8265 §3.3.2 rule 1: fullwidth and halfwidth forms map to their decomposition.
std::optional<CodePoints> map_width(const CodePoints& cps) {
    const UNormalizer2* n = nfkc();
    if (n == nullptr) {
        return std::nullopt;
    }
    CodePoints out;
    out.reserve(cps.size());
    for (UChar32 c : cps) {
        const auto dt = u_getIntPropertyValue(c, UCHAR_DECOMPOSITION_TYPE);
        if (dt != U_DT_WIDE && dt != U_DT_NARROW) {
            out.push_back(c);
            continue;
        }
        UChar buf[8];
        UErrorCode err = U_ZERO_ERROR;
        const std::int32_t len = unorm2_getRawDecomposition(n, c, buf, 8, &err);
        if (U_FAILURE(err) || len <= 0) {
            return std::nullopt;
        }
        for (std::int32_t i = 0; i < len;) {
            UChar32 m = 0;
            U16_NEXT(buf, i, len, m);
            out.push_back(m);
        }
    }
    return out;
}

std::optional<CodePoints> to_lower(const CodePoints& cps) {
    auto out = icu_transform(to_utf16(cps), [](UChar* d, std::int32_t cap, const UChar* s,
                                               std::int32_t len, UErrorCode* e) {
        return u_strToLower(d, cap, s, len, "", e);  // root locale: Unicode default case mapping
    });
    if (!out) {
        return std::nullopt;
    }
    return from_utf16(*out);
}

}  // namespace

std::optional<std::string> prepare_password(std::string_view password) {
    auto cps = decode_utf8(password);
    if (!cps) {
        return std::nullopt;
    }
    for (UChar32& c : *cps) {
        if (c != 0x20 && u_charType(c) == U_SPACE_SEPARATOR) {
            c = 0x20;  // RFC 8265 §4.2.1 additional mapping rule
        }
    }
    auto normalized = normalize_nfc(*cps);
    if (!normalized || normalized->empty()) {
        return std::nullopt;  // RFC 8265 §4.2.2: the empty string is not a password
    }
    for (UChar32 c : *normalized) {
        if (derive(c) == Derived::Disallowed) {
            return std::nullopt;
        }
    }
    return encode_utf8(*normalized);
}

std::optional<std::string> prepare_username(std::string_view username) {
    auto cps = decode_utf8(username);
    if (!cps) {
        return std::nullopt;
    }
    cps = map_width(*cps);
    if (cps) {
        cps = to_lower(*cps);
    }
    if (cps) {
        cps = normalize_nfc(*cps);
    }
    if (!cps || cps->empty() || !passes_bidi_rule(*cps)) {
        return std::nullopt;
    }
    for (UChar32 c : *cps) {
        switch (c) {
            case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@':
                return std::nullopt;  // RFC 7622 §3.3.1
            default:
                break;
        }
        if (derive(c) != Derived::Pvalid) {
            return std::nullopt;
        }
    }
    std::string out = encode_utf8(*cps);
    if (out.size() > 1023) {
        return std::nullopt;  // RFC 7622 §3.3.1 localpart length
    }
    return out;
}

}  // namespace haven::auth
