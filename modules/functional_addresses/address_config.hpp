// The [[functional_addresses.addresses]] tables: parsing and validation (README.md §7).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace toml {
inline namespace v3 {
class node;
}  // namespace v3
}  // namespace toml

namespace haven::functional_addresses {

enum class ShowSender { Jid, Pseudonym };

struct AddressConfig {
    std::string local;               // normalised localpart, e.g. "beratung"
    std::string domain;              // normalised domain
    std::string name;                // display name; the localpart when not configured
    std::vector<std::string> staff;  // normalised bare JIDs, in config order, no duplicates
    std::string auto_reply_en;       // "" = none in that language
    std::string auto_reply_de;
    ShowSender show_sender = ShowSender::Jid;
    bool reply_nick = true;
    // Staff bare JID -> the nick the sender sees on that supporter's replies (else `name`).
    std::map<std::string, std::string> pseudonyms;

    std::string jid() const { return local + "@" + domain; }
};

// Parses the option's value (an array of tables). Throws config::ConfigError with a message
// naming the offending entry; checks everything that does not need the server's domain
// (JIDs valid, bare, with a localpart free of '+'; staff non-empty; no duplicate address).
std::vector<AddressConfig> parse_addresses(const toml::node& node);

// The OptionSpec::validate callback: parse_addresses' message, or nothing.
std::optional<std::string> validate_addresses(const toml::node& node);

}  // namespace haven::functional_addresses
