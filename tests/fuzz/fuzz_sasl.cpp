// Fuzz harness: SASL message parsing as a c2s session drives it (RFC 6120 §6): strict base64,
// SCRAM client-first / client-final against a real ScramServer with a known credential
// (RFC 5802, RFC 7677, -PLUS channel binding), and PLAIN (RFC 4616) with PRECIS on the authcid.
//
// Input: one flag byte, then the message(s). Flags bit 0 = PLAIN (else SCRAM); bit 1 = SHA-1;
// bit 2 = -PLUS; bit 3 = a channel binding exists (TLS); bit 4 = tls-unique (else tls-exporter);
// bit 5 = -PLUS offered; bit 6 = the harness replaces a final ",p=..." with the correct proof,
// so the success path (and everything after a valid proof) is reached too. For SCRAM the
// client-first and client-final messages are separated by the first '\n'.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "server/auth/base64.hpp"
#include "server/auth/credentials.hpp"
#include "server/auth/plain.hpp"
#include "server/auth/precis.hpp"
#include "server/auth/scram.hpp"

using namespace haven::auth;

namespace {

constexpr std::string_view secret = "fuzz-secret-for-fake-salts";
constexpr std::string_view server_nonce = "3rfcNHYJY1ZVvWVs7j";

// "user" / "pencil" with the RFC 5802 §5 and RFC 7677 §3 salts, and what a client derives from
// the password (ClientKey), computed once.
struct Known {
    ScramCredential cred;
    std::string client_key;
};

Known make_known(HashAlg alg, std::string_view salt_b64) {
    Known k;
    const auto salt = base64_decode(salt_b64);
    k.cred = derive_credential(alg, "pencil", *salt, 4096);
    // The client side of RFC 5802 §3: ClientKey := HMAC(Hi(password, salt, i), "Client Key").
    std::string salted(digest_size(alg), '\0');
    const std::string_view password = "pencil";
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                      reinterpret_cast<const unsigned char*>(salt->data()),
                      static_cast<int>(salt->size()), 4096,
                      alg == HashAlg::Sha1 ? EVP_sha1() : EVP_sha256(),
                      static_cast<int>(salted.size()),
                      reinterpret_cast<unsigned char*>(salted.data()));
    k.client_key = hmac(alg, salted, "Client Key");
    return k;
}

const Known& known(HashAlg alg) {
    static const Known sha1 = make_known(HashAlg::Sha1, "QSXCR+Q6sek8bf92");
    static const Known sha256 = make_known(HashAlg::Sha256, "W22ZaJ0SNY7soEsUEjb6gQ==");
    return alg == HashAlg::Sha1 ? sha1 : sha256;
}

void check_base64(std::string_view bytes) {
    const std::string enc = base64_encode(bytes);
    if (base64_decode(enc) != std::string(bytes)) {
        std::abort();  // encode/decode must round-trip
    }
    // Strict decoding accepts only canonical text, so decoding and encoding again is identity.
    if (auto dec = base64_decode(bytes); dec && base64_encode(*dec) != bytes) {
        std::abort();
    }
}

void fuzz_plain(std::string_view msg) {
    if (auto m = parse_plain(msg)) {
        (void)prepare_username(m->authcid);
        (void)prepare_username(m->authzid);
    }
}

// RFC 5802 §3 ClientProof for the message the server will check, from the harness's knowledge
// of the password, so valid proofs can be spliced into fuzzed messages.
std::string fix_proof(HashAlg alg, std::string_view first, const std::string& server_first,
                      std::string final_msg) {
    const auto p = final_msg.rfind(",p=");
    if (p == std::string::npos) {
        return final_msg;
    }
    const auto c1 = first.find(',');
    const auto c2 = c1 == std::string_view::npos ? c1 : first.find(',', c1 + 1);
    if (c2 == std::string_view::npos) {
        return final_msg;
    }
    const std::string without_proof = final_msg.substr(0, p);
    const std::string auth_message =
        std::string(first.substr(c2 + 1)) + "," + server_first + "," + without_proof;
    const std::string signature = hmac(alg, known(alg).cred.stored_key, auth_message);
    std::string proof = known(alg).client_key;
    for (std::size_t i = 0; i < proof.size() && i < signature.size(); ++i) {
        proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    }
    return without_proof + ",p=" + base64_encode(proof);
}

void fuzz_scram(unsigned flags, std::string_view rest) {
    const HashAlg alg = (flags & 2) ? HashAlg::Sha1 : HashAlg::Sha256;
    const bool plus = flags & 4;
    std::optional<ChannelBinding> cb;
    if (flags & 8) {
        cb = ChannelBinding{(flags & 16) ? "tls-unique" : "tls-exporter",
                            std::string(32, '\x5a')};
    }
    ScramServer server(alg, plus, cb, flags & 32, std::string(secret), 4096);
    server.set_server_nonce_for_testing(std::string(server_nonce));
    const auto nl = rest.find('\n');
    const std::string_view first = rest.substr(0, nl);
    const ScramServer::Lookup lookup = [&](std::string_view name) -> std::optional<ScramCredential> {
        if (name == "user") {
            return known(alg).cred;
        }
        return std::nullopt;
    };
    const auto step = server.client_first(first, lookup);
    (void)server.username();
    (void)server.authzid();
    if (step.status != ScramServer::Step::Status::Continue || nl == std::string_view::npos) {
        return;
    }
    std::string final_msg(rest.substr(nl + 1));
    if (flags & 64) {
        final_msg = fix_proof(alg, first, step.message, std::move(final_msg));
    }
    const auto done = server.client_final(final_msg);
    check_base64(done.message);
    // A finished exchange refuses anything further.
    if (server.client_final(final_msg).status != ScramServer::Step::Status::Failure) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const unsigned flags = data[0];
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    check_base64(rest);
    if (flags & 1) {
        fuzz_plain(rest);
        // The session decodes base64 first (RFC 6120 §6.4.2); the decoded form too.
        if (auto dec = base64_decode(rest)) {
            fuzz_plain(*dec);
        }
    } else {
        fuzz_scram(flags, rest);
    }
    return 0;
}
