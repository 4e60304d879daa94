// TlsRecords: TLS 1.3 record protection (RFC 8446 §5) for a connection whose handshake OpenSSL
// has finished, so that an established connection no longer holds OpenSSL's per-connection state.
//
// Why: OpenSSL 3.0 keeps about 14 KiB for each established connection (the SSL object alone is
// 7.8 KiB, most of it a record layer sized for 32 pipelines), which is the largest part of what an
// idle XMPP connection costs. The usual way out is Linux kernel TLS: OpenSSL runs the handshake,
// the kernel protects the records. Kernel TLS is not available on every kernel (it is not on our
// test machines), so this is the same split in user space. OpenSSL still does everything that
// needs judgement (handshake, certificates, key exchange, key schedule up to the traffic secrets);
// this class only seals and opens application-data records with OpenSSL's AEAD ciphers and
// derives keys with OpenSSL's TLS 1.3 KDF. Deliberately narrow: TLS 1.3 with the three AEAD
// suites of RFC 8446 §B.4 that OpenSSL enables by default, no early data, no session tickets
// sent after the takeover; KeyUpdate (§4.6.3) both ways, alerts (§6). Anything else keeps OpenSSL.
//
// Both roles: havend takes over its server side; the load generator (contrib/bench) takes over
// its client side, so that it spends its CPU on the server it measures and not on OpenSSL's
// record layer. A client also accepts and ignores the NewSessionTickets (§4.6.1) servers send
// after the handshake: it never resumes a session.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/ssl.h>

namespace haven::net {

// The traffic secrets of one handshake (RFC 8446 §7.1), wiped when destroyed.
struct TrafficSecrets {
    static constexpr std::size_t max_len = 48;  // SHA-384
    std::array<unsigned char, max_len> client{};
    std::array<unsigned char, max_len> server{};
    std::size_t client_len = 0;
    std::size_t server_len = 0;
    // OpenSSL sent application data or an alert under the traffic keys before the takeover:
    // its sequence numbers are then unknown here, so the takeover must not happen.
    bool written_after_handshake = false;

    TrafficSecrets() = default;
    TrafficSecrets(const TrafficSecrets&) = delete;
    TrafficSecrets& operator=(const TrafficSecrets&) = delete;
    ~TrafficSecrets();
};

// Makes a context (server or client) hand each SSL's traffic secrets to the TrafficSecrets
// attached with attach_secrets() (which also watches what OpenSSL writes, see
// written_after_handshake). OpenSSL 3.0 exposes them only through its key-log callback; the
// lines never leave memory. Also turns off TLS 1.3 session tickets, which only a server sends: a
// ticket sent after the handshake would use up write sequence numbers we could not account for.
// On a client context that setting has no effect.
void enable_record_takeover(SSL_CTX* ctx);
void attach_secrets(SSL* ssl, TrafficSecrets* secrets);

class TlsRecords {
public:
    enum class Status {
        Ok,          // all complete records opened (an incomplete tail is kept)
        PeerClosed,  // close_notify (or user_canceled) received
        Failed,      // protocol or integrity failure; a fatal alert was queued when we caused it
    };
    // Returns false when the connection is closing: the rest of the input is then dropped.
    using Sink = std::function<bool(std::string_view plaintext)>;

    // Largest plaintext per record (RFC 8446 §5.1) and largest ciphertext accepted (§5.2).
    static constexpr std::size_t max_plaintext = 16384;
    static constexpr std::size_t max_ciphertext = max_plaintext + 256;
    // Our own KeyUpdate after this many records under one key: well inside the AES-GCM limit of
    // 2^24.5 full-size records per key (§5.5).
    static constexpr std::uint64_t default_rekey_after = std::uint64_t{1} << 24;
    // KeyUpdates the peer may send in a row without application data in between; more is a
    // flood (each one costs a key derivation), answered with unexpected_message.
    static constexpr unsigned max_key_updates_in_a_row = 32;

