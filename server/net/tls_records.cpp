// TlsRecords: TLS 1.3 application-data records after an OpenSSL handshake (see the header).
#include "server/net/tls_records.hpp"

#include <algorithm>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

namespace haven::net {

namespace {

// RFC 8446 §5.1 content types and §6 alert descriptions used here.
constexpr unsigned char type_alert = 21;
constexpr unsigned char type_handshake = 22;
constexpr unsigned char type_application_data = 23;
constexpr unsigned char handshake_new_session_ticket = 4;
constexpr unsigned char handshake_key_update = 24;
constexpr std::size_t handshake_header_len = 4;  // msg_type, uint24 length (§4)
constexpr int alert_close_notify = 0;
constexpr int alert_unexpected_message = 10;
constexpr int alert_bad_record_mac = 20;
constexpr int alert_record_overflow = 22;
constexpr int alert_illegal_parameter = 47;
constexpr int alert_decode_error = 50;
constexpr int alert_internal_error = 80;
constexpr int alert_user_canceled = 90;
constexpr int no_alert = -1;

constexpr std::size_t header_len = 5;
constexpr std::size_t tag_len = 16;  // all three suites

struct SuiteInfo {
    std::uint16_t id;
    const char* cipher;
    const char* digest;
    std::size_t key_len;
    std::size_t secret_len;
};

// RFC 8446 §B.4; CCM suites (off by default in OpenSSL) stay with OpenSSL.
constexpr SuiteInfo suites[] = {
    {0x1301, "AES-128-GCM", "SHA256", 16, 32},
    {0x1302, "AES-256-GCM", "SHA384", 32, 48},
    {0x1303, "ChaCha20-Poly1305", "SHA256", 32, 32},
};

struct KdfFree {
    void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxFree {
    void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

// HKDF-Expand-Label(secret, label, "", out.size()) (RFC 8446 §7.1) with OpenSSL's TLS 1.3 KDF.
bool expand_label(const char* digest, const unsigned char* secret, std::size_t secret_len,
                  std::string_view label, unsigned char* out, std::size_t out_len) {
    std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_TLS1_3_KDF, nullptr));
    if (!kdf) {
        return false;
    }
    std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
    if (!ctx) {
        return false;
    }
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    static constexpr char prefix[] = "tls13 ";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(secret),
                                          secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, const_cast<char*>(prefix),
                                          sizeof prefix - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, const_cast<char*>(label.data()),
                                          label.size()),
        OSSL_PARAM_construct_end(),
    };
    return EVP_KDF_derive(ctx.get(), out, out_len, params) == 1;
}

// The key-log callback: "LABEL <client random hex> <secret hex>".
void capture_line(const SSL* ssl, const char* line) {
    auto* secrets = static_cast<TrafficSecrets*>(SSL_get_app_data(ssl));
    if (secrets == nullptr) {
        return;
    }
    const std::string_view text(line);
    const auto first = text.find(' ');
    const auto second = text.find(' ', first == std::string_view::npos ? first : first + 1);
    if (first == std::string_view::npos || second == std::string_view::npos) {
        return;
    }
    const std::string_view label = text.substr(0, first);
    unsigned char* target = nullptr;
    std::size_t* target_len = nullptr;
    if (label == "CLIENT_TRAFFIC_SECRET_0") {
        target = secrets->client.data();
        target_len = &secrets->client_len;
    } else if (label == "SERVER_TRAFFIC_SECRET_0") {
        target = secrets->server.data();
        target_len = &secrets->server_len;
    } else {
        return;
    }
    std::size_t len = 0;
    if (OPENSSL_hexstr2buf_ex(target, TrafficSecrets::max_len, &len, line + second + 1, '\0') ==
        1) {
        *target_len = len;
    }
}

// Sees every record OpenSSL writes; the inner content type of a protected record tells whether
// it carried application data or an alert (handshake messages are expected and harmless).
void watch_writes(int write_p, int, int content_type, const void* buf, std::size_t len, SSL*,
                  void* arg) {
    if (write_p == 1 && content_type == SSL3_RT_INNER_CONTENT_TYPE && len == 1 && arg != nullptr) {
        const auto type = *static_cast<const unsigned char*>(buf);
        if (type == type_application_data || type == type_alert) {
            static_cast<TrafficSecrets*>(arg)->written_after_handshake = true;
        }
    }
}

}  // namespace

