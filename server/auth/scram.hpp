// SCRAM server side (RFC 5802, RFC 7677), with -PLUS channel binding (RFC 5929, RFC 9266).
#pragma once

#include "server/auth/credentials.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace haven::auth {

struct ChannelBinding {
    std::string type;  // "tls-exporter" (RFC 9266) or "tls-unique" (RFC 5929 §3)
    std::string data;  // raw binding bytes for this connection
};

// A stand-in record for an account that does not exist, so that probing usernames learns
// nothing (RFC 5802 §9, "the server SHOULD ... fake salt"): the salt and keys are HMACs of a
// server secret, the algorithm and the username, so repeated attempts see the same salt, and the
// iteration count is the one real records get. Nobody knows a password that matches it.
ScramCredential fake_credential(HashAlg alg, std::string_view secret, std::string_view username,
                                std::uint32_t iterations);

// One SCRAM exchange. Feed it the base64-decoded client messages; it never throws on network
// input, every problem comes back as a Failure step carrying an RFC 6120 §6.5 condition.
class ScramServer {
public:
    using Lookup = std::function<std::optional<ScramCredential>(std::string_view username)>;

    struct Step {
        enum class Status { Continue, Success, Failure } status = Status::Failure;
        std::string message;    // server-first (Continue) or server-final (Success); else empty
        std::string condition;  // on Failure: "not-authorized", "malformed-request", ...
        // On Failure: the client's proof was verified (and wrong). Only such a failure is a
        // password guess; the others never tested the password.
        bool password_checked = false;
    };

    // plus: this exchange is the -PLUS mechanism. cb: the connection's channel binding (nullopt
    // without TLS). plus_offered: the server advertised -PLUS variants, so a client saying "y"
    // was downgraded (RFC 5802 §6). secret_for_fake_salts: a long-lived server secret, never
    // empty, or unknown users become detectable. default_iterations: the count real records
    // are made with, which fake records copy.
    ScramServer(HashAlg alg, bool plus, std::optional<ChannelBinding> cb, bool plus_offered,
                std::string secret_for_fake_salts, std::uint32_t default_iterations);

    Step client_first(std::string_view msg, const Lookup& lookup);
    Step client_final(std::string_view msg);

    // The authcid after unescaping and prepare_username(), exactly as given to the lookup.
    const std::string& username() const { return username_; }
    // The gs2 authzid after unescaping, empty when absent; the caller decides whether username()
    // may act as it (RFC 6120 §6.4.6, invalid-authzid).
    const std::string& authzid() const { return authzid_; }

    // Test hook: use this server nonce instead of a random one, to replay RFC examples.
    void set_server_nonce_for_testing(std::string nonce) { fixed_server_nonce_ = std::move(nonce); }

    // Messages longer than this are refused before parsing.
    static constexpr std::size_t max_message_size = 4096;

private:
    enum class State { Initial, AwaitFinal, Done };

    Step fail(std::string condition);

    HashAlg alg_;
    bool plus_;
    std::optional<ChannelBinding> cb_;
    bool plus_offered_;
    std::string secret_;
    std::uint32_t default_iterations_;
    std::optional<std::string> fixed_server_nonce_;

    State state_ = State::Initial;
    std::string username_;
    std::string authzid_;
    std::string gs2_header_;
    bool gs2_uses_binding_ = false;
    std::string client_first_bare_;
    std::string server_first_;
    std::string nonce_;  // client nonce + server nonce
    ScramCredential cred_;
    bool known_user_ = false;
};

}  // namespace haven::auth
