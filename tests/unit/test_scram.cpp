// SASL: SCRAM (RFC 5802 §5, RFC 7677 §3 examples), PLAIN (RFC 4616), PRECIS, strict base64.
#include "server/auth/base64.hpp"
#include "server/auth/credentials.hpp"
#include "server/auth/plain.hpp"
#include "server/auth/precis.hpp"
#include "server/auth/scram.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <map>

using namespace haven::auth;
using Status = ScramServer::Step::Status;

namespace {

std::string b64d(std::string_view s) {
    auto out = base64_decode(s);
    REQUIRE(out);
    return *out;
}

// A store holding the RFC example account under "user" with password "pencil".
struct Store {
    std::map<std::string, ScramCredential, std::less<>> records;
    int lookups = 0;

    ScramServer::Lookup lookup() {
        return [this](std::string_view name) -> std::optional<ScramCredential> {
            ++lookups;
            auto it = records.find(name);
            if (it == records.end()) {
                return std::nullopt;
            }
            return it->second;
        };
    }
};

const std::string secret = "test-secret-for-fake-salts";

// Client side of SCRAM, written straight from RFC 5802 §3, to drive the server in tests.
std::string client_final(HashAlg alg, std::string_view password, std::string_view client_first_bare,
                         std::string_view server_first, std::string_view cbind_input) {
    std::string salt;
    std::string nonce;
    std::uint32_t iterations = 0;
    for (std::string_view rest = server_first; !rest.empty();) {
        const auto comma = rest.find(',');
        const auto field = rest.substr(0, comma);
        if (field.starts_with("r=")) {
            nonce = field.substr(2);
        } else if (field.starts_with("s=")) {
            salt = b64d(field.substr(2));
        } else if (field.starts_with("i=")) {
            iterations = static_cast<std::uint32_t>(std::stoul(std::string(field.substr(2))));
        }
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    const ScramCredential cred = derive_credential(alg, password, salt, iterations);
    // derive_credential only keeps StoredKey; the client needs ClientKey itself.
    std::string salted(digest_size(alg), '\0');
    const auto* md = alg == HashAlg::Sha1 ? EVP_sha1() : EVP_sha256();
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                      reinterpret_cast<const unsigned char*>(salt.data()),
                      static_cast<int>(salt.size()), static_cast<int>(iterations), md,
                      static_cast<int>(salted.size()),
                      reinterpret_cast<unsigned char*>(salted.data()));
    const std::string client_key = hmac(alg, salted, "Client Key");
    const std::string without_proof =
        "c=" + base64_encode(cbind_input) + ",r=" + nonce;
    const std::string auth_message = std::string(client_first_bare) + "," +
                                     std::string(server_first) + "," + without_proof;
    const std::string signature = hmac(alg, cred.stored_key, auth_message);
    std::string proof = client_key;
    for (std::size_t i = 0; i < proof.size(); ++i) {
        proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    }
    return without_proof + ",p=" + base64_encode(proof);
}

Store rfc_store(HashAlg alg, std::string_view salt_b64) {
    Store store;
    store.records["user"] = derive_credential(alg, "pencil", b64d(salt_b64), 4096);
    return store;
}

ScramServer plain_server(HashAlg alg = HashAlg::Sha256) {
    return ScramServer(alg, false, std::nullopt, false, secret, 4096);
}

}  // namespace

TEST_CASE("base64 round trips and strictness (RFC 4648 §4)") {
    for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
        CHECK(base64_decode(base64_encode(s)) == s);
    }
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    CHECK(base64_encode("fo") == "Zm8=");
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
    }
    CHECK(base64_decode(base64_encode(all)) == all);
    CHECK_FALSE(base64_decode("Zm8"));      // missing padding
    CHECK_FALSE(base64_decode("Zm9=Zm8="));  // padding in the middle
    CHECK_FALSE(base64_decode("Zm 8="));
    CHECK_FALSE(base64_decode("Zm8=\n"));
    CHECK_FALSE(base64_decode("Zm9-"));      // URL alphabet
    CHECK_FALSE(base64_decode("Zm9="));      // non-zero trailing bits
    CHECK_FALSE(base64_decode("===="));
    CHECK(base64_decode("") == "");
    // Bytes outside the alphabet, found by tests/fuzz/fuzz_sasl: libsodium took some for digits.
    CHECK_FALSE(base64_decode(std::string("AHV\xff\xff\xff\xff\xff\xff\xffls", 12)));
    CHECK_FALSE(base64_decode(std::string("Zm9v\x80\x80\x80\x80", 8)));
    CHECK_FALSE(base64_decode("Zm=v"));
}

