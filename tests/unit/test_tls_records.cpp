// TlsRecords against a real OpenSSL peer: handshake by OpenSSL on both sides, then one side is
// taken over and must interoperate record for record (every suite, fragmentation, KeyUpdate both
// ways, alerts, tampering). Mostly the server side (havend); the client side (haven-bench) at the
// end, where the peer also sends session tickets.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/net/tls_records.hpp"
#include "tests/support/tls_pair.hpp"

using haven::net::TlsRecords;
using haven::net::TrafficSecrets;
using namespace haven::testing;

namespace {

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
    }
    return s;
}

}  // namespace

TEST_CASE("TlsRecords: every TLS 1.3 suite interoperates with an OpenSSL client") {
    for (const char* suite :
         {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
        CAPTURE(suite);
        Pair p(server_context(true, suite));
        p.take_over();
        CHECK(p.client_to_server("<stream:stream>") == "<stream:stream>");
        const std::string big = pattern(70000);  // five records each way
        CHECK(p.client_to_server(big) == big);
        REQUIRE(p.records->seal(big, p.wire));
        CHECK(p.server_to_client() == big);
        REQUIRE(p.records->seal("<presence/>", p.wire));
        CHECK(p.server_to_client() == "<presence/>");
        CHECK(p.records->exporter_channel_binding().size() == 32);
    }
}

TEST_CASE("TlsRecords: records split at any point are reassembled") {
    Pair p(server_context(true));
    p.take_over();
    const std::string data = pattern(40000);
    for (std::size_t chunk : {1u, 2u, 5u, 6u, 7u, 1000u, 16405u, 16406u, 16407u}) {
        CAPTURE(chunk);
        CHECK(p.client_to_server(data, chunk) == data);
    }
    // Several small records arriving in one read come out in order.
    std::size_t written = 0;
    for (const char* s : {"<a/>", "<b/>", "<c/>"}) {
        REQUIRE(SSL_write_ex(p.client.get(), s, 4, &written) == 1);
    }
    std::string plain;
    CHECK(p.open(p.read_raw(), plain) == TlsRecords::Status::Ok);
    CHECK(plain == "<a/><b/><c/>");
}

TEST_CASE("TlsRecords: KeyUpdate from the client, with and without a requested answer") {
    Pair p(server_context(true));
    p.take_over();
    REQUIRE(SSL_key_update(p.client.get(), SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
    CHECK(p.client_to_server("after one update") == "after one update");
    CHECK(p.wire.empty());  // nothing to answer

    REQUIRE(SSL_key_update(p.client.get(), SSL_KEY_UPDATE_REQUESTED) == 1);
    CHECK(p.client_to_server("please update too") == "please update too");
    CHECK(p.wire.empty());  // our KeyUpdate waits for our next application data (§4.6.3)
    REQUIRE(p.records->seal("reply under the new key", p.wire));
    CHECK(p.server_to_client() == "reply under the new key");
    CHECK(p.client_to_server("still fine") == "still fine");
}

TEST_CASE("TlsRecords: a flood of KeyUpdate requests gets one answer, then is cut off") {
    Pair p(server_context(true));
    p.take_over();
    std::string plain;
    for (int i = 0; i < 10; ++i) {
        REQUIRE(SSL_key_update(p.client.get(), SSL_KEY_UPDATE_REQUESTED) == 1);
        REQUIRE(SSL_do_handshake(p.client.get()) == 1);  // sends it without application data
    }
    CHECK(p.open(p.read_raw(), plain) == TlsRecords::Status::Ok);
    CHECK(p.wire.empty());
    REQUIRE(p.records->seal("one answer for ten", p.wire));
    CHECK(p.wire.size() < 2 * 60);  // one KeyUpdate record plus the data record
    CHECK(p.server_to_client() == "one answer for ten");

    for (unsigned i = 0; i <= TlsRecords::max_key_updates_in_a_row; ++i) {
        REQUIRE(SSL_key_update(p.client.get(), SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
        REQUIRE(SSL_do_handshake(p.client.get()) == 1);
    }
    CHECK(p.open(p.read_raw(), plain) == TlsRecords::Status::Failed);
    CHECK(p.records->failure() == "too many TLS KeyUpdates");
}

TEST_CASE("TlsRecords: the server updates its own key before it wears out") {
    Pair p(server_context(true));
    p.take_over(/*rekey_after=*/3);
    std::string expected;
    for (int i = 0; i < 10; ++i) {
        const std::string msg = "<message id='" + std::to_string(i) + "'/>";
        REQUIRE(p.records->seal(msg, p.wire));
        expected += msg;
    }
    CHECK(p.server_to_client() == expected);
}

TEST_CASE("TlsRecords: close_notify both ways") {
    Pair p(server_context(true));
    p.take_over();
    REQUIRE(p.records->seal_close_notify(p.wire));
    CHECK(p.server_to_client().empty());
    CHECK(SSL_get_error(p.client.get(), 0) == SSL_ERROR_ZERO_RETURN);

    Pair q(server_context(true));
    q.take_over();
    SSL_shutdown(q.client.get());
    std::string plain;
    CHECK(q.open(q.read_raw(), plain) == TlsRecords::Status::PeerClosed);
}

TEST_CASE("TlsRecords: a tampered record fails with bad_record_mac and nothing is delivered") {
    Pair p(server_context(true));
    p.take_over();
    std::size_t written = 0;
    REQUIRE(SSL_write_ex(p.client.get(), "secret", 6, &written) == 1);
    std::string raw = p.read_raw();
    raw[7] ^= 0x01;
    std::string plain;
    CHECK(p.open(raw, plain) == TlsRecords::Status::Failed);
    CHECK(plain.empty());
    CHECK(p.records->failure() == "TLS record failed authentication");
    // The fatal alert reaches the client as bad_record_mac.
    CHECK(p.server_to_client().empty());
    CHECK(SSL_get_error(p.client.get(), 0) == SSL_ERROR_SSL);
    // And the records object stays failed.
    REQUIRE_FALSE(p.records->seal("more", p.wire));
}

TEST_CASE("TlsRecords: malformed record headers are refused") {
    SUBCASE("plaintext handshake record after the handshake") {
        Pair p(server_context(true));
        p.take_over();
        std::string raw("\x16\x03\x03\x00\x01\x00", 6);
        std::string plain;
        CHECK(p.open(raw, plain) == TlsRecords::Status::Failed);
    }
    SUBCASE("record longer than 2^14 + 256") {
        Pair p(server_context(true));
        p.take_over();
        std::string raw("\x17\x03\x03\x41\x01", 5);
        std::string plain;
        CHECK(p.open(raw, plain) == TlsRecords::Status::Failed);
        CHECK(p.records->failure() == "TLS record too large");
    }
    SUBCASE("a changed record header (the AAD) fails authentication") {
        Pair p(server_context(true));
        p.take_over();
        std::size_t written = 0;
        REQUIRE(SSL_write_ex(p.client.get(), "data", 4, &written) == 1);
        std::string raw = p.read_raw();
        raw[2] = 0x01;  // legacy_record_version 0x0301: ignored by the rules, but authenticated
        std::string plain;
        CHECK(p.open(raw, plain) == TlsRecords::Status::Failed);
        CHECK(plain.empty());
    }
    SUBCASE("record shorter than its tag") {
        Pair p(server_context(true));
        p.take_over();
        std::string raw("\x17\x03\x03\x00\x03xyz", 8);
        std::string plain;
        CHECK(p.open(raw, plain) == TlsRecords::Status::Failed);
    }
}

TEST_CASE("TlsRecords: an idle connection drops its cipher contexts and carries on") {
    Pair p(server_context(true));
    p.take_over();
    CHECK(p.client_to_server("one") == "one");
    p.records->release_idle();
    // A record half received when the connection goes idle is kept.
    std::size_t written = 0;
    REQUIRE(SSL_write_ex(p.client.get(), "half", 4, &written) == 1);
    const std::string raw = p.read_raw();
    std::string plain;
    CHECK(p.open(raw.substr(0, 10), plain) == TlsRecords::Status::Ok);
    p.records->release_idle();
    CHECK(p.open(raw.substr(10), plain) == TlsRecords::Status::Ok);
    CHECK(plain == "half");
    CHECK(p.client_to_server("two") == "two");
    p.records->release_idle();
    REQUIRE(p.records->seal("three", p.wire));
    CHECK(p.server_to_client() == "three");
}

TEST_CASE("TlsRecords: connections it cannot take over exactly stay with OpenSSL") {
    SUBCASE("TLS 1.2 client") {
        Pair p(server_context(true), TLS1_2_VERSION);
        p.handshake();
        CHECK(TlsRecords::take_over(p.server.get(), p.secrets) == nullptr);
    }
    SUBCASE("session tickets on (context not prepared for the takeover)") {
        Pair p(server_context(false));
        p.handshake();
        CHECK(TlsRecords::take_over(p.server.get(), p.secrets) == nullptr);
    }
    SUBCASE("OpenSSL already wrote application data") {
        Pair p(server_context(true));
        p.handshake();
        std::size_t written = 0;
        REQUIRE(SSL_write_ex(p.server.get(), "early", 5, &written) == 1);
        CHECK(TlsRecords::take_over(p.server.get(), p.secrets) == nullptr);
    }
    SUBCASE("the client negotiated a smaller max_fragment_length") {
        Pair p(server_context(true));
        SSL_set_tlsext_max_fragment_length(p.client.get(), TLSEXT_max_fragment_length_512);
        p.handshake();
        CHECK(TlsRecords::take_over(p.server.get(), p.secrets) == nullptr);
    }
    SUBCASE("OpenSSL already read application data") {
        Pair p(server_context(true));
        p.handshake();
        std::size_t written = 0;
        REQUIRE(SSL_write_ex(p.client.get(), "early", 5, &written) == 1);
        char buf[1];
        REQUIRE(SSL_peek(p.server.get(), buf, 1) == 1);
        CHECK(TlsRecords::take_over(p.server.get(), p.secrets) == nullptr);
    }
}

// --- The client role: an OpenSSL server, and the client side taken over ---

namespace {

// How many whole records `wire` holds.
int count_records(const std::string& wire) {
    int n = 0;
    std::size_t at = 0;
    while (wire.size() - at >= 5) {
        at += 5 + ((std::size_t(std::uint8_t(wire[at + 3])) << 8) | std::uint8_t(wire[at + 4]));
        ++n;
    }
    return at == wire.size() ? n : -1;
}

// An OpenSSL server sending `tickets` NewSessionTickets after the handshake, and a client that
// is taken over once the handshake is done.
struct ClientPair {
    CtxPtr sctx;
    CtxPtr cctx{SSL_CTX_new(TLS_client_method())};
    int fd[2] = {-1, -1};  // [0] server, [1] client
    SslPtr server;
    SslPtr client;
    TrafficSecrets secrets;
    std::unique_ptr<TlsRecords> records;
    std::string wire;  // what the taken-over client has to send

    explicit ClientPair(int tickets, const char* suites = nullptr)
        : sctx(server_context(false, suites)) {
        SSL_CTX_set_num_tickets(sctx.get(), static_cast<std::size_t>(tickets));
        haven::net::enable_record_takeover(cctx.get());
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0);
        fcntl(fd[0], F_SETFL, O_NONBLOCK);
        fcntl(fd[1], F_SETFL, O_NONBLOCK);
        server.reset(SSL_new(sctx.get()));
        client.reset(SSL_new(cctx.get()));
        SSL_set_fd(server.get(), fd[0]);
        SSL_set_fd(client.get(), fd[1]);
        SSL_set_accept_state(server.get());
        SSL_set_connect_state(client.get());
        haven::net::attach_secrets(client.get(), &secrets);
    }
    ~ClientPair() {
        server.reset();
        client.reset();
        close(fd[0]);
        close(fd[1]);
    }

    // The client finishes first (it has sent its Finished); the server then reads that and
    // sends its tickets, which stay unread on the client's socket.
    void take_over(std::uint64_t rekey_after = TlsRecords::default_rekey_after) {
        bool s_done = false;
        bool c_done = false;
        for (int i = 0; i < 50 && !(s_done && c_done); ++i) {
            c_done = c_done || SSL_do_handshake(client.get()) == 1;
            s_done = s_done || SSL_do_handshake(server.get()) == 1;
        }
        REQUIRE(s_done);
        REQUIRE(c_done);
        records = TlsRecords::take_over(client.get(), secrets, rekey_after);
        REQUIRE(records != nullptr);
        client.reset();  // from here on only TlsRecords speaks for the client
    }

    std::string read_raw() { return read_available(fd[1]); }

    // Feeds `raw` to the client in chunks of `chunk` bytes, collecting plaintext.
    TlsRecords::Status open(const std::string& raw, std::string& plain, std::size_t chunk = 0) {
        return open_in_chunks(*records, raw, wire, plain, chunk);
    }

    // Server -> client: returns the plaintext the client saw.
    std::string server_to_client(const std::string& data, std::size_t chunk = 0) {
        return openssl_to_records(server.get(), data, fd[1], *records, wire, chunk);
    }

    // Sends the client's pending wire bytes and returns what the server reads.
    std::string client_to_server() { return records_to_openssl(fd[1], wire, server.get()); }
    std::string client_to_server(const std::string& data) {
        REQUIRE(records->seal(data, wire));
        return client_to_server();
    }
};

// A NewSessionTicket (§4.6.1): lifetime, age_add, a 1-byte nonce, a 4-byte ticket, no extensions.
const std::string new_session_ticket(
    "\x04\x00\x00\x12"
    "\x00\x00\x1c\x20"
    "\x01\x02\x03\x04"
    "\x01\x00"
    "\x00\x04tckt"
    "\x00\x00",
    22);

constexpr unsigned char type_handshake = 22;
constexpr unsigned char type_application_data = 23;

}  // namespace

TEST_CASE("TlsRecords client: ignores the server's tickets and interoperates, every suite") {
    for (const char* suite :
         {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
        CAPTURE(suite);
        ClientPair p(/*tickets=*/2, suite);
        p.take_over();
        // The two tickets arrive in the same read as the first data.
        for (std::size_t size : {1u, 1000u, 16384u, 16385u, 70000u}) {
            CAPTURE(size);
            const std::string data = pattern(size);
            CHECK(p.server_to_client(data) == data);
            CHECK(p.client_to_server(data) == data);
        }
        CHECK(p.records->exporter_channel_binding().size() == 32);
    }
}

TEST_CASE("TlsRecords client: tickets split at every byte are reassembled and ignored") {
    ClientPair p(/*tickets=*/2);
    p.take_over();
    const std::string tickets = p.read_raw();
    CHECK(count_records(tickets) == 2);
    std::string plain;
    CHECK(p.open(tickets, plain, /*chunk=*/1) == TlsRecords::Status::Ok);
    CHECK(plain.empty());
    CHECK(p.server_to_client("<stream:stream>", 7) == "<stream:stream>");
    CHECK(p.client_to_server("<stream:stream>") == "<stream:stream>");
}

TEST_CASE("TlsRecords client: KeyUpdate from the server, with and without a requested answer") {
    ClientPair p(/*tickets=*/2);
    p.take_over();
    CHECK(p.server_to_client("first") == "first");

    REQUIRE(SSL_key_update(p.server.get(), SSL_KEY_UPDATE_REQUESTED) == 1);
    CHECK(p.server_to_client("please update too") == "please update too");
    CHECK(p.wire.empty());  // our KeyUpdate waits for our next application data (§4.6.3)
    REQUIRE(p.records->seal("reply under the new key", p.wire));
    CHECK(count_records(p.wire) == 2);  // the KeyUpdate, then the data under the new key
    CHECK(p.client_to_server() == "reply under the new key");
    CHECK(p.server_to_client("still fine") == "still fine");
    CHECK(p.client_to_server("and back") == "and back");

    REQUIRE(SSL_key_update(p.server.get(), SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
    CHECK(p.server_to_client("after one update") == "after one update");
    REQUIRE(p.records->seal("no update owed", p.wire));
    CHECK(count_records(p.wire) == 1);
    CHECK(p.client_to_server() == "no update owed");
}

TEST_CASE("TlsRecords client: updates its own key before it wears out") {
    ClientPair p(/*tickets=*/2);
    p.take_over(/*rekey_after=*/3);
    std::string expected;
    for (int i = 0; i < 10; ++i) {
        const std::string msg = "<message id='" + std::to_string(i) + "'/>";
        REQUIRE(p.records->seal(msg, p.wire));
        expected += msg;
    }
    CHECK(count_records(p.wire) > 10);
    CHECK(p.client_to_server() == expected);
    CHECK(p.server_to_client("answer") == "answer");
}

TEST_CASE("TlsRecords client: close_notify both ways") {
    ClientPair p(/*tickets=*/2);
    p.take_over();
    CHECK(p.server_to_client("<message/>") == "<message/>");
    REQUIRE(SSL_shutdown(p.server.get()) >= 0);
    std::string plain;
    CHECK(p.open(p.read_raw(), plain) == TlsRecords::Status::PeerClosed);

    ClientPair q(/*tickets=*/2);
    q.take_over();
    REQUIRE(q.records->seal_close_notify(q.wire));
    CHECK(q.client_to_server().empty());
    CHECK(SSL_get_error(q.server.get(), 0) == SSL_ERROR_ZERO_RETURN);
}

TEST_CASE("TlsRecords client: a tampered record fails with bad_record_mac") {
    ClientPair p(/*tickets=*/2);
    p.take_over();
    CHECK(p.server_to_client("before") == "before");
    std::size_t written = 0;
    REQUIRE(SSL_write_ex(p.server.get(), "secret", 6, &written) == 1);
    std::string raw = p.read_raw();
    REQUIRE(count_records(raw) == 1);
    raw[7] ^= 0x01;
    std::string plain;
    CHECK(p.open(raw, plain) == TlsRecords::Status::Failed);
    CHECK(plain.empty());
    CHECK(p.records->failure() == "TLS record failed authentication");
    // The fatal alert reaches the server.
    CHECK(p.client_to_server().empty());
    CHECK(SSL_get_error(p.server.get(), 0) == SSL_ERROR_SSL);
    REQUIRE_FALSE(p.records->seal("more", p.wire));
}

TEST_CASE("TlsRecords: post-handshake messages by record shape and role") {
    SUBCASE("client: two tickets in one record, then data") {
        ClientPair p(/*tickets=*/0, "TLS_AES_128_GCM_SHA256");
        p.take_over();
        const unsigned char* secret = p.secrets.server.data();
        const std::string raw =
            seal_by_hand(secret, 0, type_handshake, new_session_ticket + new_session_ticket) +
            seal_by_hand(secret, 1, type_application_data, "<after/>");
        std::string plain;
        CHECK(p.open(raw, plain) == TlsRecords::Status::Ok);
        CHECK(plain == "<after/>");
    }
    SUBCASE("client: a ticket split across two records is refused") {
        ClientPair p(/*tickets=*/0, "TLS_AES_128_GCM_SHA256");
        p.take_over();
        const unsigned char* secret = p.secrets.server.data();
        const std::string raw =
            seal_by_hand(secret, 0, type_handshake, new_session_ticket.substr(0, 10)) +
            seal_by_hand(secret, 1, type_handshake, new_session_ticket.substr(10));
        std::string plain;
        CHECK(p.open(raw, plain) == TlsRecords::Status::Failed);
        CHECK(p.records->failure() == "TLS handshake message split across records");
        CHECK_FALSE(p.wire.empty());  // the alert
    }
    SUBCASE("client: other post-handshake messages are refused (CertificateRequest)") {
        ClientPair p(/*tickets=*/0, "TLS_AES_128_GCM_SHA256");
        p.take_over();
        const std::string request("\x0d\x00\x00\x03\x00\x00\x00", 7);
        std::string plain;
        CHECK(p.open(seal_by_hand(p.secrets.server.data(), 0, type_handshake, request), plain) ==
              TlsRecords::Status::Failed);
        CHECK(p.records->failure() == "unexpected TLS handshake message");
    }
    SUBCASE("server: a ticket from a client is refused") {
        Pair p(server_context(true, "TLS_AES_128_GCM_SHA256"));
        p.take_over();
        std::string plain;
        CHECK(p.open(seal_by_hand(p.secrets.client.data(), 0, type_handshake, new_session_ticket),
                     plain) == TlsRecords::Status::Failed);
        CHECK(p.records->failure() == "unexpected TLS handshake message");
    }
    SUBCASE("a KeyUpdate must end its record") {
        Pair p(server_context(true, "TLS_AES_128_GCM_SHA256"));
        p.take_over();
        const std::string two_updates("\x18\x00\x00\x01\x00\x18\x00\x00\x01\x00", 10);
        std::string plain;
        CHECK(p.open(seal_by_hand(p.secrets.client.data(), 0, type_handshake, two_updates),
                     plain) == TlsRecords::Status::Failed);
        CHECK(p.records->failure() == "TLS KeyUpdate not at the end of its record");
    }
}