    // Takes over a connection right after OpenSSL's handshake completed, in the role of the SSL
    // (SSL_is_server). Returns nullptr when that cannot be done exactly (not TLS 1.3, another
    // cipher suite, a server with tickets enabled, or OpenSSL already holds bytes read past the
    // handshake); the caller then keeps the SSL. On success the SSL is no longer needed and may
    // be freed without shutdown. Bytes the peer sent after its Finished that OpenSSL never read
    // (a client's underlying BIO may hold the server's tickets) go to open() as they are.
    static std::unique_ptr<TlsRecords> take_over(SSL* ssl, const TrafficSecrets& secrets,
                                                 std::uint64_t rekey_after = default_rekey_after);

    // Only take_over() can make one (the key keeps the constructor out of reach).
    class Key {
        friend class TlsRecords;
        Key() = default;
    };
    explicit TlsRecords(Key) {}
    ~TlsRecords();
    TlsRecords(const TlsRecords&) = delete;
    TlsRecords& operator=(const TlsRecords&) = delete;

    // Appends the records carrying `plaintext` to `wire`. False only if OpenSSL fails (out of
    // memory); the connection must then be dropped.
    bool seal(std::string_view plaintext, std::string& wire);
    // Appends a close_notify alert to `wire`.
    bool seal_close_notify(std::string& wire);

    // Opens the records in `in` (bytes as read from the socket; decrypted in place). Plaintext is
    // handed to `sink` in order, as views valid during the call. An incomplete record at the end
    // is kept for the next call. Replies the protocol requires (our KeyUpdate, a fatal alert) are
    // appended to `wire`.
    Status open(std::span<char> in, std::string& wire, const Sink& sink);

    // Why open() or seal() failed, for the log (never contains data).
    const std::string& failure() const { return failure_; }

    // RFC 9266 tls-exporter value, computed by OpenSSL before the takeover.
    const std::string& exporter_channel_binding() const { return exporter_; }

    // An idle connection drops its cipher contexts (about 2 KiB); the next record rebuilds them
    // from the keys. A record half received is kept.
    void release_idle();

private:
    struct CipherCtxFree {
        void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
    };
    struct CipherFree {
        void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
    };
    using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
    using CipherPtr = std::unique_ptr<EVP_CIPHER, CipherFree>;
    // One direction's keys (RFC 8446 §7.3) and record sequence number (§5.3).
    struct Direction {
        std::array<unsigned char, TrafficSecrets::max_len> secret{};
        std::array<unsigned char, 32> key{};
        std::array<unsigned char, 12> iv{};
        std::uint64_t seq = 0;
        CipherCtxPtr ctx;
    };

    bool derive(Direction& d);
    bool update_key(Direction& d);
    EVP_CIPHER_CTX* cipher_for(Direction& d, bool encrypt);
    bool seal_record(unsigned char type, const unsigned char* data, std::size_t len,
                     std::string& wire);
    bool send_key_update(std::string& wire);
    Status open_record(unsigned char* record, std::size_t body_len, std::string& wire,
                       const Sink& sink, bool& keep_going);
    Status open_handshake(const unsigned char* msgs, std::size_t len, std::string& wire);
    Status fail(std::string_view why, int alert, std::string& wire);

    const char* digest_ = nullptr;  // static name, e.g. "SHA256"
    std::size_t secret_len_ = 0;
    std::size_t key_len_ = 0;
    CipherPtr cipher_;
    Direction read_;
    Direction write_;
    std::uint64_t rekey_after_ = default_rekey_after;
    bool client_ = false;            // our role: the peer is a server (tickets may arrive)
    std::string partial_;  // an incomplete record carried over to the next read
    bool key_update_owed_ = false;   // the peer asked for our KeyUpdate (§4.6.3)
    unsigned key_updates_in_a_row_ = 0;
    std::string exporter_;
    std::string failure_;
    bool failed_ = false;
};

}  // namespace haven::net
