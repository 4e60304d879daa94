// The `version` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    version, "XEP-0092: Software Version",
    haven::config::opt_bool("version", "show_os", false,
                            "Include the operating system in software version answers "
                            "(XEP-0092 §5: it helps attackers; off by default)."))
