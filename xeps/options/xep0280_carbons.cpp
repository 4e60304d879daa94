// The `carbons` module's options: its part of the config schema, without its code (linked
// into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(carbons, "XEP-0280: Message Carbons")
