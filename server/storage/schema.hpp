// Numbered migrations of the "core" component: accounts, roster, offline messages, key-value.
#pragma once

#include <span>
#include <string_view>

namespace haven::storage {

// Applied by Database::open. Append steps; never edit a shipped one.
std::span<const std::string_view> core_migrations();

}  // namespace haven::storage
