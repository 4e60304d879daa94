// The `peersupport` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    peersupport, "Peer support: roles, conversation grants, restricted chat policy",
    haven::config::opt_bool("peersupport", "enabled", true,
                            "Enforce the peer-support model; false = a plain XMPP server."),
    haven::config::opt_list("peersupport", "supporters", {},
                            "Accounts with the supporter role (wins over havenctl)."),
    haven::config::opt_list("peersupport", "admins", {},
                            "Accounts with the admin role (wins over havenctl)."),
    haven::config::opt_int("peersupport", "grant_expiry_days", 0, 0, 3650,
                           "End grants idle this many days; 0 = never."),
    haven::config::opt_int("peersupport", "expiry_check_s", 60, 1, 86400,
                           "How often idle grants are looked for (with expiry on)."),
    haven::config::opt_string("peersupport", "roster_group", "Peer support",
                              "Roster group of the contacts a grant adds."),
    haven::config::opt_bool("peersupport", "members_may_contact_remote", false,
                            "Let members write to other servers' users."),
    haven::config::opt_bool("peersupport", "archive_member_conversations", false,
                            "Keep conversations with members in the message archive "
                            "([archive], XEP-0313). Off: a member's messages are delivered and "
                            "deleted, on both sides."),
    haven::config::opt_string("peersupport", "refusal_text_en", "",
                              "Override the English refusal text."),
    haven::config::opt_string("peersupport", "refusal_text_de", "",
                              "Override the German refusal text."))
