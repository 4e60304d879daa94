// SCRAM credential records (RFC 5802 §3, RFC 7677): what the user store keeps, never passwords.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace haven::auth {

enum class HashAlg { Sha1, Sha256 };

// RFC 5802 §3: SaltedPassword is never stored, only the two keys derived from it, so a leaked
// store does not let anyone log in as the user (ClientKey is still needed).
struct ScramCredential {
    HashAlg alg = HashAlg::Sha256;
    std::string salt;  // raw bytes
    std::uint32_t iterations = 0;
    std::string stored_key;  // H(HMAC(SaltedPassword, "Client Key")), raw bytes
    std::string server_key;  // HMAC(SaltedPassword, "Server Key"), raw bytes
};

// What the user store keeps per account: never the password.
struct CredentialSet {
    std::optional<ScramCredential> sha1;
    std::optional<ScramCredential> sha256;
};

inline constexpr std::size_t salt_size = 16;

std::size_t digest_size(HashAlg alg);
// "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", ...
std::string_view mechanism_name(HashAlg alg, bool plus);

std::string hash(HashAlg alg, std::string_view data);
std::string hmac(HashAlg alg, std::string_view key, std::string_view data);

// PBKDF2 (RFC 5802 §2.2 Hi()) then the key derivation of RFC 5802 §3. CPU heavy by design:
// callers run it off the event loop. `password` must already be prepare_password() output.
// Throws std::invalid_argument for zero iterations or inputs too large for OpenSSL.
ScramCredential derive_credential(HashAlg alg, std::string_view password, std::string_view salt,
                                  std::uint32_t iterations);

// Both SHA-1 and SHA-256 records with independent random 16-byte salts (libsodium
// randombytes_buf). `password` must already be prepare_password() output.
CredentialSet make_credentials(std::string_view password, std::uint32_t iterations);

// SASL PLAIN check: prepares the raw password from the wire (RFC 8265 §4.2), re-derives with the
// record's salt and iteration count and compares StoredKey in constant time. False for a
// password PRECIS refuses and for an unusable record.
bool verify_plain(const ScramCredential& cred, std::string_view password);

}  // namespace haven::auth
