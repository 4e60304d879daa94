// The texts the functional addresses module sends (English and German), registered at load.
#pragma once

#include <vector>

#include "modules/functional_addresses/address_config.hpp"
#include "server/core/texts.hpp"

namespace haven::functional_addresses {

// Every "fa-*" text, plus each address's auto-reply as "fa-auto-reply/<localpart>" (one
// configured language serves for the other).
void register_texts(Texts& texts, const std::vector<AddressConfig>& addresses);

}  // namespace haven::functional_addresses
