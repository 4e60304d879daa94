// One at-rest key per test process, for databases whose key the test does not care about.
#pragma once

#include "server/storage/secret_box.hpp"

namespace haven::testing {

// The same key for every call, so a test can close and reopen a file (Database::open seals
// migrated rows with it). Tests about keys make their own SecretBox.
inline const storage::SecretBox& test_box() {
    static const storage::SecretBox box = storage::SecretBox::ephemeral();
    return box;
}

}  // namespace haven::testing
