// Numbered migrations of the "core" component: accounts, roster, offline messages, key-value.
#pragma once

#include <vector>

#include "server/storage/database.hpp"

namespace haven::storage {

class SecretBox;

// Applied by Database::open; the steps that seal existing rows use `box`. Append steps; never
// edit a shipped one.
std::vector<Migration> core_migrations(const SecretBox& box);

}  // namespace haven::storage
