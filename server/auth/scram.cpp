// SCRAM server side: message grammar of RFC 5802 §7, proofs of §3, channel binding of §6.
#include "server/auth/scram.hpp"

#include "server/auth/base64.hpp"
#include "server/auth/precis.hpp"

#include <openssl/crypto.h>
#include <sodium.h>

#include <cctype>
#include <vector>

namespace haven::auth {
namespace {

constexpr std::string_view not_authorized = "not-authorized";
constexpr std::string_view malformed = "malformed-request";

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto pos = s.find(sep);
        out.push_back(s.substr(0, pos));
        if (pos == std::string_view::npos) {
            return out;
        }
        s.remove_prefix(pos + 1);
    }
}

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// RFC 5802 §7 attr-val = ALPHA "=" value: returns the value if `field` is `name`=...
std::optional<std::string_view> attribute(std::string_view field, char name) {
    if (field.size() < 2 || field[0] != name || field[1] != '=') {
        return std::nullopt;
    }
    return field.substr(2);
}

bool is_extension(std::string_view field) {
    return field.size() >= 2 && is_alpha(field[0]) && field[1] == '=';
}

// RFC 5802 §7 printable = %x21-2B / %x2D-7E.
bool is_printable_nonce(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x21 || c > 0x7E || c == ',') {
            return false;
        }
    }
    return true;
}

// RFC 5802 §7 cb-name = 1*(ALPHA / DIGIT / "." / "-").
bool is_cb_name(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (!is_alpha(c) && !std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
            return false;
        }
    }
    return true;
}

// RFC 5802 §5.1: "=2C" is ',' and "=3D" is '='; any other '=' fails the exchange. NUL is not a
// value-safe-char. Commas cannot occur: the caller already split on them.
std::optional<std::string> decode_saslname(std::string_view s) {
    if (s.empty()) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\0') {
            return std::nullopt;
        }
        if (s[i] != '=') {
            out.push_back(s[i]);
            continue;
        }
        const auto esc = s.substr(i + 1, 2);
        if (esc == "2C") {
            out.push_back(',');
        } else if (esc == "3D") {
            out.push_back('=');
        } else {
            return std::nullopt;
        }
        i += 2;
    }
    return out;
}

bool equal_ct(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_nonce() {
    static const int rc = sodium_init();
    (void)rc;  // randombytes_buf works regardless; init only picks the fastest implementation
    std::string raw(18, '\0');
    randombytes_buf(raw.data(), raw.size());
    return base64_encode(raw);  // 24 chars of [A-Za-z0-9+/]: printable, never ','
}

std::string_view alg_label(HashAlg alg) {
    return alg == HashAlg::Sha1 ? "sha1" : "sha256";
}

bool usable(const ScramCredential& cred, HashAlg alg) {
    return cred.alg == alg && !cred.salt.empty() && cred.iterations > 0 &&
           cred.stored_key.size() == digest_size(alg) &&
           cred.server_key.size() == digest_size(alg);
}

}  // namespace

ScramCredential fake_credential(HashAlg alg, std::string_view secret, std::string_view username,
                                std::uint32_t iterations) {
    // Domain-separate the three outputs and the two algorithms: a real account also has
    // independent salts per algorithm, so a fake one must not reuse one salt for both.
    auto derive = [&](std::string_view label) {
        std::string input("haven-scram-fake\0", 17);
        input.append(label).push_back('\0');
        input.append(alg_label(alg)).push_back('\0');
        input.append(username);
        return hmac(HashAlg::Sha256, secret, input);
    };
    ScramCredential cred;
    cred.alg = alg;
    cred.salt = derive("salt").substr(0, salt_size);
    cred.iterations = iterations;
    cred.stored_key = derive("stored-key").substr(0, digest_size(alg));
    cred.server_key = derive("server-key").substr(0, digest_size(alg));
    return cred;
}

ScramServer::ScramServer(HashAlg alg, bool plus, std::optional<ChannelBinding> cb,
                         bool plus_offered, std::string secret_for_fake_salts,
                         std::uint32_t default_iterations)
    : alg_(alg),
      plus_(plus),
      cb_(std::move(cb)),
      plus_offered_(plus_offered),
      secret_(std::move(secret_for_fake_salts)),
      default_iterations_(default_iterations) {}

ScramServer::Step ScramServer::fail(std::string condition) {
    state_ = State::Done;
    return Step{Step::Status::Failure, {}, std::move(condition)};
}

