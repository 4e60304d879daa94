// The [[groups]] tables (and their [[groups.meetings]]): parsing and validation (README.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "modules/groups/schedule.hpp"
#include "server/xmpp/jid.hpp"

namespace toml {
inline namespace v3 {
class node;
}  // namespace v3
}  // namespace toml

namespace haven::groups {

// How a meeting's URL becomes the link a member gets.
enum class LinkKind {
    Plain,  // the URL as configured
    Jitsi,  // the URL plus a personal JWT (HS256, the group's secret)
    Bbb,    // a signed BigBlueButton join call per member (the URL is not used)
};

struct MeetingConfig {
    std::string id;  // "c1", "c2", ... for the config's own, random for those added later
    std::string title;
    MeetingTime time;
    std::string url;
};

struct GroupConfig {
    std::string id;
    std::string name;
    Jid room;
    std::vector<Jid> supporters;  // the room's owners
    std::string time_zone = "Europe/Berlin";
    LinkKind link = LinkKind::Plain;
    std::string secret_file;     // Jitsi app secret / BBB shared secret, never in the config
    std::string jitsi_app_id;    // Jitsi "iss"
    std::string bbb_api;         // https://bbb.example.org/bigbluebutton/api
    std::string bbb_meeting_id;  // default: the group id
    std::string bbb_checksum = "sha256";
    std::vector<MeetingConfig> meetings;
};

// Parses the option's value (an array of tables). Throws config::ConfigError naming the entry.
std::vector<GroupConfig> parse_groups(const toml::node& node);
// The OptionSpec::validate callback: parse_groups' message, or nothing.
std::optional<std::string> validate_groups(const toml::node& node);

}  // namespace haven::groups