TEST_CASE("PRECIS OpaqueString passwords (RFC 8265 §4.2)") {
    CHECK(prepare_password("pencil") == "pencil");
    CHECK(prepare_password("correct horse") == "correct horse");
    CHECK(prepare_password("a\u00A0b") == "a b");          // non-ASCII space → U+0020
    CHECK(prepare_password("\u212B") == "\u00C5");         // NFC: ANGSTROM SIGN → Å
    CHECK(prepare_password("A\u030A") == "\u00C5");        // NFC composes
    CHECK(prepare_password("Pass\uFF57ord") == "Pass\uFF57ord");  // no width mapping
    CHECK(prepare_password("\U0001F600") == "\U0001F600");       // symbols are fine
    CHECK_FALSE(prepare_password(""));
    CHECK_FALSE(prepare_password(std::string("a\0b", 3)));
    CHECK_FALSE(prepare_password("a\tb"));
    CHECK_FALSE(prepare_password("a\u00ADb"));             // default-ignorable soft hyphen
    CHECK_FALSE(prepare_password("\xC3"));                 // truncated UTF-8
    CHECK_FALSE(prepare_password("\xC0\xAF"));             // overlong
    CHECK_FALSE(prepare_password("\xED\xA0\x80"));         // UTF-8-encoded surrogate
    CHECK_FALSE(prepare_password("\uE000"));               // private use
    const auto twice = prepare_password(*prepare_password("\u212B x\u2003y"));
    CHECK(twice == prepare_password("\u212B x\u2003y"));   // idempotent
}

TEST_CASE("PRECIS UsernameCaseMapped usernames (RFC 8265 §3.3, RFC 7622 §3.3.1)") {
    CHECK(prepare_username("user") == "user");
    CHECK(prepare_username("User") == "user");
    CHECK(prepare_username("\uFF55ser") == "user");         // fullwidth u
    CHECK(prepare_username("J\u00FCrgen") == "j\u00FCrgen");
    CHECK(prepare_username("\u05D0\u05D1") == "\u05D0\u05D1");  // RTL passes the Bidi Rule
    CHECK_FALSE(prepare_username("\u05D0a"));               // mixed directions
    CHECK_FALSE(prepare_username(""));
    CHECK_FALSE(prepare_username("a b"));
    CHECK_FALSE(prepare_username("a@b"));
    CHECK_FALSE(prepare_username("a/b"));
    CHECK_FALSE(prepare_username("a\u2163"));               // ROMAN NUMERAL FOUR: HasCompat
    CHECK_FALSE(prepare_username("\U0001F600"));            // symbols are not identifiers
    CHECK_FALSE(prepare_username(std::string(1024, 'a')));
    CHECK(prepare_username(std::string(1023, 'a')));
}

TEST_CASE("SASL PLAIN parsing (RFC 4616 §2)") {
    auto m = parse_plain(std::string("\0tim\0tanstaaftanstaaf", 21));
    REQUIRE(m);
    CHECK(m->authzid == "");
    CHECK(m->authcid == "tim");
    CHECK(m->password == "tanstaaftanstaaf");
    m = parse_plain(std::string("Ursel\0Kurt\0xipj3plmq", 20));
    REQUIRE(m);
    CHECK(m->authzid == "Ursel");
    CHECK(m->authcid == "Kurt");
    CHECK(m->password == "xipj3plmq");
    CHECK_FALSE(parse_plain(""));
    CHECK_FALSE(parse_plain("tim"));
    CHECK_FALSE(parse_plain(std::string("\0tim", 4)));
    CHECK_FALSE(parse_plain(std::string("\0\0pw", 4)));    // empty authcid
    CHECK_FALSE(parse_plain(std::string("\0tim\0", 5)));   // empty password
    CHECK_FALSE(parse_plain(std::string("\0tim\0pw\0", 8)));
    CHECK_FALSE(parse_plain(std::string("\0t\xFFm\0pw", 7)));
    CHECK_FALSE(parse_plain(std::string("\0tim\0", 5) + std::string(1025, 'x')));
}

