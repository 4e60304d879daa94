// The `muc` module's options: its part of the config schema, without its code (linked into
// havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    muc, "XEP-0045: Multi-User Chat rooms",
    haven::config::opt_string("muc", "domain", "",
                              "The rooms' service domain; empty: groups.<server domain>. Give "
                              "it a DNS name and a certificate name once federation is on."),
    haven::config::opt_int("muc", "history_default", 20, 0, 1000,
                           "Messages a new room shows on entering (the owner may change it up "
                           "to history_max). History is kept in memory only and is gone after "
                           "a restart."),
    haven::config::opt_int("muc", "history_max", 100, 0, 1000,
                           "The most messages any room keeps for entering occupants."),
    haven::config::opt_int("muc", "max_occupants", 200, 1, 100000,
                           "Occupants per room (admins and owners still get in); a room's "
                           "owner may set a lower limit."),
    haven::config::opt_int("muc", "max_rooms", 1000, 1, 1000000,
                           "Rooms the service holds, temporary and persistent together; "
                           "creating one more is refused with resource-constraint."),
    haven::config::opt_int("muc", "max_rooms_per_account", 50, 1, 1000000,
                           "Rooms one account may own when it creates another (group rooms "
                           "from the config do not count against their supporters)."))
