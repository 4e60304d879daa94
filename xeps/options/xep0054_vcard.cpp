// The `vcard` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    vcard, "XEP-0054: vcard-temp",
    haven::config::opt_int("vcard", "max_bytes", 65536, 256, 1048576,
                           "Largest vCard (serialised XML, photo included) a user may "
                           "store; larger ones get policy-violation."))
