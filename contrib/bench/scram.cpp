// SCRAM-SHA-1 / SCRAM-SHA-256 client side and the SaltedPassword cache.
#include "scram.hpp"

#include <fstream>
#include <sstream>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace bench {

namespace {

const EVP_MD* md(ScramAlg alg) { return alg == ScramAlg::Sha1 ? EVP_sha1() : EVP_sha256(); }

std::string hmac(ScramAlg alg, std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md(alg), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
}

std::string hash(ScramAlg alg, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), out, &len, md(alg), nullptr);
    return std::string(reinterpret_cast<char*>(out), len);
}

std::string hex(std::string_view raw) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

std::optional<std::string> unhex(std::string_view h) {
    if (h.size() % 2) {
        return std::nullopt;
    }
    auto val = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < h.size(); i += 2) {
        int a = val(h[i]), b = val(h[i + 1]);
        if (a < 0 || b < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(a * 16 + b));
    }
    return out;
}

// SASLprep-free escaping of the username (RFC 5802 §5.1: ',' and '=').
std::string saslname(std::string_view user) {
    std::string out;
    for (char c : user) {
        if (c == ',') {
            out += "=2C";
        } else if (c == '=') {
            out += "=3D";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// Value of "k=" in a comma-separated SCRAM message.
std::string_view field(std::string_view msg, char k) {
    std::size_t p = 0;
    while (p < msg.size()) {
        auto comma = msg.find(',', p);
        auto part = msg.substr(p, comma == std::string_view::npos ? msg.size() - p : comma - p);
        if (part.size() >= 2 && part[0] == k && part[1] == '=') {
            return part.substr(2);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        p = comma + 1;
    }
    return {};
}

}  // namespace

std::string base64_encode(std::string_view in) {
    if (in.empty()) {
        return {};
    }
    std::string out(4 * ((in.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    std::string clean;
    for (char c : in) {
        if (c != '\n' && c != '\r' && c != ' ' && c != '\t') {
            clean.push_back(c);
        }
    }
    if (clean.empty() || clean == "=") {
        return std::string{};
    }
    if (clean.size() % 4) {
        return std::nullopt;
    }
    std::string out(3 * clean.size() / 4, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(clean.data()),
                            static_cast<int>(clean.size()));
    if (n < 0) {
        return std::nullopt;
    }
    std::size_t pad = 0;
    if (clean.ends_with("==")) {
        pad = 2;
    } else if (clean.ends_with("=")) {
        pad = 1;
    }
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

std::string ScramCache::key(ScramAlg alg, std::string_view password, std::string_view salt,
                            std::uint32_t iterations) {
    std::string k = alg == ScramAlg::Sha1 ? "sha1 " : "sha256 ";
    k += std::to_string(iterations);
    k += ' ';
    k += hex(salt);
    k += ' ';
    k += hex(hash(ScramAlg::Sha256, password));  // the file never holds passwords
    return k;
}

std::optional<ScramKeys> ScramCache::get(ScramAlg alg, std::string_view password,
                                         std::string_view salt, std::uint32_t iterations) {
    auto k = key(alg, password, salt, iterations);
    std::lock_guard lock(mutex_);
    auto it = map_.find(k);
    if (it == map_.end()) {
        return std::nullopt;
    }
    return it->second;
}

void ScramCache::put(ScramAlg alg, std::string_view password, std::string_view salt,
                     std::uint32_t iterations, const ScramKeys& keys) {
    auto k = key(alg, password, salt, iterations);
    std::lock_guard lock(mutex_);
    map_[k] = keys;
    dirty_ = true;
}

std::size_t ScramCache::size() {
    std::lock_guard lock(mutex_);
    return map_.size();
}

ScramKeys ScramCache::derive(ScramAlg alg, std::string_view password, std::string_view salt,
                             std::uint32_t iterations) {
    unsigned char salted[EVP_MAX_MD_SIZE];
    int len = EVP_MD_get_size(md(alg));
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                      reinterpret_cast<const unsigned char*>(salt.data()),
                      static_cast<int>(salt.size()), static_cast<int>(iterations), md(alg), len,
                      salted);
    std::string_view sp(reinterpret_cast<char*>(salted), static_cast<std::size_t>(len));
    return ScramKeys{hmac(alg, sp, "Client Key"), hmac(alg, sp, "Server Key")};
}

void ScramCache::load(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::lock_guard lock(mutex_);
    while (std::getline(in, line)) {
        // alg iterations salt_hex password_sha256_hex client_key_hex server_key_hex
        std::istringstream ls(line);
        std::string alg, iter, salt, pw, ck, sk;
        if (!(ls >> alg >> iter >> salt >> pw >> ck >> sk)) {
            continue;
        }
        auto c = unhex(ck), s = unhex(sk);
        if (c && s) {
            map_[alg + " " + iter + " " + salt + " " + pw] = ScramKeys{*c, *s};
        }
    }
}

void ScramCache::save(const std::string& path) {
    std::lock_guard lock(mutex_);
    if (!dirty_) {
        return;
    }
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        for (const auto& [k, v] : map_) {
            out << k << ' ' << hex(v.client_key) << ' ' << hex(v.server_key) << '\n';
        }
    }
    std::rename(tmp.c_str(), path.c_str());
    dirty_ = false;
}

ScramClient::ScramClient(ScramAlg alg, std::string user, std::string password, std::string nonce)
    : alg_(alg), user_(std::move(user)), password_(std::move(password)), nonce_(std::move(nonce)) {
    if (!nonce_.empty()) {
        return;
    }
    unsigned char raw[18];
    RAND_bytes(raw, sizeof raw);
    nonce_ = base64_encode(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
}

std::string ScramClient::client_first() {
    client_first_bare_ = "n=" + saslname(user_) + ",r=" + nonce_;
    return "n,," + client_first_bare_;
}

bool ScramClient::server_first(std::string_view msg, std::string& error) {
    server_first_ = std::string(msg);
    full_nonce_ = std::string(field(msg, 'r'));
    auto salt = base64_decode(field(msg, 's'));
    auto iter = field(msg, 'i');
    if (!full_nonce_.starts_with(nonce_) || full_nonce_.size() <= nonce_.size()) {
        error = "server nonce does not extend ours";
        return false;
    }
    if (!salt || salt->empty() || iter.empty()) {
        error = "malformed server-first-message";
        return false;
    }
    salt_ = *salt;
    iterations_ = static_cast<std::uint32_t>(std::stoul(std::string(iter)));
    if (iterations_ == 0 || iterations_ > 10'000'000) {
        error = "unreasonable iteration count";
        return false;
    }
    return true;
}

std::string ScramClient::client_final(const ScramKeys& keys) {
    std::string without_proof = "c=biws,r=" + full_nonce_;
    std::string auth_message = client_first_bare_ + "," + server_first_ + "," + without_proof;
    std::string stored_key = hash(alg_, keys.client_key);
    std::string signature = hmac(alg_, stored_key, auth_message);
    std::string proof = keys.client_key;
    for (std::size_t i = 0; i < proof.size(); ++i) {
        proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    }
    server_signature_ = hmac(alg_, keys.server_key, auth_message);
    return without_proof + ",p=" + base64_encode(proof);
}

bool ScramClient::verify_server_final(std::string_view msg) const {
    auto v = base64_decode(field(msg, 'v'));
    return v && *v == server_signature_;
}

std::string plain_message(std::string_view user, std::string_view password) {
    std::string m;
    m.push_back('\0');
    m += user;
    m.push_back('\0');
    m += password;
    return m;
}

}  // namespace bench
