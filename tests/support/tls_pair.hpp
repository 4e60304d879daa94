// An OpenSSL client and server on a socketpair, handshaken in memory, whose server side (or
// client side) is then taken over by TlsRecords; plus a record sealer by hand for shapes an
// OpenSSL peer never sends. Shared by tests/unit/test_tls_records.cpp and the record-layer fuzz
// harness (tests/fuzz/fuzz_tls_records.cpp), so it reports failures by throwing rather than
// through doctest (a doctest case fails on the exception just like on REQUIRE).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "server/net/tls_records.hpp"

namespace haven::testing {

using haven::net::TlsRecords;
using haven::net::TrafficSecrets;

inline void require(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error(std::string("tls_pair: failed: ") + what);
    }
}

template <typename T, void (*F)(T*)>
struct Free {
    void operator()(T* p) const { F(p); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, Free<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<SSL, SSL_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Free<X509, X509_free>>;

// A throwaway self-signed P-256 certificate, made in memory so the test needs no files.
inline CtxPtr server_context(bool takeover, const char* suites = nullptr) {
    KeyPtr key(EVP_EC_gen("P-256"));
    CertPtr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
    X509_set_pubkey(cert.get(), key.get());
    X509_sign(cert.get(), key.get(), EVP_sha256());
    CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(ctx.get(), cert.get());
    SSL_CTX_use_PrivateKey(ctx.get(), key.get());
    if (suites != nullptr) {
        SSL_CTX_set_ciphersuites(ctx.get(), suites);
    }
    if (takeover) {
        haven::net::enable_record_takeover(ctx.get());
    }
    return ctx;
}

// Feeds `raw` to `records` in chunks of `chunk` bytes (0: all at once), collecting plaintext;
// replies go to `wire`.
inline TlsRecords::Status open_in_chunks(TlsRecords& records, const std::string& raw,
                                         std::string& wire, std::string& plain, std::size_t chunk) {
    if (chunk == 0) {
        chunk = raw.size() == 0 ? 1 : raw.size();
    }
    auto status = TlsRecords::Status::Ok;
    for (std::size_t at = 0; at < raw.size() && status == TlsRecords::Status::Ok; at += chunk) {
        std::string piece = raw.substr(at, chunk);
        status = records.open(std::span<char>(piece.data(), piece.size()), wire,
                              [&](std::string_view p) {
                                  plain.append(p);
                                  return true;
                              });
    }
    return status;
}

// Everything a non-blocking descriptor has to give right now.
inline std::string read_available(int fd) {
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

inline void write_all(int fd, std::string& bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + at, bytes.size() - at);
        require(n > 0, "bool");
        at += static_cast<std::size_t>(n);
    }
    bytes.clear();
}

// OpenSSL peer -> TlsRecords: `peer` writes `data`, the bytes are read from `fd` (the taken-over
// side's socket) and opened in chunks; returns the plaintext TlsRecords saw.
inline std::string openssl_to_records(SSL* peer, const std::string& data, int fd,
                                      TlsRecords& records, std::string& wire, std::size_t chunk) {
    std::size_t written = 0;
    require(SSL_write_ex(peer, data.data(), data.size(), &written) == 1, "SSL_write_ex");
    std::string plain;
    require(
        open_in_chunks(records, read_available(fd), wire, plain, chunk) == TlsRecords::Status::Ok,
        "open_in_chunks");
    return plain;
}

// TlsRecords -> OpenSSL peer: sends `wire` on `fd` and returns what `peer` reads.
inline std::string records_to_openssl(int fd, std::string& wire, SSL* peer) {
    write_all(fd, wire);
    std::string out;
    char buf[65536];
    for (int i = 0; i < 1000; ++i) {
        std::size_t n = 0;
        if (SSL_read_ex(peer, buf, sizeof buf, &n) != 1) {
            break;
        }
        out.append(buf, n);
    }
    return out;
}

// An OpenSSL client and server on a socketpair; after connect() the server may be taken over.
struct Pair {
    CtxPtr sctx;
    CtxPtr cctx{SSL_CTX_new(TLS_client_method())};
    int fd[2] = {-1, -1};  // [0] server, [1] client
    SslPtr server;
    SslPtr client;
    TrafficSecrets secrets;
    std::unique_ptr<TlsRecords> records;
    std::string wire;  // what the taken-over server has to send

    explicit Pair(CtxPtr s, int client_max_version = 0) : sctx(std::move(s)) {
        require(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0, "socketpair");
        fcntl(fd[0], F_SETFL, O_NONBLOCK);
        fcntl(fd[1], F_SETFL, O_NONBLOCK);
        if (client_max_version != 0) {
            SSL_CTX_set_max_proto_version(cctx.get(), client_max_version);
        }
        server.reset(SSL_new(sctx.get()));
        client.reset(SSL_new(cctx.get()));
        SSL_set_fd(server.get(), fd[0]);
        SSL_set_fd(client.get(), fd[1]);
        SSL_set_accept_state(server.get());
        SSL_set_connect_state(client.get());
        haven::net::attach_secrets(server.get(), &secrets);
    }
    ~Pair() {
        server.reset();
        client.reset();
        close(fd[0]);
        close(fd[1]);
    }

