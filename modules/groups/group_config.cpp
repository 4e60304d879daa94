// The [[groups]] tables: parsing and validation.
#include "modules/groups/group_config.hpp"

#include <toml++/toml.h>
#include <set>

#include "server/config/config.hpp"

namespace haven::groups {
namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
    throw config::ConfigError(where + ": " + what);
}

std::string text(const toml::table& t, std::string_view key, const std::string& where,
                 bool required) {
    const auto* n = t.get(key);
    if (!n) {
        if (required) {
            fail(where, "'" + std::string(key) + "' is required");
        }
        return {};
    }
    if (!n->is_string()) {
        fail(where, "'" + std::string(key) + "' must be a string");
    }
    return *n->value<std::string>();
}

void only_known(const toml::table& t, const std::set<std::string, std::less<>>& known,
                const std::string& where) {
    for (const auto& [key, value] : t) {
        if (!known.contains(key.str())) {
            fail(where, "unknown key '" + std::string(key.str()) + "'");
        }
    }
}

MeetingConfig parse_meeting(const toml::table& t, const std::string& where,
                            const std::string& time_zone, std::size_t index) {
    only_known(t, {"title", "start", "duration_minutes", "repeat", "url"}, where);
    MeetingConfig m;
    m.id = "c" + std::to_string(index + 1);
    m.title = text(t, "title", where, true);
    auto start = parse_local_datetime(text(t, "start", where, true));
    if (!start) {
        fail(where, "'start' must be a local date and time like 2026-12-08T18:00");
    }
    m.time.start = *start;
    m.time.time_zone = time_zone;
    if (const auto* d = t.get("duration_minutes")) {
        auto v = d->value<std::int64_t>();
        if (!d->is_integer() || !v || *v < 1 || *v > 24 * 60) {
            fail(where, "'duration_minutes' must be 1 to 1440");
        }
        m.time.duration_minutes = static_cast<int>(*v);
    }
    if (auto r = text(t, "repeat", where, false); !r.empty()) {
        auto repeat = parse_repeat(r);
        if (!repeat) {
            fail(where, "'repeat' must be none, weekly or biweekly");
        }
        m.time.repeat = *repeat;
    }
    m.url = text(t, "url", where, false);
    return m;
}

}  // namespace

std::vector<GroupConfig> parse_groups(const toml::node& node) {
    const auto* arr = node.as_array();
    if (!arr) {
        throw config::ConfigError("expected an array of tables ([[groups]])");
    }
    std::vector<GroupConfig> out;
    std::set<std::string> ids;
    std::set<Jid> rooms;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const std::string where = "group " + std::to_string(i + 1);
        const auto* t = (*arr)[i].as_table();
        if (!t) {
            fail(where, "expected a table");
        }
        only_known(*t,
                   {"id", "name", "room", "supporters", "time_zone", "link", "secret_file",
                    "jitsi_app_id", "bbb_api", "bbb_meeting_id", "bbb_checksum", "meetings"},
                   where);
        GroupConfig g;
        g.id = text(*t, "id", where, true);
        if (g.id.empty() || g.id.size() > 64 ||
            g.id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos) {
            fail(where, "'id' must be 1-64 characters of a-z, 0-9, '-' and '_'");
        }
        if (!ids.insert(g.id).second) {
            fail(where, "id '" + g.id + "' is declared twice");
        }
        g.name = text(*t, "name", where, false);
        if (g.name.empty()) {
            g.name = g.id;
        }
        auto room = Jid::parse(text(*t, "room", where, true));
        if (!room || room->local().empty() || !room->resource().empty()) {
            fail(where, "'room' must be a room JID like lobby@groups.example.org");
        }
        if (!rooms.insert(*room).second) {
            fail(where, "room '" + room->str() + "' belongs to two groups");
        }
        g.room = *room;
        const auto* sup = t->get("supporters");
        if (!sup || !sup->is_array() || sup->as_array()->empty()) {
            fail(where, "'supporters' must be a non-empty list of JIDs (the room's owners)");
        }
        for (const auto& s : *sup->as_array()) {
            auto j = s.is_string() ? Jid::parse(*s.value<std::string>()) : std::nullopt;
            if (!j || j->local().empty() || !j->resource().empty()) {
                fail(where, "'supporters' entries must be bare JIDs");
            }
            g.supporters.push_back(*j);
        }
        if (auto tz = text(*t, "time_zone", where, false); !tz.empty()) {
            if (!valid_time_zone(tz)) {
                fail(where, "'time_zone' " + tz + " is not a time zone (e.g. Europe/Berlin)");
            }
            g.time_zone = tz;
        }
        const auto link = text(*t, "link", where, false);
        if (link.empty() || link == "plain") {
            g.link = LinkKind::Plain;
        } else if (link == "jitsi") {
            g.link = LinkKind::Jitsi;
        } else if (link == "bbb") {
            g.link = LinkKind::Bbb;
        } else {
            fail(where, "'link' must be plain, jitsi or bbb");
        }
        g.secret_file = text(*t, "secret_file", where, false);
        g.jitsi_app_id = text(*t, "jitsi_app_id", where, false);
        g.bbb_api = text(*t, "bbb_api", where, false);
        g.bbb_meeting_id = text(*t, "bbb_meeting_id", where, false);
        if (g.bbb_meeting_id.empty()) {
            g.bbb_meeting_id = g.id;
        }
        if (auto c = text(*t, "bbb_checksum", where, false); !c.empty()) {
            if (c != "sha1" && c != "sha256") {
                fail(where, "'bbb_checksum' must be sha1 or sha256");
            }
            g.bbb_checksum = c;
        }
        if (g.link != LinkKind::Plain && g.secret_file.empty()) {
            fail(where, "a jitsi or bbb link needs 'secret_file'");
        }
        if (g.link == LinkKind::Jitsi && g.jitsi_app_id.empty()) {
            fail(where, "a jitsi link needs 'jitsi_app_id'");
        }
        if (g.link == LinkKind::Bbb && g.bbb_api.empty()) {
            fail(where, "a bbb link needs 'bbb_api'");
        }
        if (const auto* ms = t->get("meetings")) {
            const auto* list = ms->as_array();
            if (!list) {
                fail(where, "'meetings' must be [[groups.meetings]] tables");
            }
            for (std::size_t k = 0; k < list->size(); ++k) {
                const auto* mt = (*list)[k].as_table();
                const std::string mwhere = where + ", meeting " + std::to_string(k + 1);
                if (!mt) {
                    fail(mwhere, "expected a table");
                }
                auto m = parse_meeting(*mt, mwhere, g.time_zone, k);
                if (m.url.empty() && g.link != LinkKind::Bbb) {
                    fail(mwhere, "'url' is required (the video meeting's address)");
                }
                g.meetings.push_back(std::move(m));
            }
        }
        out.push_back(std::move(g));
    }
    return out;
}

std::optional<std::string> validate_groups(const toml::node& node) {
    try {
        parse_groups(node);
        return std::nullopt;
    } catch (const config::ConfigError& e) {
        return std::string(e.what());
    }
}

}  // namespace haven::groups