ScramServer::Step ScramServer::client_first(std::string_view msg, const Lookup& lookup) {
    if (state_ != State::Initial) {
        return fail(std::string(malformed));
    }
    if (msg.size() > max_message_size || msg.find('\0') != std::string_view::npos) {
        return fail(std::string(malformed));
    }
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const auto c1 = msg.find(',');
    const auto c2 = c1 == std::string_view::npos ? c1 : msg.find(',', c1 + 1);
    if (c2 == std::string_view::npos) {
        return fail(std::string(malformed));
    }
    const auto flag = msg.substr(0, c1);
    const auto authzid_field = msg.substr(c1 + 1, c2 - c1 - 1);
    const auto bare = msg.substr(c2 + 1);

    std::string_view cb_name;
    if (flag.starts_with("p=")) {
        cb_name = flag.substr(2);
        if (!is_cb_name(cb_name)) {
            return fail(std::string(malformed));
        }
    } else if (flag != "n" && flag != "y") {
        return fail(std::string(malformed));
    }
    if (!authzid_field.empty()) {
        const auto value = attribute(authzid_field, 'a');
        auto decoded = value ? decode_saslname(*value) : std::nullopt;
        if (!decoded) {
            return fail(std::string(malformed));
        }
        authzid_ = std::move(*decoded);
    }

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const auto fields = split(bare, ',');
    if (!fields.empty() && attribute(fields[0], 'm')) {
        // RFC 5802 §5.1: "m" announces a mandatory extension; we know none, so we must fail.
        return fail(std::string(not_authorized));
    }
    if (fields.size() < 2) {
        return fail(std::string(malformed));
    }
    const auto user_value = attribute(fields[0], 'n');
    const auto client_nonce = attribute(fields[1], 'r');
    if (!user_value || !client_nonce || !is_printable_nonce(*client_nonce)) {
        return fail(std::string(malformed));
    }
    for (std::size_t i = 2; i < fields.size(); ++i) {
        if (!is_extension(fields[i])) {
            return fail(std::string(malformed));
        }
    }
    const auto raw_user = decode_saslname(*user_value);
    if (!raw_user) {
        return fail(std::string(malformed));
    }

    // RFC 5802 §6 channel-binding negotiation. "p" on the plain mechanism, or "n"/"y" on -PLUS,
    // contradicts the mechanism the client picked.
    if (plus_) {
        if (cb_name.empty()) {
            return fail(std::string(malformed));
        }
        if (!cb_ || cb_->type != cb_name) {
            return fail(std::string(not_authorized));  // e=unsupported-channel-binding-type
        }
        gs2_uses_binding_ = true;
    } else if (!cb_name.empty()) {
        return fail(std::string(malformed));
    } else if (flag == "y" && plus_offered_) {
        // The client supports binding but believes we do not, while we offered -PLUS: someone
        // stripped it from the feature list (e=server-does-support-channel-binding).
        return fail(std::string(not_authorized));
    }

    // RFC 5802 §5.1 prepares the name with SASLprep, which RFC 8265 replaced for XMPP.
    auto user = prepare_username(*raw_user);
    if (!user) {
        return fail(std::string(not_authorized));
    }
    username_ = std::move(*user);

    auto found = lookup ? lookup(username_) : std::nullopt;
    known_user_ = found && usable(*found, alg_);
    cred_ = known_user_ ? std::move(*found)
                        : fake_credential(alg_, secret_, username_, default_iterations_);

    gs2_header_ = std::string(msg.substr(0, c2 + 1));
    client_first_bare_ = std::string(bare);
    nonce_ = std::string(*client_nonce) +
             (fixed_server_nonce_ ? *fixed_server_nonce_ : random_nonce());
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(cred_.salt) +
                    ",i=" + std::to_string(cred_.iterations);
    state_ = State::AwaitFinal;
    return Step{Step::Status::Continue, server_first_, {}};
}

ScramServer::Step ScramServer::client_final(std::string_view msg) {
    if (state_ != State::AwaitFinal) {
        return fail(std::string(malformed));
    }
    if (msg.size() > max_message_size || msg.find('\0') != std::string_view::npos) {
        return fail(std::string(malformed));
    }
    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const auto fields = split(msg, ',');
    if (fields.size() < 3) {
        return fail(std::string(malformed));
    }
    const auto cbind_b64 = attribute(fields.front(), 'c');
    const auto nonce = attribute(fields[1], 'r');
    const auto proof_b64 = attribute(fields.back(), 'p');
    if (!cbind_b64 || !nonce || !proof_b64) {
        return fail(std::string(malformed));
    }
    for (std::size_t i = 2; i + 1 < fields.size(); ++i) {
        if (!is_extension(fields[i])) {
            return fail(std::string(malformed));
        }
    }
    const auto cbind = base64_decode(*cbind_b64);
    const auto proof = base64_decode(*proof_b64);
    if (!cbind || !proof || proof->size() != digest_size(alg_)) {
        return fail(std::string(malformed));
    }
    if (*nonce != nonce_) {
        return fail(std::string(not_authorized));
    }
    // RFC 5802 §6 / RFC 9266 §3: c= carries the gs2 header, plus the binding data when the
    // client used "p", so a man in the middle terminating TLS is caught here.
    std::string expected = gs2_header_;
    if (gs2_uses_binding_) {
        expected += cb_->data;
    }
    if (!equal_ct(*cbind, expected)) {
        return fail(std::string(not_authorized));  // e=channel-bindings-dont-match
    }

    // RFC 5802 §3: recover ClientKey from the proof and check it hashes to StoredKey.
    const std::string_view without_proof = msg.substr(0, msg.size() - fields.back().size() - 1);
    std::string auth_message = client_first_bare_;
    auth_message.append(",").append(server_first_).append(",").append(without_proof);
    const std::string signature = hmac(alg_, cred_.stored_key, auth_message);
    std::string client_key = *proof;
    for (std::size_t i = 0; i < client_key.size(); ++i) {
        client_key[i] = static_cast<char>(client_key[i] ^ signature[i]);
    }
    // Fake records go through the same work, so the timing does not tell them apart either.
    const bool proof_ok = equal_ct(hash(alg_, client_key), cred_.stored_key);
    if (!proof_ok || !known_user_) {
        auto step = fail(std::string(not_authorized));  // e=invalid-proof
        step.password_checked = true;
        return step;
    }
    state_ = State::Done;
    return Step{Step::Status::Success,
                "v=" + base64_encode(hmac(alg_, cred_.server_key, auth_message)), {}};
}

}  // namespace haven::auth