TrafficSecrets::~TrafficSecrets() {
    OPENSSL_cleanse(client.data(), client.size());
    OPENSSL_cleanse(server.data(), server.size());
}

void enable_record_takeover(SSL_CTX* ctx) {
    SSL_CTX_set_keylog_callback(ctx, capture_line);
    SSL_CTX_set_num_tickets(ctx, 0);
}

void attach_secrets(SSL* ssl, TrafficSecrets* secrets) {
    SSL_set_app_data(ssl, secrets);
    SSL_set_msg_callback(ssl, secrets != nullptr ? watch_writes : nullptr);
    SSL_set_msg_callback_arg(ssl, secrets);
}

std::unique_ptr<TlsRecords> TlsRecords::take_over(SSL* ssl, const TrafficSecrets& secrets,
                                                  std::uint64_t rekey_after) {
    // Exact sequence numbers are what make this safe: with no tickets nothing was written under
    // the application keys yet, and without read-ahead OpenSSL stopped reading at the end of the
    // peer's Finished, so both directions start at record 0. A client sends no tickets, and what
    // the server sent after its Finished is still unread in the client's BIO.
    const bool client = SSL_is_server(ssl) == 0;
    if (SSL_version(ssl) != TLS1_3_VERSION || !SSL_is_init_finished(ssl) ||
        (!client && SSL_get_num_tickets(ssl) != 0) || SSL_get_read_ahead(ssl) != 0 ||
        SSL_has_pending(ssl) || SSL_pending(ssl) > 0 ||
        SSL_get_early_data_status(ssl) == SSL_EARLY_DATA_ACCEPTED ||
        secrets.written_after_handshake) {
        return nullptr;
    }
    // RFC 6066 max_fragment_length: a client wants smaller records than we would send (as a
    // client we never ask for it, but if the context did, OpenSSL must keep the records).
    const SSL_SESSION* session = SSL_get0_session(ssl);
    if (session == nullptr ||
        SSL_SESSION_get_max_fragment_length(session) != TLSEXT_max_fragment_length_DISABLED) {
        return nullptr;
    }
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    if (cipher == nullptr) {
        return nullptr;
    }
    const auto id = SSL_CIPHER_get_protocol_id(cipher);
    const SuiteInfo* suite = nullptr;
    for (const auto& s : suites) {
        if (s.id == id) {
            suite = &s;
        }
    }
    if (suite == nullptr || secrets.client_len != suite->secret_len ||
        secrets.server_len != suite->secret_len) {
        return nullptr;
    }
    auto r = std::make_unique<TlsRecords>(Key{});
    r->digest_ = suite->digest;
    r->secret_len_ = suite->secret_len;
    r->key_len_ = suite->key_len;
    r->rekey_after_ = rekey_after;
    r->client_ = client;
    r->cipher_.reset(EVP_CIPHER_fetch(nullptr, suite->cipher, nullptr));
    if (!r->cipher_) {
        return nullptr;
    }
    // §7.1: each side writes under its own traffic secret and reads under the peer's.
    const auto& ours = client ? secrets.client : secrets.server;
    const auto& peers = client ? secrets.server : secrets.client;
    std::copy_n(peers.data(), suite->secret_len, r->read_.secret.data());
    std::copy_n(ours.data(), suite->secret_len, r->write_.secret.data());
    if (!r->derive(r->read_) || !r->derive(r->write_)) {
        return nullptr;
    }
    r->exporter_.resize(32);
    static constexpr char label[] = "EXPORTER-Channel-Binding";
    if (SSL_export_keying_material(ssl, reinterpret_cast<unsigned char*>(r->exporter_.data()),
                                   r->exporter_.size(), label, sizeof label - 1, nullptr, 0,
                                   0) != 1) {
        return nullptr;
    }
    return r;
}

TlsRecords::~TlsRecords() {
    OPENSSL_cleanse(exporter_.data(), exporter_.size());
    for (Direction* d : {&read_, &write_}) {
        OPENSSL_cleanse(d->secret.data(), d->secret.size());
        OPENSSL_cleanse(d->key.data(), d->key.size());
        OPENSSL_cleanse(d->iv.data(), d->iv.size());
    }
}

bool TlsRecords::derive(Direction& d) {
    d.ctx.reset();  // the next record initialises a context with the new key
    d.seq = 0;
    return expand_label(digest_, d.secret.data(), secret_len_, "key", d.key.data(), key_len_) &&
           expand_label(digest_, d.secret.data(), secret_len_, "iv", d.iv.data(), d.iv.size());
}

