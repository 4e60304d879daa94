// TLS: server context setup and channel-binding extraction.
#include "server/net/tls.hpp"

#include <cstring>

#include <openssl/err.h>

namespace haven::net {
namespace {

// XEP-0368: direct TLS clients may offer ALPN "xmpp-client"; accept it, ignore others.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    static const unsigned char proto[] = "\x0bxmpp-client";
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, proto, sizeof proto - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

std::string last_ssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) {
        return "unknown TLS error";
    }
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* tls13_suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

SslCtxPtr make_server_context(const std::filesystem::path& cert, const std::filesystem::path& key) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
        throw TlsError("cannot create TLS context: " + last_ssl_error());
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    // Idle connections drop their 16 KiB+ record buffers: most of a server's connections are
    // idle, and this keeps per-connection memory small.
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                       SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Forward secrecy and AEAD only (issue 10 point 7). TLS 1.3 (preferred: OpenSSL picks the
    // highest version both sides speak) has nothing else; for TLS 1.2 only ECDHE with AES-GCM
    // or ChaCha20-Poly1305: no static-RSA key exchange, no CBC, no SHA-1 MACs.
    if (SSL_CTX_set_cipher_list(ctx.get(), tls12_ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx.get(), tls13_suites) != 1) {
        throw TlsError("cannot set the TLS cipher suites: " + last_ssl_error());
    }
    // No session tickets in either version: a ticket key that lives as long as the process
    // would undo forward secrecy for every resumable session. TLS 1.2 clients may still resume
    // from the server's own session cache (no key material leaves the server); TLS 1.3 clients
    // do a full handshake, which the record takeover needs anyway (tls_records.hpp).
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx.get(), 0);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
        throw TlsError("[tls] cert: cannot load " + cert.string() + ": " + last_ssl_error());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw TlsError("[tls] key: cannot load " + key.string() + ": " + last_ssl_error());
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
        throw TlsError("[tls] key: does not match the certificate " + cert.string());
    }
    SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, nullptr);
    return ctx;
}

std::optional<ChannelBindingData> channel_binding(SSL* ssl) {
    if (!ssl || !SSL_is_init_finished(ssl)) {
        return std::nullopt;
    }
    if (SSL_version(ssl) >= TLS1_3_VERSION) {
        std::string out(32, '\0');
        static const char label[] = "EXPORTER-Channel-Binding";
        if (SSL_export_keying_material(ssl, reinterpret_cast<unsigned char*>(out.data()),
                                       out.size(), label, std::strlen(label), nullptr, 0,
                                       0) != 1) {
            return std::nullopt;
        }
        return ChannelBindingData{"tls-exporter", std::move(out)};
    }
    // RFC 5929 §3.1: the first Finished message of the latest handshake; on a server with a
    // full handshake that is the client's (peer's) Finished, on resumption the server's.
    char buf[128];
    std::size_t n = SSL_session_reused(ssl) ? SSL_get_finished(ssl, buf, sizeof buf)
                                            : SSL_get_peer_finished(ssl, buf, sizeof buf);
    if (n == 0 || n > sizeof buf) {
        return std::nullopt;
    }
    return ChannelBindingData{"tls-unique", std::string(buf, n)};
}

}  // namespace haven::net
