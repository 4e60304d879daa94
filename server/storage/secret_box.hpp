// SecretBox: at-rest encryption of personal data (libsodium crypto_secretbox, key in a 0600 file).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace haven::storage {

// Holds a 32-byte key in libsodium guarded memory (read-only, excluded from core dumps, wiped
// on destruction). Protects database files, backups and copies against anyone without the key
// file; keep the key file out of database backups or the protection is void.
class SecretBox {
public:
    static constexpr std::size_t key_size = 32;
    static constexpr std::size_t overhead = 24 + 16;  // nonce + MAC added by seal()

    // Loads the key, or creates it (atomically, mode 0600) if the file does not exist. Throws
    // StorageError if the file has the wrong size, is not a regular file, is accessible by
    // "other", or cannot be read or written: encrypted data must never be silently re-keyed.
    static SecretBox load_or_create(const std::filesystem::path& key_file);
    // A random key that lives only in memory (tests, :memory: databases).
    static SecretBox ephemeral();

    SecretBox(SecretBox&&) noexcept = default;
    SecretBox& operator=(SecretBox&&) noexcept = default;

    // nonce || ciphertext. A fresh random nonce per call (192-bit, safe to pick at random).
    std::string seal(std::string_view plaintext) const;
    // nullopt when the input was not sealed with this key or was altered.
    std::optional<std::string> open(std::string_view sealed) const;

private:
    struct KeyFree {
        void operator()(unsigned char* key) const noexcept;
    };
    using Key = std::unique_ptr<unsigned char, KeyFree>;

    explicit SecretBox(Key key) : key_(std::move(key)) {}
    static Key allocate_key();
    static void seal_key(unsigned char* key);

    Key key_;
};

}  // namespace haven::storage
