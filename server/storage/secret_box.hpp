// SecretBox: at-rest encryption of personal data and keyed lookup hashes (libsodium, key in a
// 0600 file).
#pragma once

#include <cstddef>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace haven::storage {

// Holds the key file's 32 bytes and two subkeys derived from it (crypto_kdf) in libsodium
// guarded memory (read-only, excluded from core dumps, wiped on destruction). Protects database
// files, backups and copies against anyone without the key file; keep the key file out of
// database backups or the protection is void.
//
// seal()/open(): XChaCha20-Poly1305 with additional data that names the row a ciphertext
// belongs to (see pack()): a ciphertext copied into another row, table or account no longer
// opens. lookup(): keyed BLAKE2b, so a table can be searched by a value (a contact's JID, the
// two sides of a grant) that it does not store in the clear.
class SecretBox {
public:
    static constexpr std::size_t key_size = 32;
    static constexpr std::size_t overhead = 24 + 16;  // nonce + MAC added by seal()
    static constexpr std::size_t lookup_size = 16;    // bytes of a lookup() hash

    // Loads the key, or creates it (atomically, mode 0600) if the file does not exist. Throws
    // StorageError if the file has the wrong size, is not a regular file, is accessible by
    // "other", or cannot be read or written: encrypted data must never be silently re-keyed.
    static SecretBox load_or_create(const std::filesystem::path& key_file);
    // A random key that lives only in memory (tests, :memory: databases).
    static SecretBox ephemeral();

    SecretBox(SecretBox&&) noexcept = default;
    SecretBox& operator=(SecretBox&&) noexcept = default;

    // nonce || ciphertext. A fresh random nonce per call (192-bit, safe to pick at random).
    // `row` is authenticated, not stored: open() must be given the same bytes.
    std::string seal(std::string_view plaintext, std::string_view row) const;
    // nullopt when the input was not sealed with this key for this row, or was altered.
    std::optional<std::string> open(std::string_view sealed, std::string_view row) const;
    // A 16-byte keyed hash of `value` (use pack() for several parts). Equal inputs give equal
    // hashes, so it can be a primary key; without the key file nobody can compute or test one.
    std::string lookup(std::string_view value) const;

    // The format written before schema "core" 2 (crypto_secretbox with the file's key itself,
    // nothing bound): read only by the migrations that re-seal old rows.
    std::optional<std::string> open_legacy(std::string_view sealed) const;

private:
    struct KeyFree {
        void operator()(unsigned char* key) const noexcept;
    };
    using Key = std::unique_ptr<unsigned char, KeyFree>;

    explicit SecretBox(Key key) : key_(std::move(key)) {}
    static Key allocate_key();
    // Derives the subkeys next to the file's key, then makes the block read-only.
    static void seal_key(unsigned char* key);
    const unsigned char* aead_key() const { return key_.get() + key_size; }
    const unsigned char* lookup_key() const { return key_.get() + 2 * key_size; }

    Key key_;
};

// Length-prefixed concatenation: the one encoding for a row's additional data, a lookup()
// input and a sealed record of several fields. Unambiguous: pack({"ab", "c"}) differs from
// pack({"a", "bc"}), so values chosen by users cannot make two rows' bindings equal.
std::string pack(std::initializer_list<std::string_view> parts);
void pack_append(std::string& out, std::string_view part);
// nullopt unless `packed` is a whole sequence of parts written by pack()/pack_append().
std::optional<std::vector<std::string>> unpack(std::string_view packed);

}  // namespace haven::storage
