// Personal meeting links: Jitsi JWTs with libjwt/jansson, BBB join calls with curl and OpenSSL.
#include "modules/groups/join_links.hpp"

#include <curl/curl.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace haven::groups {
namespace {

struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
};
struct JsonDeleter {
    void operator()(json_t* j) const { json_decref(j); }
};
struct JwtDeleter {
    void operator()(jwt_t* j) const { jwt_free(j); }
};
struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlFreeDeleter {
    void operator()(char* p) const { curl_free(p); }
};

using MallocString = std::unique_ptr<char, FreeDeleter>;
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("join link: " + what);
}

// The two parts of a Jitsi meeting URL the token names.
struct JitsiTarget {
    std::string domain;
    std::string room;
};

JitsiTarget parse_jitsi_url(std::string_view url) {
    // The join URL appends "?jwt=", which a query or fragment already present would break.
    if (url.find_first_of("?#") != std::string_view::npos) {
        fail("Jitsi URL must not have a query or fragment");
    }
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) {
        fail("Jitsi URL has no scheme");
    }
    auto authority_start = scheme_end + 3;
    auto path_start = url.find('/', authority_start);
    if (path_start == std::string_view::npos) {
        fail("Jitsi URL has no room");
    }
    auto authority = url.substr(authority_start, path_start - authority_start);
    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
        authority.remove_prefix(at + 1);  // RFC 3986 §3.2.1 userinfo is not part of the host
    }
    std::string_view host;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) {
            fail("Jitsi URL has a malformed IPv6 host");
        }
        host = authority.substr(0, close + 1);
    } else {
        host = authority.substr(0, authority.find(':'));  // without the port
    }
    auto room = url.substr(url.rfind('/') + 1);
    if (host.empty() || room.empty()) {
        fail("Jitsi URL needs a host and a room as its last path segment");
    }
    JitsiTarget target{std::string(host), std::string(room)};
    // Host names compare case-insensitively (RFC 3986 §3.2.2); prosody keeps its hosts in lower
    // case, which is what "sub" is checked against.
    for (auto& c : target.domain) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return target;
}

// json_object_set_new takes the value's reference even when it fails, so nothing leaks here;
// a null value is jansson's allocation or UTF-8 failure.
void set(json_t* object, const char* key, json_t* value) {
    if (value == nullptr || json_object_set_new(object, key, value) != 0) {
        fail(std::string("cannot set JWT claim ") + key + " (invalid UTF-8 or out of memory)");
    }
}

json_t* json_string_of(std::string_view s) {
    return json_stringn(s.data(), s.size());  // null for invalid UTF-8
}

std::string url_escape(CURL* curl, std::string_view s) {
    // curl_easy_escape takes a length of 0 to mean "use strlen", which a string_view can't give.
    if (s.empty()) {
        return {};
    }
    if (s.size() > INT_MAX) {
        fail("value too long to escape");
    }
    std::unique_ptr<char, CurlFreeDeleter> escaped{
        curl_easy_escape(curl, s.data(), static_cast<int>(s.size()))};
    if (!escaped) {
        fail("curl_easy_escape failed");
    }
    return escaped.get();
}

std::string hex_digest(BbbChecksum alg, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const EVP_MD* md = alg == BbbChecksum::Sha1 ? EVP_sha1() : EVP_sha256();
    // One-shot EVP_Digest(): no context to own.
    if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
        fail("EVP_Digest failed");
    }
    // bbb-web compares against commons-codec's lower-case hex.
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
        hex += digits[out[i] >> 4];
        hex += digits[out[i] & 0x0f];
    }
    return hex;
}

}  // namespace

