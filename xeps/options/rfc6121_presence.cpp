// The `presence` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(presence,
                     "RFC 6121: presence subscriptions, broadcast, probes and directed presence")
