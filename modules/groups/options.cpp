// The `group_rooms` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "modules/groups/group_config.hpp"
#include "server/config/schema.hpp"

namespace haven::groups {
namespace {

// [[groups]] is a top-level array (the contract), so its spec has no section.
config::OptionSpec groups_option() {
    config::OptionSpec spec;
    spec.key = "groups";
    spec.type = config::Type::Table;
    spec.doc =
        "The peer-support groups, each with a members-only room: [[groups]] tables with id, "
        "name, room, supporters (the room's owners), time_zone, link (plain|jitsi|bbb), "
        "secret_file, jitsi_app_id, bbb_api, bbb_meeting_id, bbb_checksum, and "
        "[[groups.meetings]] with title, start (local time), duration_minutes, repeat "
        "(none|weekly|biweekly), url.";
    spec.validate = validate_groups;
    return spec;
}

}  // namespace
}  // namespace haven::groups

HAVEN_MODULE_OPTIONS(
    group_rooms, "Group rooms: members-only rooms with a schedule and personal meeting links",
    haven::groups::groups_option(),
    haven::config::opt_int("group_rooms", "link_before_minutes", 15, 0, 24 * 60,
                           "The meeting link is shown to admitted members from this many "
                           "minutes before a meeting until its end, and never otherwise."),
    haven::config::opt_int("group_rooms", "max_meetings", 50, 1, 1000,
                           "Meetings one group may have (config and ad-hoc together)."))
