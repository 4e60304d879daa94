// SCRAM key derivation (RFC 5802 §3) with OpenSSL PBKDF2/HMAC and libsodium randomness.
#include "server/auth/credentials.hpp"

#include "server/auth/precis.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <climits>
#include <stdexcept>

namespace haven::auth {
namespace {

const EVP_MD* md(HashAlg alg) {
    return alg == HashAlg::Sha1 ? EVP_sha1() : EVP_sha256();
}

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

void ensure_sodium() {
    // sodium_init() is idempotent and thread-safe; the static makes it run once.
    static const int rc = sodium_init();
    if (rc < 0) {
        throw std::runtime_error("libsodium initialisation failed");
    }
}

std::string random_salt() {
    ensure_sodium();
    std::string salt(salt_size, '\0');
    randombytes_buf(salt.data(), salt.size());
    return salt;
}

}  // namespace

std::size_t digest_size(HashAlg alg) {
    return alg == HashAlg::Sha1 ? 20 : 32;
}

std::string_view mechanism_name(HashAlg alg, bool plus) {
    if (alg == HashAlg::Sha1) {
        return plus ? "SCRAM-SHA-1-PLUS" : "SCRAM-SHA-1";
    }
    return plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256";
}

std::string hash(HashAlg alg, std::string_view data) {
    std::string out(EVP_MAX_MD_SIZE, '\0');
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
                   md(alg), nullptr) != 1) {
        throw std::runtime_error("EVP_Digest failed");
    }
    out.resize(len);
    return out;
}

std::string hmac(HashAlg alg, std::string_view key, std::string_view data) {
    if (key.size() > INT_MAX) {
        throw std::invalid_argument("HMAC key too long");
    }
    std::string out(EVP_MAX_MD_SIZE, '\0');
    unsigned int len = 0;
    // One-shot HMAC(): no context to own, so nothing to leak on the error path.
    if (HMAC(md(alg), key.data(), static_cast<int>(key.size()), bytes(data), data.size(),
             reinterpret_cast<unsigned char*>(out.data()), &len) == nullptr) {
        throw std::runtime_error("HMAC failed");
    }
    out.resize(len);
    return out;
}

ScramCredential derive_credential(HashAlg alg, std::string_view password, std::string_view salt,
                                  std::uint32_t iterations) {
    if (iterations == 0 || iterations > INT_MAX || password.size() > INT_MAX ||
        salt.size() > INT_MAX) {
        throw std::invalid_argument("unusable PBKDF2 parameters");
    }
    std::string salted(digest_size(alg), '\0');
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), bytes(salt),
                          static_cast<int>(salt.size()), static_cast<int>(iterations), md(alg),
                          static_cast<int>(salted.size()),
                          reinterpret_cast<unsigned char*>(salted.data())) != 1) {
        throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
    }
    ScramCredential cred;
    cred.alg = alg;
    cred.salt = std::string(salt);
    cred.iterations = iterations;
    cred.stored_key = hash(alg, hmac(alg, salted, "Client Key"));
    cred.server_key = hmac(alg, salted, "Server Key");
    sodium_memzero(salted.data(), salted.size());
    return cred;
}

CredentialSet make_credentials(std::string_view password, std::uint32_t iterations) {
    CredentialSet set;
    set.sha1 = derive_credential(HashAlg::Sha1, password, random_salt(), iterations);
    set.sha256 = derive_credential(HashAlg::Sha256, password, random_salt(), iterations);
    return set;
}

bool verify_plain(const ScramCredential& cred, std::string_view password) {
    const auto prepared = prepare_password(password);
    if (!prepared || cred.iterations == 0 || cred.iterations > INT_MAX ||
        cred.stored_key.size() != digest_size(cred.alg)) {
        return false;
    }
    const ScramCredential candidate =
        derive_credential(cred.alg, *prepared, cred.salt, cred.iterations);
    return CRYPTO_memcmp(candidate.stored_key.data(), cred.stored_key.data(),
                         cred.stored_key.size()) == 0;
}

}  // namespace haven::auth
