// The `offline` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    offline, "XEP-0160: offline message storage",
    haven::config::opt_int("offline", "quota", 100, 0, 100000,
                           "Messages stored per user while offline; 0 disables storage "
                           "(messages to offline users bounce)."),
    haven::config::opt_int("offline", "quota_bytes", 2 * 1024 * 1024, 4096, 1024 * 1024 * 1024,
                           "Bytes of stored messages per user while offline (as stored, "
                           "encrypted); a message that does not fit bounces like a "
                           "full queue."),
    haven::config::opt_int("offline", "max_age_days", 30, 0, 36500,
                           "Stored messages older than this are deleted; 0 keeps them "
                           "until delivered."))
