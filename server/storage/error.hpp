// StorageError: the one exception type that leaves server/storage/.
#pragma once

#include <stdexcept>
#include <string>

namespace haven::storage {

// Thrown for every SQLite, key-file or decryption failure. Callers on the core executor catch it
// at the handler boundary (internal-server-error); at startup it is the one-line fatal message.
class StorageError : public std::runtime_error {
public:
    explicit StorageError(const std::string& what, int code = 0)
        : std::runtime_error(what), code_(code) {}

    // SQLite extended result code (e.g. SQLITE_CONSTRAINT_PRIMARYKEY), 0 when not from SQLite.
    int code() const noexcept { return code_; }
    // SQLITE_BUSY (5) or SQLITE_LOCKED (6), any extended code: another connection holds the
    // lock. The operation may succeed later; callers answer with a temporary (type wait) error.
    bool busy() const noexcept { return (code_ & 0xff) == 5 || (code_ & 0xff) == 6; }

private:
    int code_;
};

}  // namespace haven::storage
