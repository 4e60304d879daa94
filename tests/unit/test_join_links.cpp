// Unit tests for the personal meeting links (modules/groups/join_links.hpp): Jitsi JWT, BBB join.
#include <doctest/doctest.h>

#include "modules/groups/join_links.hpp"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace haven::groups;

namespace {

struct JsonDeleter {
    void operator()(json_t* j) const { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

// The test's own base64url (RFC 4648 §5), so the token is checked independently of libjwt.
std::optional<std::string> b64url_decode(std::string_view text) {
    static constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    unsigned int acc = 0;
    int bits = 0;
    for (char c : text) {
        auto v = alphabet.find(c);
        if (v == std::string_view::npos) {
            return std::nullopt;  // JWTs carry no padding (RFC 7515 §2)
        }
        acc = (acc << 6) | static_cast<unsigned int>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

std::string b64url_encode(const unsigned char* data, int len) {
    std::string out(4 * ((len + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, len);
    out.resize(static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '=') {
        out.pop_back();
    }
    for (auto& c : out) {
        if (c == '+') {
            c = '-';
        } else if (c == '/') {
            c = '_';
        }
    }
    return out;
}

std::string hs256_b64url(std::string_view secret, std::string_view data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    REQUIRE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                 reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
                 &len) != nullptr);
    return b64url_encode(mac, static_cast<int>(len));
}

struct DecodedJwt {
    std::string signing_input;  // header.payload, as signed
    std::string signature;      // base64url, as in the token
    JsonPtr header;
    JsonPtr claims;
};

JsonPtr parse_json(const std::string& text) {
    json_error_t error;
    JsonPtr j{json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, &error)};
    REQUIRE_MESSAGE(j, error.text);
    REQUIRE(json_is_object(j.get()));
    return j;
}

DecodedJwt decode(const std::string& token) {
    auto dot1 = token.find('.');
    REQUIRE(dot1 != std::string::npos);
    auto dot2 = token.find('.', dot1 + 1);
    REQUIRE(dot2 != std::string::npos);
    REQUIRE(token.find('.', dot2 + 1) == std::string::npos);
    auto header = b64url_decode(std::string_view(token).substr(0, dot1));
    auto payload = b64url_decode(std::string_view(token).substr(dot1 + 1, dot2 - dot1 - 1));
    REQUIRE(header);
    REQUIRE(payload);
    return {token.substr(0, dot2), token.substr(dot2 + 1), parse_json(*header),
            parse_json(*payload)};
}

// The string value of obj[key], NUL-safe; nothing when missing or not a string.
std::optional<std::string> string_at(json_t* obj, const char* key) {
    json_t* v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        return std::nullopt;
    }
    return std::string(json_string_value(v), json_string_length(v));
}

std::optional<json_int_t> int_at(json_t* obj, const char* key) {
    json_t* v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        return std::nullopt;
    }
    return json_integer_value(v);
}

const JitsiLink jitsi{"https://meet.example.org/peer-group-lobby", "haven",
                      "jitsi-app-secret-0123456789"};
constexpr std::int64_t meeting_end = 1796752800;  // 2026-12-08T18:00:00Z
const std::string nasty_nick = "a\"b\\c</x>";

}  // namespace

TEST_CASE("the test's HMAC-SHA256 base64url helper matches Python") {
    // python3 -c "import hmac,hashlib,base64;print(base64.urlsafe_b64encode(hmac.new(b'secret',
    //   b'abc.def',hashlib.sha256).digest()).rstrip(b'=').decode())"
    CHECK(hs256_b64url("secret", "abc.def") == "bw6MfpI6W0A40NkeJEdmGA2Kgk83mtWOBZyYtoLzRuA");
    CHECK(b64url_decode("YSJiXGM8L3g-") == std::string("a\"b\\c</x>"));
}

TEST_CASE("a Jitsi token carries exactly the claims prosody's token_verification checks") {
    auto jwt = decode(jitsi_token(jitsi, nasty_nick, meeting_end));

    CHECK(string_at(jwt.header.get(), "alg") == "HS256");
    CHECK(string_at(jwt.claims.get(), "aud") == "jitsi");
    CHECK(string_at(jwt.claims.get(), "iss") == "haven");
    CHECK(string_at(jwt.claims.get(), "sub") == "meet.example.org");
    CHECK(string_at(jwt.claims.get(), "room") == "peer-group-lobby");
    CHECK(int_at(jwt.claims.get(), "exp") == meeting_end);
    CHECK(json_object_get(jwt.claims.get(), "nbf") == nullptr);
    json_t* context = json_object_get(jwt.claims.get(), "context");
    REQUIRE(json_is_object(context));
    CHECK(json_object_size(context) == 1);
    json_t* user = json_object_get(context, "user");
    REQUIRE(json_is_object(user));
    CHECK(json_object_size(user) == 1);
    // python3 -c "import json;print(json.dumps('a\"b\\\\c</x>'))"  ->  "a\"b\\c</x>"
    CHECK(string_at(user, "name") == nasty_nick);
    // aud, iss, sub, room, exp, context: nothing else (no iat a verifier might reject).
    CHECK(json_object_size(jwt.claims.get()) == 6);
}

TEST_CASE("a Jitsi token's signature is HMAC-SHA256 over header.payload with the app secret") {
    auto token = jitsi_token(jitsi, nasty_nick, meeting_end);
    auto jwt = decode(token);
    CHECK(jwt.signature == hs256_b64url(jitsi.secret, jwt.signing_input));

    JitsiLink other = jitsi;
    other.secret = "jitsi-app-secret-0123456788";
    auto forged = decode(jitsi_token(other, nasty_nick, meeting_end));
    CHECK(forged.signing_input == jwt.signing_input);  // same claims ...
    CHECK(forged.signature != jwt.signature);          // ... but only our secret signs them
    CHECK(forged.signature == hs256_b64url(other.secret, forged.signing_input));
    CHECK(jwt.signature != hs256_b64url(other.secret, jwt.signing_input));
}

TEST_CASE("nicks that look like JSON or markup stay inside context.user.name") {
    const std::vector<std::string> nicks = {
        nasty_nick,
        "\",\"room\":\"*\",\"x\":\"",   // an attempt to widen the room claim
        "J\xc3\xbcrgen M\xc3\xbcller",  // UTF-8 "Jürgen Müller"
        "tab\tnew\nline\x01",
        "}{",
        "",
    };
    for (const auto& nick : nicks) {
        CAPTURE(nick);
        auto jwt = decode(jitsi_token(jitsi, nick, meeting_end));
        CHECK(string_at(jwt.claims.get(), "room") == "peer-group-lobby");
        CHECK(json_object_size(jwt.claims.get()) == 6);
        json_t* user = json_object_get(json_object_get(jwt.claims.get(), "context"), "user");
        CHECK(string_at(user, "name") == nick);
        CHECK(jwt.signature == hs256_b64url(jitsi.secret, jwt.signing_input));
    }
}

TEST_CASE("nbf is set when given and must not be after exp") {
    constexpr std::int64_t window_open = meeting_end - 105 * 60;
    auto jwt = decode(jitsi_token(jitsi, "Robin", meeting_end, window_open));
    CHECK(int_at(jwt.claims.get(), "nbf") == window_open);
    CHECK(int_at(jwt.claims.get(), "exp") == meeting_end);
    CHECK(json_object_size(jwt.claims.get()) == 7);
    CHECK_THROWS_AS(jitsi_token(jitsi, "Robin", meeting_end, meeting_end + 1), std::runtime_error);
}

TEST_CASE("sub is the meeting URL's host and room its last path segment") {
    JitsiLink link = jitsi;
    link.base_url = "https://user@Meet.Example.ORG:8443/groups/Abend-Gruppe";
    auto jwt = decode(jitsi_token(link, "Robin", meeting_end));
    CHECK(string_at(jwt.claims.get(), "sub") == "meet.example.org");
    CHECK(string_at(jwt.claims.get(), "room") == "Abend-Gruppe");

    link.base_url = "https://[2001:db8::1]:443/lobby";
    jwt = decode(jitsi_token(link, "Robin", meeting_end));
    CHECK(string_at(jwt.claims.get(), "sub") == "[2001:db8::1]");
    CHECK(string_at(jwt.claims.get(), "room") == "lobby");
}

TEST_CASE("the Jitsi join URL is the base URL with the token as jwt parameter") {
    auto url = jitsi_join_url(jitsi, nasty_nick, meeting_end);
    const std::string prefix = jitsi.base_url + "?jwt=";
    REQUIRE(url.rfind(prefix, 0) == 0);
    auto token = url.substr(prefix.size());
    // HS256 without iat is deterministic: the same inputs give the same token.
    CHECK(token == jitsi_token(jitsi, nasty_nick, meeting_end));
    CHECK(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789-_.") == std::string::npos);
    auto jwt = decode(token);
    CHECK(jwt.signature == hs256_b64url(jitsi.secret, jwt.signing_input));
}

TEST_CASE("no Jitsi link from unusable input") {
    auto with = [](std::string url, std::string secret) {
        return JitsiLink{std::move(url), "haven", std::move(secret)};
    };
    CHECK_THROWS_AS(jitsi_token(with(jitsi.base_url, ""), "Robin", meeting_end),
                    std::runtime_error);
    for (const char* url :
         {"https://meet.example.org", "https://meet.example.org/",
          "https://meet.example.org/lobby?lang=de", "https://meet.example.org/lobby#x",
          "meet.example.org/lobby", "https:///lobby", "https://[::1/lobby", ""}) {
        CAPTURE(url);
        CHECK_THROWS_AS(jitsi_join_url(with(url, jitsi.secret), "Robin", meeting_end),
                        std::runtime_error);
    }
    // jansson refuses strings that are not UTF-8, so such a nick gets no token at all.
    CHECK_THROWS_AS(jitsi_token(jitsi, "J\xfcrgen", meeting_end), std::runtime_error);
}

TEST_CASE("BBB join URLs match the checksums computed in Python") {
    // python3 -c "
    // import hashlib,urllib.parse as u
    // b='https://bbb.example.org/bigbluebutton/api';s='330a8b08c3b4c61533e1d0c5ce1ac88f'
    // for n,m in [('Jürgen Müller & Co','lobby'),('a b&c=d+e~x.y_z-1','peer group/1')]:
    //   q='fullName='+u.quote(n,safe='')+'&meetingID='+u.quote(m,safe='')+(
    //     '&role=VIEWER&redirect=true')
    //   for h in (hashlib.sha1,hashlib.sha256):
    //     print(b+'/join?'+q+'&checksum='+h(('join'+q+s).encode()).hexdigest())"
    BbbLink link{"https://bbb.example.org/bigbluebutton/api/", "lobby",
                 "330a8b08c3b4c61533e1d0c5ce1ac88f", BbbChecksum::Sha1};
    const std::string juergen = "J\xc3\xbcrgen M\xc3\xbcller & Co";  // UTF-8 "Jürgen Müller & Co"
    CHECK(bbb_join_url(link, juergen) ==
          "https://bbb.example.org/bigbluebutton/api/join?fullName=J%C3%BCrgen%20M%C3%BCller%20%26"
          "%20Co&meetingID=lobby&role=VIEWER&redirect=true"
          "&checksum=859759870065ac58a15fd028a49e9a2cbd3dc17a");
    link.checksum = BbbChecksum::Sha256;
    CHECK(bbb_join_url(link, juergen) ==
          "https://bbb.example.org/bigbluebutton/api/join?fullName=J%C3%BCrgen%20M%C3%BCller%20%26"
          "%20Co&meetingID=lobby&role=VIEWER&redirect=true"
          "&checksum=7c9ca9649aacb8b0aba8f671ed427671d1e1bc3cfe93b5ff6cf51a00697bcb76");

    link.api_base = "https://bbb.example.org/bigbluebutton/api";  // no trailing slash: same URL
    link.meeting_id = "peer group/1";
    link.checksum = BbbChecksum::Sha1;
    CHECK(bbb_join_url(link, "a b&c=d+e~x.y_z-1") ==
          "https://bbb.example.org/bigbluebutton/api/join?fullName=a%20b%26c%3Dd%2Be~x.y_z-1"
          "&meetingID=peer%20group%2F1&role=VIEWER&redirect=true"
          "&checksum=6f71de22c258399ad61cb9e10b48629503b74aff");
    link.checksum = BbbChecksum::Sha256;
    CHECK(bbb_join_url(link, "a b&c=d+e~x.y_z-1") ==
          "https://bbb.example.org/bigbluebutton/api/join?fullName=a%20b%26c%3Dd%2Be~x.y_z-1"
          "&meetingID=peer%20group%2F1&role=VIEWER&redirect=true"
          "&checksum=04b72acd68ffc56e460df788d8f38b4bdb4e51fc3370c3a11030c6c65bd15901");
}

TEST_CASE("the BBB checksum depends on the secret, and an empty name stays empty") {
    BbbLink link{"https://bbb.example.org/bigbluebutton/api", "lobby", "other-secret"};
    // python3 -c "import hashlib;print(hashlib.sha256(('join'+'fullName=&meetingID=lobby&role=
    //   VIEWER&redirect=true'+'other-secret').encode()).hexdigest())"
    // (curl_easy_escape would strlen() a zero length; the name must not pick up other bytes.)
    CHECK(bbb_join_url(link, "") ==
          "https://bbb.example.org/bigbluebutton/api/join?fullName=&meetingID=lobby&role=VIEWER"
          "&redirect=true"
          "&checksum=773464a80914e9d9357db92e0d0047a5aa7140799860a11e4f973f4c8fa25fe9");
    BbbLink other = link;
    other.secret = "other-secreT";
    CHECK(bbb_join_url(other, "Robin") != bbb_join_url(link, "Robin"));
}

TEST_CASE("no BBB link without a secret, meeting id or API base") {
    const BbbLink good{"https://bbb.example.org/bigbluebutton/api", "lobby", "s3cret"};
    CHECK_NOTHROW(bbb_join_url(good, "Robin"));
    BbbLink link = good;
    link.secret.clear();
    CHECK_THROWS_AS(bbb_join_url(link, "Robin"), std::runtime_error);
    link = good;
    link.meeting_id.clear();
    CHECK_THROWS_AS(bbb_join_url(link, "Robin"), std::runtime_error);
    for (const char* base : {"", "/"}) {
        link = good;
        link.api_base = base;
        CHECK_THROWS_AS(bbb_join_url(link, "Robin"), std::runtime_error);
    }
}

TEST_CASE("bbb_checksum names") {
    CHECK(parse_bbb_checksum("sha1") == BbbChecksum::Sha1);
    CHECK(parse_bbb_checksum("sha256") == BbbChecksum::Sha256);
    for (const char* bad : {"", "SHA256", "sha-256", "sha384", "sha512", "md5", "sha1 "}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_bbb_checksum(bad).has_value());
    }
}
