// The `csi` module's options: its part of the config schema, without its code (linked into
// havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(csi, "XEP-0352: Client State Indication")
