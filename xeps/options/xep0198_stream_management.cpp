// The `stream_management` module's options: its part of the config schema, without its code
// (linked into havend and havenctl; server/config/schema.hpp). They live in [c2s]: they shape
// how long a client's session outlives its connection.
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    stream_management, "XEP-0198: Stream Management (acks and resumption)",
    haven::config::opt_int("c2s", "resume_timeout_s", 600, 0, 86400,
                           "Seconds a session whose connection was lost waits to be resumed "
                           "(XEP-0198): the user stays available and stanzas queue; then "
                           "unacknowledged messages go to offline storage. A waiting session "
                           "costs only its queue, so this can be generous; 0 disables "
                           "resumption (acks only)."),
    haven::config::opt_int("c2s", "sm_max_unacked", 1000, 10, 100000,
                           "Stanzas sent to a client and not yet acknowledged (or queued while "
                           "it is away) before its stream or waiting session ends; what it "
                           "never acknowledged is routed again."),
    haven::config::opt_int("c2s", "sm_max_unacked_bytes", 4 * 1024 * 1024, 64 * 1024,
                           256 * 1024 * 1024, "Bytes of such stanzas, the same rule."))