std::string jitsi_token(const JitsiLink& link, std::string_view nick, std::int64_t exp,
                        std::optional<std::int64_t> nbf) {
    // An empty key would make the token forgeable by anyone; libjwt refuses it too.
    if (link.secret.empty()) {
        fail("Jitsi app secret is empty");
    }
    if (link.secret.size() > INT_MAX) {
        fail("Jitsi app secret too long");
    }
    if (nbf && *nbf > exp) {
        fail("JWT nbf is after exp");
    }
    auto target = parse_jitsi_url(link.base_url);

    // Claims as prosody's token_verification (Jitsi's "JWT token authentication") reads them.
    // jansson builds and serialises them, so a nick can't break out of its string.
    JsonPtr claims{json_object()};
    JsonPtr context{json_object()};
    JsonPtr user{json_object()};
    if (!claims || !context || !user) {
        fail("out of memory");
    }
    set(claims.get(), "aud", json_string("jitsi"));
    set(claims.get(), "iss", json_string_of(link.app_id));
    set(claims.get(), "sub", json_string_of(target.domain));
    set(claims.get(), "room", json_string_of(target.room));
    set(claims.get(), "exp", json_integer(exp));
    if (nbf) {
        set(claims.get(), "nbf", json_integer(*nbf));
    }
    set(user.get(), "name", json_string_of(nick));
    set(context.get(), "user", user.release());
    set(claims.get(), "context", context.release());
    MallocString claims_json{json_dumps(claims.get(), JSON_COMPACT)};
    if (!claims_json) {
        fail("json_dumps failed");
    }

    jwt_t* raw = nullptr;
    if (jwt_new(&raw) != 0 || raw == nullptr) {
        fail("jwt_new failed");
    }
    std::unique_ptr<jwt_t, JwtDeleter> jwt{raw};
    if (jwt_set_alg(jwt.get(), JWT_ALG_HS256,
                    reinterpret_cast<const unsigned char*>(link.secret.data()),
                    static_cast<int>(link.secret.size())) != 0) {
        fail("jwt_set_alg failed");
    }
    if (jwt_add_grants_json(jwt.get(), claims_json.get()) != 0) {
        fail("jwt_add_grants_json failed");
    }
    MallocString token{jwt_encode_str(jwt.get())};
    if (!token) {
        fail("jwt_encode_str failed");
    }
    return token.get();
}

std::string jitsi_join_url(const JitsiLink& link, std::string_view nick, std::int64_t exp,
                           std::optional<std::int64_t> nbf) {
    // A JWT is base64url and dots only: nothing in it needs escaping in a query.
    return link.base_url + "?jwt=" + jitsi_token(link, nick, exp, nbf);
}

std::string bbb_join_url(const BbbLink& link, std::string_view full_name) {
    std::string_view api_base = link.api_base;
    if (!api_base.empty() && api_base.back() == '/') {
        api_base.remove_suffix(1);
    }
    // Without a secret the checksum is a plain hash anyone can compute for any name.
    if (api_base.empty() || link.meeting_id.empty() || link.secret.empty()) {
        fail("BBB link needs an API base, a meeting id and a secret");
    }
    std::unique_ptr<CURL, CurlDeleter> curl{curl_easy_init()};
    if (!curl) {
        fail("curl_easy_init failed");
    }
    // curl_easy_escape leaves only RFC 3986 unreserved characters as they are; the checksum is
    // over the query exactly as sent, so the encoding just has to be the one in the URL.
    std::string query = "fullName=" + url_escape(curl.get(), full_name) +
                        "&meetingID=" + url_escape(curl.get(), link.meeting_id) +
                        "&role=VIEWER&redirect=true";
    // BBB API "API Security Model": checksum = H(call name + query string + shared secret).
    std::string checksum = hex_digest(link.checksum, "join" + query + link.secret);
    return std::string(api_base) + "/join?" + query + "&checksum=" + checksum;
}

std::optional<BbbChecksum> parse_bbb_checksum(std::string_view name) {
    if (name == "sha1") {
        return BbbChecksum::Sha1;
    }
    if (name == "sha256") {
        return BbbChecksum::Sha256;
    }
    return std::nullopt;
}

}  // namespace haven::groups