    void handshake() {
        bool s_done = false;
        bool c_done = false;
        for (int i = 0; i < 50 && !(s_done && c_done); ++i) {
            c_done = c_done || SSL_do_handshake(client.get()) == 1;
            s_done = s_done || SSL_do_handshake(server.get()) == 1;
        }
        require(s_done, "s_done");
        require(c_done, "c_done");
    }

    void take_over(std::uint64_t rekey_after = TlsRecords::default_rekey_after) {
        handshake();
        records = TlsRecords::take_over(server.get(), secrets, rekey_after);
        require(records != nullptr, "records");
        server.reset();  // from here on only TlsRecords speaks for the server
    }

    std::string read_raw() { return read_available(fd[0]); }

    // Feeds `raw` to the server in chunks of `chunk` bytes, collecting plaintext.
    TlsRecords::Status open(const std::string& raw, std::string& plain, std::size_t chunk = 0) {
        return open_in_chunks(*records, raw, wire, plain, chunk);
    }

    // Client -> server: returns the plaintext the server saw.
    std::string client_to_server(const std::string& data, std::size_t chunk = 0) {
        return openssl_to_records(client.get(), data, fd[0], *records, wire, chunk);
    }

    // Sends the server's pending wire bytes and returns what the client reads.
    std::string server_to_client() { return records_to_openssl(fd[0], wire, client.get()); }
};

// HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256 and an empty context; one HMAC block suffices
// for every length used here.
inline std::string expand_label(const unsigned char* secret, const std::string& label,
                                std::size_t len) {
    const std::string full = "tls13 " + label;
    std::string info;
    info += static_cast<char>(0);
    info += static_cast<char>(len);
    info += static_cast<char>(full.size());
    info += full;
    info += static_cast<char>(0);  // empty context
    info += static_cast<char>(1);  // HKDF-Expand block counter
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    HMAC(EVP_sha256(), secret, 32, reinterpret_cast<const unsigned char*>(info.data()), info.size(),
         out, &out_len);
    return std::string(reinterpret_cast<char*>(out), len);
}

// One TLS_AES_128_GCM_SHA256 record sealed by hand (RFC 8446 §5.2, §7.1, §7.3), for handshake
// messages in shapes an OpenSSL peer never sends. Deliberately independent of TlsRecords: HKDF
// with a single HMAC block, AES-GCM straight from EVP.
// `inner` is the whole TLSInnerPlaintext (§5.2: content, type byte, zero padding), so callers can
// also build ones without a type or with padding.
inline std::string seal_inner_by_hand(const unsigned char* secret, std::uint64_t seq,
                                      const std::string& inner) {
    const std::string key = expand_label(secret, "key", 16);
    std::string nonce = expand_label(secret, "iv", 12);
    for (int i = 0; i < 8; ++i) {
        nonce[11 - static_cast<std::size_t>(i)] ^= static_cast<char>(seq >> (8 * i));
    }
    const std::size_t body = inner.size() + 16;
    std::string record = {23, 3, 3, static_cast<char>(body >> 8), static_cast<char>(body & 0xff)};
    record.resize(5 + body);
    auto* out = reinterpret_cast<unsigned char*>(record.data());
    std::unique_ptr<EVP_CIPHER_CTX, Free<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>> ctx(
        EVP_CIPHER_CTX_new());
    int n = 0;
    int m = 0;
    require(EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_gcm(), nullptr,
                               reinterpret_cast<const unsigned char*>(key.data()),
                               reinterpret_cast<const unsigned char*>(nonce.data())) == 1,
            "EVP_EncryptInit_ex");
    require(EVP_EncryptUpdate(ctx.get(), nullptr, &n, out, 5) == 1, "EVP_EncryptUpdate");
    require(EVP_EncryptUpdate(ctx.get(), out + 5, &n,
                              reinterpret_cast<const unsigned char*>(inner.data()),
                              static_cast<int>(inner.size())) == 1,
            "EVP_EncryptUpdate");
    require(EVP_EncryptFinal_ex(ctx.get(), out + 5 + n, &m) == 1, "EVP_EncryptFinal_ex");
    require(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, out + 5 + inner.size()) == 1,
            "EVP_CIPHER_CTX_ctrl");
    return record;
}

inline std::string seal_by_hand(const unsigned char* secret, std::uint64_t seq, unsigned char type,
                                const std::string& content) {
    return seal_inner_by_hand(secret, seq, content + static_cast<char>(type));
}

// The next traffic secret after a KeyUpdate (RFC 8446 §7.2), for TLS_AES_128_GCM_SHA256.
inline void next_secret_by_hand(unsigned char* secret) {
    const auto next = expand_label(secret, "traffic upd", 32);
    std::copy(next.begin(), next.end(), secret);
}

}  // namespace haven::testing
