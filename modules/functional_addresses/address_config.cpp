// The [[functional_addresses.addresses]] tables: parsing and validation.
#include "modules/functional_addresses/address_config.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <set>

#include "server/config/config.hpp"
#include "server/xmpp/jid.hpp"

namespace haven::functional_addresses {
namespace {

[[noreturn]] void fail(std::size_t index, const std::string& what) {
    throw config::ConfigError("entry " + std::to_string(index + 1) + ": " + what);
}

std::string string_field(const toml::table& t, std::string_view key, std::size_t index,
                         bool required) {
    const auto* n = t.get(key);
    if (!n) {
        if (required) {
            fail(index, "'" + std::string(key) + "' is required");
        }
        return {};
    }
    if (!n->is_string()) {
        fail(index, "'" + std::string(key) + "' must be a string");
    }
    return *n->value<std::string>();
}

// A bare JID with a localpart; returns the normalised form.
Jid account_jid(const std::string& text, std::size_t index, std::string_view what) {
    auto jid = Jid::parse(text);
    if (!jid || jid->local().empty() || !jid->resource().empty()) {
        fail(index, std::string(what) + " '" + text + "' is not a bare JID with a localpart");
    }
    return *jid;
}

}  // namespace

std::vector<AddressConfig> parse_addresses(const toml::node& node) {
    static const std::set<std::string, std::less<>> known = {
        "jid",         "name",       "staff",     "auto_reply_en", "auto_reply_de",
        "show_sender", "reply_nick", "pseudonyms"};
    const auto* arr = node.as_array();
    if (!arr) {
        throw config::ConfigError(
            "expected an array of tables ([[functional_addresses.addresses]])");
    }
    std::vector<AddressConfig> out;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const auto* t = (*arr)[i].as_table();
        if (!t) {
            fail(i, "expected a table");
        }
        for (const auto& [key, value] : *t) {
            if (!known.contains(key.str())) {
                fail(i, "unknown key '" + std::string(key.str()) + "'");
            }
        }
        AddressConfig a;
        auto jid = account_jid(string_field(*t, "jid", i, true), i, "jid");
        a.local = jid.local();
        a.domain = jid.domain();
        // The pseudonymous inquiry JIDs are "<local>+<token>": a '+' in the address itself
        // would make them ambiguous.
        if (a.local.find('+') != std::string::npos) {
            fail(i, "the localpart of '" + jid.str() + "' must not contain '+'");
        }
        if (!seen.insert(jid.str()).second) {
            fail(i, "'" + jid.str() + "' is declared twice");
        }
        a.name = string_field(*t, "name", i, false);
        if (a.name.empty()) {
            a.name = a.local;
        }
        const auto* staff = t->get("staff");
        if (!staff || !staff->is_array() || staff->as_array()->empty()) {
            fail(i, "'staff' must be a non-empty list of JIDs");
        }
        for (const auto& s : *staff->as_array()) {
            if (!s.is_string()) {
                fail(i, "'staff' must be a list of strings");
            }
            auto member = account_jid(*s.value<std::string>(), i, "staff entry");
            if (member.domain() != a.domain) {
                fail(i, "staff entry '" + member.str() + "' is not on " + a.domain);
            }
            if (std::find(a.staff.begin(), a.staff.end(), member.str()) == a.staff.end()) {
                a.staff.push_back(member.str());
            }
        }
        a.auto_reply_en = string_field(*t, "auto_reply_en", i, false);
        a.auto_reply_de = string_field(*t, "auto_reply_de", i, false);
        auto show = string_field(*t, "show_sender", i, false);
        if (show.empty() || show == "jid") {
            a.show_sender = ShowSender::Jid;
        } else if (show == "pseudonym") {
            a.show_sender = ShowSender::Pseudonym;
        } else {
            fail(i, "'show_sender' must be \"jid\" or \"pseudonym\"");
        }
        if (const auto* n = t->get("reply_nick")) {
            if (!n->is_boolean()) {
                fail(i, "'reply_nick' must be true or false");
            }
            a.reply_nick = *n->value<bool>();
        }
        if (const auto* p = t->get("pseudonyms")) {
            // { "sam@example.org" = "Sam" }: the name the sender sees on that supporter's
            // replies instead of the address's name. Never a localpart (README.md §8).
            const auto* table = p->as_table();
            if (!table) {
                fail(i, "'pseudonyms' must be a table of staff JID = \"name\"");
            }
            for (const auto& [key, value] : *table) {
                auto member = account_jid(std::string(key.str()), i, "pseudonyms key");
                if (std::find(a.staff.begin(), a.staff.end(), member.str()) == a.staff.end()) {
                    fail(i, "pseudonyms key '" + member.str() + "' is not in 'staff'");
                }
                const auto* name = value.as_string();
                if (!name || name->get().empty()) {
                    fail(i, "the pseudonym of '" + member.str() + "' must be a non-empty string");
                }
                a.pseudonyms[member.str()] = name->get();
            }
        }
        out.push_back(std::move(a));
    }
    return out;
}

std::optional<std::string> validate_addresses(const toml::node& node) {
    try {
        parse_addresses(node);
    } catch (const config::ConfigError& e) {
        return std::string(e.what());
    }
    return std::nullopt;
}

}  // namespace haven::functional_addresses
