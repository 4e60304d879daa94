// SCRAM client (RFC 5802 / RFC 7677, no channel binding) and PLAIN for the load generator, with a
// cache of the PBKDF2 result so a login storm measures the server, not the client's key stretching.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace bench {

enum class ScramAlg { Sha1, Sha256 };

std::string base64_encode(std::string_view in);
std::optional<std::string> base64_decode(std::string_view in);

// ClientKey and ServerKey, derived from SaltedPassword = PBKDF2(password, salt, iterations).
struct ScramKeys {
    std::string client_key;
    std::string server_key;
};

// Thread-safe cache keyed by (algorithm, iterations, salt, password); optionally persisted so
// repeated runs against the same accounts skip the key stretching entirely.
class ScramCache {
public:
    std::optional<ScramKeys> get(ScramAlg alg, std::string_view password, std::string_view salt,
                                 std::uint32_t iterations);
    void put(ScramAlg alg, std::string_view password, std::string_view salt,
             std::uint32_t iterations, const ScramKeys& keys);
    // The expensive part: PBKDF2 and two HMACs.
    static ScramKeys derive(ScramAlg alg, std::string_view password, std::string_view salt,
                            std::uint32_t iterations);
    void load(const std::string& path);
    void save(const std::string& path);
    std::size_t size();

private:
    static std::string key(ScramAlg alg, std::string_view password, std::string_view salt,
                           std::uint32_t iterations);
    std::mutex mutex_;
    std::unordered_map<std::string, ScramKeys> map_;
    bool dirty_ = false;
};

class ScramClient {
public:
    // `nonce` is for test vectors only; normally it is random.
    ScramClient(ScramAlg alg, std::string user, std::string password, std::string nonce = {});
    // "n,,n=user,r=nonce".
    std::string client_first();
    // Parses server-first; false (and `error`) when it is malformed or the nonce is wrong.
    bool server_first(std::string_view msg, std::string& error);
    std::string_view salt() const { return salt_; }
    std::uint32_t iterations() const { return iterations_; }
    // "c=biws,r=...,p=proof"; remembers the expected server signature.
    std::string client_final(const ScramKeys& keys);
    // Checks "v=..." from the server-final message.
    bool verify_server_final(std::string_view msg) const;

private:
    ScramAlg alg_;
    std::string user_;
    std::string password_;
    std::string nonce_;
    std::string client_first_bare_;
    std::string server_first_;
    std::string full_nonce_;
    std::string salt_;
    std::uint32_t iterations_ = 0;
    std::string server_signature_;
};

std::string plain_message(std::string_view user, std::string_view password);

}  // namespace bench