bool TlsRecords::update_key(Direction& d) {
    // §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", len)
    std::array<unsigned char, TrafficSecrets::max_len> next{};
    if (!expand_label(digest_, d.secret.data(), secret_len_, "traffic upd", next.data(),
                      secret_len_)) {
        return false;
    }
    d.secret = next;
    OPENSSL_cleanse(next.data(), next.size());
    return derive(d);
}

void TlsRecords::release_idle() {
    read_.ctx.reset();
    write_.ctx.reset();
    if (partial_.empty()) {
        std::string().swap(partial_);
    }
}

EVP_CIPHER_CTX* TlsRecords::cipher_for(Direction& d, bool encrypt) {
    if (!d.ctx) {
        CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
        if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher_.get(), nullptr, d.key.data(), nullptr,
                                      encrypt ? 1 : 0) != 1) {
            return nullptr;
        }
        d.ctx = std::move(ctx);
    }
    // §5.3: the per-record nonce is the static IV XORed with the 64-bit sequence number,
    // left-padded to the IV length.
    std::array<unsigned char, 12> nonce = d.iv;
    for (int i = 0; i < 8; ++i) {
        nonce[nonce.size() - 1 - static_cast<std::size_t>(i)] ^=
            static_cast<unsigned char>(d.seq >> (8 * i));
    }
    if (EVP_CipherInit_ex(d.ctx.get(), nullptr, nullptr, nullptr, nonce.data(), encrypt ? 1 : 0) !=
        1) {
        return nullptr;
    }
    return d.ctx.get();
}

bool TlsRecords::seal_record(unsigned char type, const unsigned char* data, std::size_t len,
                             std::string& wire) {
    if (type == type_application_data && (key_update_owed_ || write_.seq >= rekey_after_)) {
        // §4.6.3: the KeyUpdate the peer asked for goes out before our next application data,
        // as does our own before the key wears out; it is the last record under the old key.
        // Answering only here sends one reply however many requests came in.
        key_update_owed_ = false;
        if (!send_key_update(wire)) {
            return false;
        }
    }
    EVP_CIPHER_CTX* ctx = cipher_for(write_, true);
    if (ctx == nullptr) {
        failure_ = "TLS record encryption failed";
        return false;
    }
    // §5.2: TLSInnerPlaintext is content || type (no padding), sealed under the record header.
    const std::size_t body = len + 1 + tag_len;
    const std::size_t at = wire.size();
    wire.resize(at + header_len + body);
    auto* out = reinterpret_cast<unsigned char*>(wire.data() + at);
    out[0] = type_application_data;
    out[1] = 0x03;
    out[2] = 0x03;
    out[3] = static_cast<unsigned char>(body >> 8);
    out[4] = static_cast<unsigned char>(body & 0xff);
    int n = 0;
    int m = 0;
    unsigned char* p = out + header_len;
    const bool ok = EVP_EncryptUpdate(ctx, nullptr, &n, out, header_len) == 1 &&
                    EVP_EncryptUpdate(ctx, p, &n, data, static_cast<int>(len)) == 1 &&
                    EVP_EncryptUpdate(ctx, p + n, &m, &type, 1) == 1 &&
                    EVP_EncryptFinal_ex(ctx, p + n + m, &m) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, tag_len, p + len + 1) == 1;
    if (!ok) {
        wire.resize(at);
        failure_ = "TLS record encryption failed";
        return false;
    }
    ++write_.seq;
    return true;
}

bool TlsRecords::seal(std::string_view plaintext, std::string& wire) {
    if (failed_) {
        return false;
    }
    const auto* data = reinterpret_cast<const unsigned char*>(plaintext.data());
    std::size_t left = plaintext.size();
    wire.reserve(wire.size() + left + (left / max_plaintext + 1) * (header_len + 1 + tag_len));
    while (left > 0) {
        const std::size_t n = std::min(left, max_plaintext);
        if (!seal_record(type_application_data, data, n, wire)) {
            return false;
        }
        data += n;
        left -= n;
    }
    return true;
}

bool TlsRecords::seal_close_notify(std::string& wire) {
    const unsigned char alert[2] = {1, alert_close_notify};  // level warning
    return !failed_ && seal_record(type_alert, alert, sizeof alert, wire);
}

bool TlsRecords::send_key_update(std::string& wire) {
    // KeyUpdate with request_update = update_not_requested (0), then the new sending key.
    const unsigned char msg[5] = {handshake_key_update, 0, 0, 1, 0};
    return seal_record(type_handshake, msg, sizeof msg, wire) && update_key(write_);
}

