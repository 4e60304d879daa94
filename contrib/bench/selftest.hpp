// Offline checks of the generator's own parsing and SASL code (haven-bench selftest).
#pragma once

namespace bench {
int selftest();
}
