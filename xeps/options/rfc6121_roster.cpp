// The `roster` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    roster, "RFC 6121: roster management (with XEP-0237 versioning)",
    haven::config::opt_int("roster", "max_items", 1000, 1, 100000,
                           "Most items a user may add to their roster."),
    haven::config::opt_int("roster", "max_name_bytes", 1023, 1, 65535,
                           "Longest roster item name, in bytes (RFC 6121 §2.3.3)."),
    haven::config::opt_int("roster", "max_group_bytes", 1023, 1, 65535,
                           "Longest roster group name, in bytes (RFC 6121 §2.3.3)."),
    haven::config::opt_int("roster", "max_groups", 100, 1, 10000,
                           "Most groups one roster item may be in."),
    haven::config::opt_int("roster", "quota_bytes", 1024 * 1024, 4096, 256 * 1024 * 1024,
                           "Bytes of names, groups and JIDs one user's roster may hold; "
                           "a roster set beyond it gets not-acceptable."))
