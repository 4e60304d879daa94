// The `private` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    private, "XEP-0049: Private XML Storage",
    haven::config::opt_int("private", "max_bytes", 65536, 256, 1048576,
                           "Largest private XML fragment (serialised) a user may store; "
                           "larger ones get policy-violation."),
    haven::config::opt_int("private", "max_items", 100, 1, 10000,
                           "How many fragments (distinct element name + namespace) one "
                           "user may store."),
    haven::config::opt_int("private", "quota_bytes", 1024 * 1024, 4096, 256 * 1024 * 1024,
                           "Bytes of private XML one user may store in all; a set "
                           "beyond it gets not-acceptable."))
