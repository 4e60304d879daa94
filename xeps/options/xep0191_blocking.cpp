// The `blocking` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(blocking, "XEP-0191: Blocking Command",
                     haven::config::opt_int("blocking", "max_items", 1000, 1, 100000,
                                            "How many JIDs one user may block."),
                     haven::config::opt_int("blocking", "quota_bytes", 256 * 1024, 4096,
                                            64 * 1024 * 1024,
                                            "Bytes of JIDs one user's block list may hold; a block "
                                            "beyond it gets policy-violation like a full list."))