TEST_CASE("verify_plain against a stored record") {
    const CredentialSet set = make_credentials("pencil", 4096);
    REQUIRE(set.sha1);
    REQUIRE(set.sha256);
    CHECK(set.sha1->salt.size() == salt_size);
    CHECK(set.sha256->salt.size() == salt_size);
    CHECK(set.sha1->salt != set.sha256->salt);
    CHECK(set.sha256->stored_key.size() == 32);
    CHECK(set.sha1->server_key.size() == 20);
    CHECK(verify_plain(*set.sha256, "pencil"));
    CHECK(verify_plain(*set.sha1, "pencil"));
    CHECK_FALSE(verify_plain(*set.sha256, "pencil "));
    CHECK_FALSE(verify_plain(*set.sha256, "Pencil"));
    CHECK_FALSE(verify_plain(*set.sha256, ""));
    CHECK_FALSE(verify_plain(ScramCredential{}, "pencil"));
    // The wire form is prepared the same way as at registration (RFC 8265 §4.2).
    const CredentialSet nfc = make_credentials(*prepare_password("\u00C5ngstr\u00F6m"), 4096);
    CHECK(verify_plain(*nfc.sha256, "A\u030Angstro\u0308m"));
}

TEST_CASE("SCRAM-SHA-1 example of RFC 5802 §5") {
    Store store = rfc_store(HashAlg::Sha1, "QSXCR+Q6sek8bf92");
    ScramServer server = plain_server(HashAlg::Sha1);
    server.set_server_nonce_for_testing("3rfcNHYJY1ZVvWVs7j");
    const auto first = server.client_first("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", store.lookup());
    REQUIRE(first.status == Status::Continue);
    CHECK(first.message ==
          "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
    CHECK(server.username() == "user");
    CHECK(server.authzid() == "");
    const auto final_step = server.client_final(
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    CHECK(final_step.status == Status::Success);
    CHECK(final_step.message == "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    CHECK(final_step.condition.empty());
}

TEST_CASE("SCRAM-SHA-256 example of RFC 7677 §3") {
    Store store = rfc_store(HashAlg::Sha256, "W22ZaJ0SNY7soEsUEjb6gQ==");
    ScramServer server = plain_server();
    server.set_server_nonce_for_testing("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    const auto first = server.client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", store.lookup());
    REQUIRE(first.status == Status::Continue);
    CHECK(first.message ==
          "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    const auto final_step = server.client_final(
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    CHECK(final_step.status == Status::Success);
    CHECK(final_step.message == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

TEST_CASE("SCRAM with a random server nonce and the test client") {
    Store store;
    store.records["user"] = *make_credentials("pencil", 4096).sha256;
    ScramServer server = plain_server();
    const std::string bare = "n=user,r=clientnonce";
    const auto first = server.client_first("n,," + bare, store.lookup());
    REQUIRE(first.status == Status::Continue);
    CHECK(first.message.starts_with("r=clientnonce"));
    CHECK(first.message.size() > std::string("r=clientnonce,s=,i=4096").size() + 20);
    const auto last = server.client_final(
        client_final(HashAlg::Sha256, "pencil", bare, first.message, "n,,"));
    CHECK(last.status == Status::Success);
    // The exchange is over: nothing more is accepted.
    CHECK(server.client_final("c=biws,r=x,p=AAAA").status == Status::Failure);
}

TEST_CASE("SCRAM wrong password and unknown user are indistinguishable") {
    Store store;
    store.records["alice"] = *make_credentials("pencil", 4096).sha256;

    auto attempt = [&](std::string_view user, std::string_view password) {
        ScramServer server = plain_server();
        const std::string bare = "n=" + std::string(user) + ",r=abcdef";
        const auto first = server.client_first("n,," + bare, store.lookup());
        REQUIRE(first.status == Status::Continue);
        const auto last = server.client_final(
            client_final(HashAlg::Sha256, password, bare, first.message, "n,,"));
        return std::pair{first, last};
    };

    const auto [wrong_first, wrong] = attempt("alice", "pencils");
    CHECK(wrong.status == Status::Failure);
    CHECK(wrong.condition == "not-authorized");
    CHECK(wrong.message.empty());

    const auto [ghost_first, ghost] = attempt("bob", "pencil");
    const auto [ghost_first2, ghost2] = attempt("bob", "anything");
    CHECK(ghost.status == Status::Failure);
    CHECK(ghost.condition == wrong.condition);
    CHECK(ghost.message == wrong.message);
    CHECK(ghost2.condition == wrong.condition);

    auto salt_of = [](const std::string& m) {
        const auto s = m.find(",s=");
        return m.substr(s + 3, m.find(",i=") - s - 3);
    };
    auto iterations_of = [](const std::string& m) { return m.substr(m.find(",i=")); };
    CHECK(salt_of(ghost_first.message) == salt_of(ghost_first2.message));   // stable fake salt
    CHECK(b64d(salt_of(ghost_first.message)).size() == salt_size);          // same shape
    CHECK(salt_of(ghost_first.message) != salt_of(attempt("carol", "x").first.message));
    CHECK(iterations_of(ghost_first.message) == iterations_of(wrong_first.message));
    CHECK(fake_credential(HashAlg::Sha1, secret, "bob", 4096).salt !=
          fake_credential(HashAlg::Sha256, secret, "bob", 4096).salt);
    CHECK(fake_credential(HashAlg::Sha256, "other secret", "bob", 4096).salt !=
          fake_credential(HashAlg::Sha256, secret, "bob", 4096).salt);

    // A record for the wrong algorithm is treated like no record at all.
    ScramServer sha1 = plain_server(HashAlg::Sha1);
    const auto f = sha1.client_first("n,,n=alice,r=abc", store.lookup());
    REQUIRE(f.status == Status::Continue);
    CHECK(salt_of(f.message) == base64_encode(fake_credential(HashAlg::Sha1, secret, "alice",
                                                              4096).salt));
}

TEST_CASE("SCRAM username escaping and normalisation (RFC 5802 §5.1)") {
    Store store;
    std::string seen;
    ScramServer::Lookup lookup = [&](std::string_view name) -> std::optional<ScramCredential> {
        seen = name;
        return std::nullopt;
    };
    {
        ScramServer server = plain_server();
        const auto step = server.client_first("n,a=Ad=3Dmin=2Cx,n=Alice,r=abc", lookup);
        CHECK(step.status == Status::Continue);
        CHECK(server.username() == "alice");
        CHECK(seen == "alice");
        CHECK(server.authzid() == "Ad=min,x");
    }
    {
        ScramServer server = plain_server();
        CHECK(server.client_first("n,,n=a=2Cb,r=abc", lookup).status == Status::Continue);
        CHECK(server.username() == "a,b");
    }
    {
        ScramServer server = plain_server();
        CHECK(server.client_first("n,,n=a=3Db,r=abc", lookup).status == Status::Continue);
        CHECK(server.username() == "a=b");
    }
    for (const char* bad : {"n,,n=a=2cb,r=abc", "n,,n=a=41b,r=abc", "n,,n=ab=,r=abc",
                            "n,,n=ab=3,r=abc", "n,a=x=,n=ab,r=abc"}) {
        ScramServer server = plain_server();
        const auto step = server.client_first(bad, lookup);
        CHECK_MESSAGE(step.status == Status::Failure, bad);
        CHECK_MESSAGE(step.condition == "malformed-request", bad);
    }
    {
        ScramServer server = plain_server();
        const auto step = server.client_first("n,,n=a b,r=abc", lookup);  // PRECIS refuses
        CHECK(step.status == Status::Failure);
        CHECK(step.condition == "not-authorized");
    }
}

TEST_CASE("SCRAM malformed messages fail") {
    Store store = rfc_store(HashAlg::Sha256, "W22ZaJ0SNY7soEsUEjb6gQ==");
    for (const char* bad : {"", "n", "n,", "n,,", "x,,n=user,r=abc", "n,,r=abc,n=user",
                            "n,,n=user", "n,,n=user,r=", "n,,n=user,r=a b", "n,,n=,r=abc",
                            "n,,n=user,r=abc,", "n,,n=user,r=abc,1=x", "p=,,n=user,r=abc",
                            "p=tls_exporter,,n=user,r=abc", "n,b=x,n=user,r=abc"}) {
        ScramServer server = plain_server();
        const auto step = server.client_first(bad, store.lookup());
        CHECK_MESSAGE(step.status == Status::Failure, bad);
        CHECK_MESSAGE(step.condition == "malformed-request", bad);
    }
    {
        ScramServer server = plain_server();
        const auto step = server.client_first(std::string("n,,n=us\0er,r=abc", 16),
                                              store.lookup());
        CHECK(step.status == Status::Failure);
    }
    {
        // RFC 5802 §5.1: an unknown mandatory extension ends the exchange.
        ScramServer server = plain_server();
        const auto step = server.client_first("n,,m=ext,n=user,r=abc", store.lookup());
        CHECK(step.status == Status::Failure);
        CHECK(step.condition == "not-authorized");
    }
    {
        // Optional extensions are ignored (RFC 5802 §7 "extensions").
        ScramServer server = plain_server();
        CHECK(server.client_first("n,,n=user,r=abc,x=whatever", store.lookup()).status ==
              Status::Continue);
    }
    {
        ScramServer server = plain_server();
        CHECK(server.client_first(std::string(5000, 'a'), store.lookup()).status ==
              Status::Failure);
    }
    {
        ScramServer server = plain_server();
        CHECK(server.client_final("c=biws,r=abc,p=AAAA").status == Status::Failure);  // too early
    }

    // client-final problems, each on a fresh exchange at the RFC 7677 point.
    const std::string nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    struct Case {
        std::string msg;
        const char* condition;
    };
    const Case cases[] = {
        {"c=biws,r=" + nonce, "malformed-request"},                     // no proof
        {"r=" + nonce + "," + proof, "malformed-request"},              // no channel binding
        {"c=biws," + proof, "malformed-request"},                       // no nonce
        {"c=biws,r=" + nonce + ",p=dHzb!apWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         "malformed-request"},                                          // bad base64 in p=
        {"c=bi ws,r=" + nonce + "," + proof, "malformed-request"},      // bad base64 in c=
        {"c=biws,r=" + nonce + ",p=AAAA", "malformed-request"},         // proof of wrong size
        {"c=biws,r=" + nonce + ",,"  + proof, "malformed-request"},     // empty field
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof, "not-authorized"},   // only the client nonce
        {"c=biws,r=Xr" + nonce.substr(2) + "," + proof, "not-authorized"},  // wrong client nonce
        {"c=eSws,r=" + nonce + "," + proof, "not-authorized"},          // "y,," instead of "n,,"
        {"c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=",
         "not-authorized"},                                             // flipped proof bit
    };
    for (const auto& c : cases) {
        ScramServer server = plain_server();
        server.set_server_nonce_for_testing("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        REQUIRE(server.client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", store.lookup()).status ==
                Status::Continue);
        const auto step = server.client_final(c.msg);
        CHECK_MESSAGE(step.status == Status::Failure, c.msg);
        CHECK_MESSAGE(step.condition == c.condition, c.msg);
        CHECK(step.message.empty());
    }
    {
        // An extension between the nonce and the proof changes AuthMessage, so the RFC proof no
        // longer matches, but it is syntactically fine.
        ScramServer server = plain_server();
        server.set_server_nonce_for_testing("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        REQUIRE(server.client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", store.lookup()).status ==
                Status::Continue);
        const auto step = server.client_final("c=biws,r=" + nonce + ",x=1," + proof);
        CHECK(step.condition == "not-authorized");
    }
}

TEST_CASE("SCRAM-PLUS channel binding (RFC 5802 §6, RFC 9266)") {
    Store store;
    store.records["user"] = *make_credentials("pencil", 4096).sha256;
    const ChannelBinding exporter{"tls-exporter", std::string("\x01\x02\x03\x00\xff", 5)};

    auto run = [&](bool plus, std::optional<ChannelBinding> cb, bool plus_offered,
                   const std::string& gs2, const std::string& cbind_input) {
        ScramServer server(HashAlg::Sha256, plus, std::move(cb), plus_offered, secret, 4096);
        const std::string bare = "n=user,r=nonce123";
        const auto first = server.client_first(gs2 + bare, store.lookup());
        if (first.status != Status::Continue) {
            return first;
        }
        return server.client_final(
            client_final(HashAlg::Sha256, "pencil", bare, first.message, cbind_input));
    };

    SUBCASE("matching tls-exporter binding succeeds") {
        const std::string gs2 = "p=tls-exporter,,";
        CHECK(run(true, exporter, true, gs2, gs2 + exporter.data).status == Status::Success);
    }
    SUBCASE("matching tls-unique binding with an authzid succeeds") {
        const ChannelBinding unique{"tls-unique", "finishedmsg"};
        const std::string gs2 = "p=tls-unique,a=user@example.org,";
        CHECK(run(true, unique, true, gs2, gs2 + unique.data).status == Status::Success);
    }
    SUBCASE("binding data from another connection fails") {
        const std::string gs2 = "p=tls-exporter,,";
        const auto step = run(true, exporter, true, gs2, gs2 + "other-connection");
        CHECK(step.status == Status::Failure);
        CHECK(step.condition == "not-authorized");
    }
    SUBCASE("c= without the binding data fails") {
        const std::string gs2 = "p=tls-exporter,,";
        CHECK(run(true, exporter, true, gs2, gs2).status == Status::Failure);
    }
    SUBCASE("binding type the connection does not have fails") {
        const std::string gs2 = "p=tls-unique,,";
        const auto step = run(true, exporter, true, gs2, gs2 + exporter.data);
        CHECK(step.status == Status::Failure);
        CHECK(step.condition == "not-authorized");
    }
    SUBCASE("-PLUS without TLS fails") {
        const std::string gs2 = "p=tls-exporter,,";
        CHECK(run(true, std::nullopt, false, gs2, gs2).status == Status::Failure);
    }
    SUBCASE("-PLUS with n or y is malformed") {
        CHECK(run(true, exporter, true, "n,,", "n,,").condition == "malformed-request");
        CHECK(run(true, exporter, true, "y,,", "y,,").condition == "malformed-request");
    }
    SUBCASE("p on the plain mechanism is malformed") {
        const std::string gs2 = "p=tls-exporter,,";
        CHECK(run(false, exporter, true, gs2, gs2 + exporter.data).condition ==
              "malformed-request");
    }
    SUBCASE("n on the plain mechanism is fine even when -PLUS was offered") {
        CHECK(run(false, exporter, true, "n,,", "n,,").status == Status::Success);
    }
    SUBCASE("y is fine when the server offered no -PLUS") {
        CHECK(run(false, exporter, false, "y,,", "y,,").status == Status::Success);
        CHECK(run(false, std::nullopt, false, "y,,", "y,,").status == Status::Success);
    }
    SUBCASE("y when -PLUS was offered is a downgrade") {
        const auto step = run(false, exporter, true, "y,,", "y,,");
        CHECK(step.status == Status::Failure);
        CHECK(step.condition == "not-authorized");
    }
    SUBCASE("c= must repeat the gs2 header exactly") {
        CHECK(run(false, std::nullopt, false, "y,,", "n,,").status == Status::Failure);
        CHECK(run(false, std::nullopt, false, "n,a=user,", "n,,").status == Status::Failure);
        CHECK(run(false, std::nullopt, false, "n,a=user,", "n,a=user,").status ==
              Status::Success);
    }
}
