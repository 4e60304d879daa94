// Fuzz harness: the TLS 1.3 record layer havend takes over after OpenSSL's handshake
// (server/net/tls_records.hpp), in the server role, with the input as records from the peer.
// Every input starts from a real handshake on a socketpair (tests/support/tls_pair.hpp, the unit
// tests' fixture); the input is then a small program that builds the client's byte stream from
//   raw bytes (record headers, lengths, garbage),
//   records sealed with the client's real traffic key (TLS_AES_128_GCM_SHA256), whose inner
//   plaintext (content, type byte, padding) comes from the input, so the decrypted side of open()
//   (content types, handshake messages, KeyUpdate, alerts, padding) is reached, not just the
//   integrity check,
//   KeyUpdates (the harness follows the key change), bit flips, server-side seal() calls and
//   release_idle(), and feeds it to open() in chunks of input-chosen sizes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/support/tls_pair.hpp"

using namespace haven::testing;

namespace {

constexpr unsigned char type_handshake = 22;
constexpr unsigned char type_application_data = 23;

// The one context every input's handshake uses (its certificate is made once).
SSL_CTX* shared_context() {
    static CtxPtr ctx = server_context(true, "TLS_AES_128_GCM_SHA256");
    return ctx.get();
}

CtxPtr ref_context() {
    SSL_CTX_up_ref(shared_context());
    return CtxPtr(shared_context());
}

class Program {
public:
    Program(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool done() const { return at_ >= size_; }
    unsigned byte() { return at_ < size_ ? data_[at_++] : 0; }
    unsigned u16() { return (byte() << 8) | byte(); }
    std::string bytes(std::size_t n) {
        n = std::min(n, size_ - std::min(at_, size_));
        std::string out(reinterpret_cast<const char*>(data_) + at_, n);
        at_ += n;
        return out;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

// A KeyUpdate handshake message (RFC 8446 §4.6.3) that ends its record.
bool is_lone_key_update(const std::string& inner) {
    if (inner.size() < 6 || inner.substr(0, 4) != std::string("\x18\x00\x00\x01", 4)) {
        return false;
    }
    if (static_cast<unsigned char>(inner[5]) != type_handshake) {
        return false;
    }
    return inner.find_first_not_of('\0', 6) == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Pair p(ref_context());
    p.take_over();
    unsigned char secret[32];
    std::copy(p.secrets.client.begin(), p.secrets.client.begin() + 32, secret);
    std::uint64_t seq = 0;
    std::string pending;
    std::string plain;
    bool alive = true;
    Program prog(data, size);

    const auto flush = [&](std::size_t chunk) {
        if (alive && !pending.empty()) {
            alive = p.open(pending, plain, chunk) == TlsRecords::Status::Ok;
        }
        pending.clear();
        if (plain.size() > 65536) {
            plain.clear();
        }
        p.wire.clear();  // what the server would send; nobody reads it here
    };
    const auto seal_inner = [&](const std::string& inner) {
        pending += seal_inner_by_hand(secret, seq++, inner);
        if (is_lone_key_update(inner)) {
            next_secret_by_hand(secret);  // the peer (us) now writes under the next key
            seq = 0;
        }
    };

    while (!prog.done() && alive) {
        switch (prog.byte() % 8) {
            case 0:  // raw bytes
                pending += prog.bytes(prog.byte());
                break;
            case 1:  // a record with an input-chosen inner plaintext
                seal_inner(prog.bytes(prog.u16() % (TlsRecords::max_plaintext + 300)));
                break;
            case 2:  // application data, as a client sends it
                pending += seal_by_hand(secret, seq++, type_application_data,
                                        prog.bytes(prog.byte()));
                break;
            case 3: {  // deliver what is pending, in chunks
                const unsigned c = prog.byte();
                flush(c == 0 ? 0 : c);
                break;
            }
            case 4:  // flip one bit of what is pending
                if (!pending.empty()) {
                    const unsigned at = prog.u16();
                    pending[at % pending.size()] ^= static_cast<char>(1u << (at % 8));
                }
                break;
            case 5: {  // KeyUpdate, update_requested or not
                std::string ku("\x18\x00\x00\x01", 4);
                ku += static_cast<char>(prog.byte() & 1);
                seal_inner(ku + static_cast<char>(type_handshake));
                break;
            }
            case 6:
                p.records->release_idle();
                break;
            default:  // the server writes (sends an owed KeyUpdate first)
                alive = p.records->seal(prog.bytes(prog.byte()), p.wire);
                p.wire.clear();
                break;
        }
    }
    flush(0);
    return 0;
}
