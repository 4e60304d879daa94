// Strict base64 (RFC 4648 §4) on top of libsodium's constant-time codec.
#include "server/auth/base64.hpp"

#include <sodium.h>

namespace haven::auth {

std::string base64_encode(std::string_view bytes) {
    constexpr int variant = sodium_base64_VARIANT_ORIGINAL;
    std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
    sodium_bin2base64(out.data(), out.size(),
                      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), variant);
    out.resize(out.size() - 1);  // sodium counts the terminating NUL
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    // Padded base64 always comes in whole quads; checking up front also keeps a hostile length
    // from reaching the decoder.
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    // The alphabet is checked here, not left to libsodium: its decoder accepted bytes above
    // 0x7f as if they were base64 digits (found by tests/fuzz/fuzz_sasl), which gave one byte
    // string several accepted encodings. '=' only as the last one or two characters.
    const std::size_t body = text.size() - (text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0);
    for (std::size_t i = 0; i < body; ++i) {
        const char c = text[i];
        const bool digit = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                           (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (!digit) {
            return std::nullopt;
        }
    }
    std::string out(text.size() / 4 * 3, '\0');
    if (out.empty()) {
        return out;
    }
    std::size_t len = 0;
    const char* end = nullptr;
    // No ignore set, and the whole input must be consumed: whitespace or trailing junk fails.
    // libsodium also rejects non-zero bits left over in the last quad, so every byte string has
    // exactly one accepted encoding.
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                          text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != text.data() + text.size()) {
        return std::nullopt;
    }
    out.resize(len);
    return out;
}

}  // namespace haven::auth
