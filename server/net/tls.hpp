// TLS: the server's OpenSSL context (TLS 1.2+ only) and RAII handles; channel-binding data.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <openssl/ssl.h>

namespace haven::net {

struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

struct TlsError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Builds the server context from a PEM certificate chain and key. Throws TlsError with one
// line naming the file that failed.
SslCtxPtr make_server_context(const std::filesystem::path& cert, const std::filesystem::path& key);

// RFC 9266 tls-exporter for TLS 1.3, RFC 5929 tls-unique for TLS 1.2 (XEP-0440 names).
struct ChannelBindingData {
    std::string type;
    std::string data;
};
std::optional<ChannelBindingData> channel_binding(SSL* ssl);

// The first OpenSSL error on the thread's queue as text (and clears the queue).
std::string last_ssl_error();

}  // namespace haven::net
