// Personal video meeting links: Jitsi JWTs and signed BigBlueButton join calls (README.md §2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace haven::groups {

// Every function here throws std::runtime_error, and returns nothing, when its input cannot make
// a working link (an empty secret, a URL without room) or a library call fails: a member then
// gets no link rather than a broken or unsigned one.

struct JitsiLink {
    // https://meet.example.org/peer-group-lobby: the room is the last path segment, as written
    std::string base_url;
    std::string app_id;  // the JWT's "iss"
    std::string secret;  // the app secret (HS256 key)
};

// A JWT as prosody's token_verification expects it: aud "jitsi", iss app_id, sub the host of
// base_url, room the last path segment, exp (unix seconds, the meeting's end), the nick as
// context.user.name, and nbf when given (the link window's start).
std::string jitsi_token(const JitsiLink& link, std::string_view nick, std::int64_t exp,
                        std::optional<std::int64_t> nbf = std::nullopt);
// base_url + "?jwt=" + jitsi_token(...).
std::string jitsi_join_url(const JitsiLink& link, std::string_view nick, std::int64_t exp,
                           std::optional<std::int64_t> nbf = std::nullopt);

// The digest the BBB server is configured with (bbb-web's supportedChecksumAlgorithms).
enum class BbbChecksum { Sha1, Sha256 };

struct BbbLink {
    std::string api_base;  // https://bbb.example.org/bigbluebutton/api (a trailing '/' is dropped)
    std::string meeting_id;
    std::string secret;  // the shared secret (bbb-conf --secret)
    BbbChecksum checksum = BbbChecksum::Sha256;
};

// api_base + "/join?fullName=..&meetingID=..&role=VIEWER&redirect=true&checksum=..", the checksum
// being hex(H("join" + query + secret)) as the BBB API documents ("API Security Model").
std::string bbb_join_url(const BbbLink& link, std::string_view full_name);

// The config's bbb_checksum: "sha1" or "sha256"; nothing for anything else.
std::optional<BbbChecksum> parse_bbb_checksum(std::string_view name);

}  // namespace haven::groups
