// DataDirLock: one havend per data directory, and no havenctl writing behind a starting one.
#pragma once

#include <filesystem>
#include <optional>

namespace haven::storage {

// An flock(2) on data_dir/havend.lock, held for the life of the object (the kernel drops it
// when the process ends, however it ends, so a crash never leaves a stale lock). havend holds
// it exclusively from before it opens the database until it exits: a second havend on the
// same data would keep its own idea of roles and grants in memory and overwrite the first's.
// havenctl, when no server answers on the control socket, holds it shared while it writes,
// so a server cannot start in the middle of its change and miss it.
class DataDirLock {
public:
    enum class Mode { Exclusive, Shared };
    // std::nullopt when another process holds a conflicting lock. Throws std::runtime_error
    // when the lock file cannot be created or opened.
    static std::optional<DataDirLock> try_lock(const std::filesystem::path& data_dir, Mode mode);

    DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    DataDirLock& operator=(DataDirLock&& other) noexcept;
    DataDirLock(const DataDirLock&) = delete;
    DataDirLock& operator=(const DataDirLock&) = delete;
    ~DataDirLock();

private:
    explicit DataDirLock(int fd) : fd_(fd) {}
    int fd_;
};

}  // namespace haven::storage
