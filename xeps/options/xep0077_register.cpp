// The `inband_register` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    inband_register, "XEP-0077: In-Band Registration",
    haven::config::opt_bool("registration", "enabled", false,
                            "Allow in-band registration (XEP-0077) over TLS."),
    haven::config::opt_int("inband_register", "max_per_window", 10, 0, 1000000,
                           "Registration attempts (successful or not) per window, "
                           "server-wide (0: no limit). [registration] enabled switches "
                           "it on."),
    haven::config::opt_int("inband_register", "window_s", 600, 1, 86400,
                           "Length of the registration rate window in seconds."))