TlsRecords::Status TlsRecords::fail(std::string_view why, int alert, std::string& wire) {
    failure_.assign(why);
    if (alert != no_alert && !failed_) {
        const unsigned char body[2] = {2, static_cast<unsigned char>(alert)};  // level fatal
        seal_record(type_alert, body, sizeof body, wire);
    }
    failed_ = true;
    return Status::Failed;
}

TlsRecords::Status TlsRecords::open(std::span<char> in, std::string& wire, const Sink& sink) {
    if (failed_) {
        return Status::Failed;
    }
    auto* bytes = reinterpret_cast<unsigned char*>(in.data());
    std::size_t pos = 0;
    bool keep_going = true;

    // A record split across reads is completed in partial_ first.
    if (!partial_.empty()) {
        std::size_t need = header_len;
        if (partial_.size() >= header_len) {
            need += (std::size_t(std::uint8_t(partial_[3])) << 8) | std::uint8_t(partial_[4]);
        }
        while (pos < in.size()) {
            const std::size_t take = std::min(need - partial_.size(), in.size() - pos);
            partial_.append(in.data() + pos, take);
            pos += take;
            if (partial_.size() == header_len && need == header_len) {
                const std::size_t body =
                    (std::size_t(std::uint8_t(partial_[3])) << 8) | std::uint8_t(partial_[4]);
                if (std::uint8_t(partial_[0]) != type_application_data) {
                    return fail("unexpected TLS record type", alert_unexpected_message, wire);
                }
                if (body > max_ciphertext) {
                    return fail("TLS record too large", alert_record_overflow, wire);
                }
                need += body;
            }
            if (partial_.size() == need) {
                break;
            }
        }
        if (partial_.size() < header_len || partial_.size() < need) {
            return Status::Ok;  // still incomplete
        }
        std::string record = std::move(partial_);
        partial_.clear();
        const Status s = open_record(reinterpret_cast<unsigned char*>(record.data()),
                                     record.size() - header_len, wire, sink, keep_going);
        if (s != Status::Ok || !keep_going) {
            return s;
        }
    }

    // The rest is opened in place, and the plaintexts are joined so the stream gets them in one
    // piece: the first stays where it was decrypted, later ones move down behind it (each
    // plaintext is shorter than its record, so they never overtake unread records).
    std::size_t plain_begin = 0;
    std::size_t plain_end = 0;
    const Sink gather = [&](std::string_view plain) {
        auto* at = reinterpret_cast<const unsigned char*>(plain.data());
        if (plain_end == plain_begin) {
            plain_begin = static_cast<std::size_t>(at - bytes);
            plain_end = plain_begin;
        } else if (at != bytes + plain_end) {
            std::memmove(bytes + plain_end, at, plain.size());
        }
        plain_end += plain.size();
        return true;
    };
    const auto gathered = [&] {
        return std::string_view(in.data() + plain_begin, plain_end - plain_begin);
    };
    while (in.size() - pos >= header_len) {
        unsigned char* rec = bytes + pos;
        const std::size_t body = (std::size_t(rec[3]) << 8) | rec[4];
        if (rec[0] != type_application_data) {
            return fail("unexpected TLS record type", alert_unexpected_message, wire);
        }
        if (body > max_ciphertext) {
            return fail("TLS record too large", alert_record_overflow, wire);
        }
        if (in.size() - pos < header_len + body) {
            break;
        }
        // Plaintext already gathered must reach the stream before a record that changes state
        // (a KeyUpdate reply or the end of the stream) is acted on; open_record only delivers
        // application data through `gather`, so the order is kept.
        const Status s = open_record(rec, body, wire, gather, keep_going);
        pos += header_len + body;
        if (s != Status::Ok) {
            if (plain_end > plain_begin) {
                sink(gathered());
            }
            return s;
        }
    }
    if (pos < in.size()) {
        partial_.assign(in.data() + pos, in.size() - pos);
    }
    if (plain_end > plain_begin) {
        sink(gathered());
    }
    return Status::Ok;
}

