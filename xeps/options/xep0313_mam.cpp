// The `archive` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    archive, "XEP-0313: Message Archive Management (a policy: what is kept, and how long)",
    haven::config::opt_bool("archive", "enabled", true,
                            "Keep each account's one-to-one messages for its other devices "
                            "(XEP-0313). Sealed at rest, erased with the account. With the "
                            "peer-support model on, conversations with members are kept only "
                            "if [peersupport] archive_member_conversations is true."),
    haven::config::opt_int("archive", "retention_days", 7, 1, 3650,
                           "Days an archived message is kept; older ones are removed every "
                           "10 minutes."),
    haven::config::opt_int("archive", "max_page", 100, 1, 1000,
                           "Most messages one query returns (XEP-0059 <max/> above this is cut "
                           "down); 50 without <max/>."))