TlsRecords::Status TlsRecords::open_record(unsigned char* record, std::size_t body_len,
                                           std::string& wire, const Sink& sink,
                                           bool& keep_going) {
    if (body_len < tag_len + 1) {
        return fail("TLS record too short", alert_bad_record_mac, wire);
    }
    if (body_len - tag_len > max_plaintext + 1) {
        // §5.4: content, type and padding together stay within 2^14 + 1 bytes.
        return fail("TLS record too large", alert_record_overflow, wire);
    }
    EVP_CIPHER_CTX* ctx = cipher_for(read_, false);
    if (ctx == nullptr) {
        return fail("TLS record decryption failed", alert_internal_error, wire);
    }
    unsigned char* body = record + header_len;
    const std::size_t text_len = body_len - tag_len;
    int n = 0;
    int m = 0;
    const bool ok =
        EVP_DecryptUpdate(ctx, nullptr, &n, record, header_len) == 1 &&
        EVP_DecryptUpdate(ctx, body, &n, body, static_cast<int>(text_len)) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, tag_len, body + text_len) == 1 &&
        EVP_DecryptFinal_ex(ctx, body + n, &m) == 1;
    if (!ok) {
        return fail("TLS record failed authentication", alert_bad_record_mac, wire);
    }
    ++read_.seq;
    // §5.4: strip the zero padding; the last non-zero byte is the real content type.
    std::size_t len = text_len;
    while (len > 0 && body[len - 1] == 0) {
        --len;
    }
    if (len == 0) {
        return fail("TLS record without content type", alert_unexpected_message, wire);
    }
    const unsigned char type = body[--len];
    switch (type) {
        case type_application_data:
            key_updates_in_a_row_ = 0;
            if (len > 0) {
                keep_going = sink(std::string_view(reinterpret_cast<char*>(body), len));
            }
            return Status::Ok;
        case type_alert:
            if (len != 2) {
                return fail("malformed TLS alert", alert_decode_error, wire);
            }
            if (body[1] == alert_close_notify || body[1] == alert_user_canceled) {
                return Status::PeerClosed;
            }
            return fail("TLS alert " + std::to_string(body[1]) +
                            (client_ ? " from the server" : " from the client"),
                        no_alert, wire);
        case type_handshake:
            return open_handshake(body, len, wire);
        default:
            return fail("unexpected TLS content type", alert_unexpected_message, wire);
    }
}

// The handshake messages of one record. After the handshake a client may only send KeyUpdate
// (we never ask for post-handshake authentication); a server may also send NewSessionTicket,
// which a client that never resumes ignores. Messages split across records are legal (§5.1) but
// no peer splits these small ones, so they are refused rather than reassembled.
TlsRecords::Status TlsRecords::open_handshake(const unsigned char* msgs, std::size_t len,
                                              std::string& wire) {
    if (len == 0) {
        return fail("unexpected TLS handshake message", alert_unexpected_message, wire);
    }
    while (len > 0) {
        if (len < handshake_header_len) {
            return fail("TLS handshake message split across records", alert_unexpected_message,
                        wire);
        }
        const unsigned char type = msgs[0];
        const std::size_t body_len =
            (std::size_t(msgs[1]) << 16) | (std::size_t(msgs[2]) << 8) | msgs[3];
        const bool ticket = client_ && type == handshake_new_session_ticket;
        if (type != handshake_key_update && !ticket) {
            return fail("unexpected TLS handshake message", alert_unexpected_message, wire);
        }
        if (type == handshake_key_update && body_len != 1) {
            return fail("malformed TLS KeyUpdate", alert_decode_error, wire);
        }
        if (len - handshake_header_len < body_len) {
            return fail("TLS handshake message split across records", alert_unexpected_message,
                        wire);
        }
        const unsigned char* body = msgs + handshake_header_len;
        msgs += handshake_header_len + body_len;
        len -= handshake_header_len + body_len;
        if (ticket) {
            continue;  // §4.6.1: only for resumption, which we never attempt
        }
        // §5.1: the key changes after a KeyUpdate, so it must end its record.
        if (len != 0) {
            return fail("TLS KeyUpdate not at the end of its record", alert_unexpected_message,
                        wire);
        }
        if (body[0] > 1) {
            return fail("malformed TLS KeyUpdate", alert_illegal_parameter, wire);
        }
        if (++key_updates_in_a_row_ > max_key_updates_in_a_row) {
            return fail("too many TLS KeyUpdates", alert_unexpected_message, wire);
        }
        if (!update_key(read_)) {
            return fail("TLS key update failed", alert_internal_error, wire);
        }
        key_update_owed_ = key_update_owed_ || body[0] == 1;
    }
    return Status::Ok;
}

}  // namespace haven::net
