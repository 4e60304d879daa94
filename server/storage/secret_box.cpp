// SecretBox: at-rest encryption of personal data and keyed lookup hashes (libsodium, key in a
// 0600 file).
#include "server/storage/secret_box.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "server/storage/error.hpp"

namespace haven::storage {
namespace {

static_assert(SecretBox::key_size == crypto_secretbox_KEYBYTES);
static_assert(SecretBox::overhead == crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES);
static_assert(SecretBox::key_size == crypto_kdf_KEYBYTES);
static_assert(SecretBox::key_size == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(SecretBox::overhead == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                         crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(SecretBox::lookup_size >= crypto_generichash_BYTES_MIN);

// Block layout in guarded memory: the file's key, the AEAD subkey, the lookup subkey.
constexpr std::size_t block_size = 3 * SecretBox::key_size;
// crypto_kdf context (8 bytes) and subkey ids. Changing them makes every stored row unreadable.
constexpr char kdf_context[crypto_kdf_CONTEXTBYTES + 1] = "havendb1";
constexpr std::uint64_t aead_subkey_id = 1;
constexpr std::uint64_t lookup_subkey_id = 2;

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    // close() can report a deferred write error; callers that wrote must check it.
    int close() {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
};

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int err) {
    throw StorageError("storage: " + what + " " + path.string() + ": " + std::strerror(err));
}

void ensure_sodium() {
    if (sodium_init() < 0) {
        throw StorageError("storage: libsodium failed to initialise");
    }
}

void read_key(const std::filesystem::path& path, int fd, unsigned char* key) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        fail("cannot stat key file", path, errno);
    }
    if (!S_ISREG(st.st_mode)) {
        throw StorageError("storage: key file " + path.string() + " is not a regular file");
    }
    if ((st.st_mode & S_IRWXO) != 0) {
        throw StorageError("storage: key file " + path.string() +
                           " is accessible by other users: chmod 600 it");
    }
    if (st.st_size != static_cast<off_t>(SecretBox::key_size)) {
        // Never replace it: data sealed with the real key would become unreadable for good.
        throw StorageError("storage: key file " + path.string() + " has " +
                           std::to_string(st.st_size) + " bytes, expected " +
                           std::to_string(SecretBox::key_size) + ": restore the right file");
    }
    std::size_t done = 0;
    while (done < SecretBox::key_size) {
        const ssize_t n = ::read(fd, key + done, SecretBox::key_size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fail("cannot read key file", path, n < 0 ? errno : EIO);
        }
        done += static_cast<std::size_t>(n);
    }
}

void write_all(const std::filesystem::path& path, int fd, const unsigned char* data,
               std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fail("cannot write key file", path, errno);
        }
        done += static_cast<std::size_t>(n);
    }
}

// Writes a temporary file and link()s it into place: link never replaces an existing file, so
// when two processes (server and admin CLI) race to create the key, exactly one key wins.
// Returns false if another process created the file first.
bool create_key_file(const std::filesystem::path& path, const unsigned char* key) {
    std::filesystem::path tmp = path;
    tmp += ".tmp-" + std::to_string(randombytes_uniform(1u << 30));
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) {
        fail("cannot create key file", tmp, errno);
    }
    struct Unlink {
        const std::filesystem::path& p;
        ~Unlink() { ::unlink(p.c_str()); }
    } unlink_tmp{tmp};
    if (::fchmod(fd.get(), 0600) != 0) {  // umask can only remove bits; make 0600 exact anyway
        fail("cannot chmod key file", tmp, errno);
    }
    write_all(tmp, fd.get(), key, SecretBox::key_size);
    if (::fsync(fd.get()) != 0 || fd.close() != 0) {
        fail("cannot write key file", tmp, errno);
    }
    if (::link(tmp.c_str(), path.c_str()) != 0) {
        if (errno == EEXIST) {
            return false;
        }
        fail("cannot create key file", path, errno);
    }
    // Make the new directory entry durable before any data is sealed with this key.
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) {
        fail("cannot sync directory of key file", dir, errno);
    }
    return true;
}

}  // namespace

void SecretBox::KeyFree::operator()(unsigned char* key) const noexcept { sodium_free(key); }

SecretBox::Key SecretBox::allocate_key() {
    ensure_sodium();
    Key key(static_cast<unsigned char*>(sodium_malloc(block_size)));
    if (!key) {
        throw StorageError("storage: cannot allocate guarded memory for the key");
    }
    return key;
}

void SecretBox::seal_key(unsigned char* key) {
    // Separate keys per purpose: a lookup hash never reveals anything about the AEAD key.
    crypto_kdf_derive_from_key(key + key_size, key_size, aead_subkey_id, kdf_context, key);
    crypto_kdf_derive_from_key(key + 2 * key_size, key_size, lookup_subkey_id, kdf_context, key);
    sodium_mprotect_readonly(key);
}

SecretBox SecretBox::load_or_create(const std::filesystem::path& key_file) {
    Key key = allocate_key();
    for (int attempt = 0; attempt < 2; ++attempt) {
        Fd fd(::open(key_file.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() >= 0) {
            read_key(key_file, fd.get(), key.get());
            seal_key(key.get());
            return SecretBox(std::move(key));
        }
        if (errno != ENOENT) {
            fail("cannot open key file", key_file, errno);
        }
        crypto_secretbox_keygen(key.get());
        if (create_key_file(key_file, key.get())) {
            seal_key(key.get());
            return SecretBox(std::move(key));
        }
        // Lost the race to another process: loop once more to load the winner's key.
    }
    throw StorageError("storage: key file " + key_file.string() + " keeps disappearing");
}

SecretBox SecretBox::ephemeral() {
    Key key = allocate_key();
    crypto_secretbox_keygen(key.get());
    seal_key(key.get());
    return SecretBox(std::move(key));
}

std::string SecretBox::seal(std::string_view plaintext, std::string_view row) const {
    constexpr std::size_t nonce_size = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    std::string out(overhead + plaintext.size(), '\0');
    auto* nonce = reinterpret_cast<unsigned char*>(out.data());
    randombytes_buf(nonce, nonce_size);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        nonce + nonce_size, nullptr, reinterpret_cast<const unsigned char*>(plaintext.data()),
        plaintext.size(), reinterpret_cast<const unsigned char*>(row.data()), row.size(), nullptr,
        nonce, aead_key());
    return out;
}

std::optional<std::string> SecretBox::open(std::string_view sealed, std::string_view row) const {
    constexpr std::size_t nonce_size = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    if (sealed.size() < overhead) {
        return std::nullopt;
    }
    const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
    std::string out(sealed.size() - overhead, '\0');
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<unsigned char*>(out.data()), nullptr, nullptr, nonce + nonce_size,
            sealed.size() - nonce_size, reinterpret_cast<const unsigned char*>(row.data()),
            row.size(), nonce, aead_key()) != 0) {
        return std::nullopt;
    }
    return out;
}

std::string SecretBox::lookup(std::string_view value) const {
    std::string out(lookup_size, '\0');
    crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                       reinterpret_cast<const unsigned char*>(value.data()), value.size(),
                       lookup_key(), key_size);
    return out;
}

std::optional<std::string> SecretBox::open_legacy(std::string_view sealed) const {
    if (sealed.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        return std::nullopt;
    }
    const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
    const auto* cipher = nonce + crypto_secretbox_NONCEBYTES;
    const std::size_t cipher_size = sealed.size() - crypto_secretbox_NONCEBYTES;
    std::string out(cipher_size - crypto_secretbox_MACBYTES, '\0');
    if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(out.data()), cipher,
                                   cipher_size, nonce, key_.get()) != 0) {
        return std::nullopt;
    }
    return out;
}

void pack_append(std::string& out, std::string_view part) {
    // 4-byte little-endian length; a part is never near 4 GiB (stanzas are capped far below).
    const auto n = static_cast<std::uint32_t>(part.size());
    for (int shift = 0; shift < 32; shift += 8) {
        out.push_back(static_cast<char>((n >> shift) & 0xff));
    }
    out.append(part);
}

std::string pack(std::initializer_list<std::string_view> parts) {
    std::string out;
    std::size_t size = 0;
    for (auto p : parts) {
        size += 4 + p.size();
    }
    out.reserve(size);
    for (auto p : parts) {
        pack_append(out, p);
    }
    return out;
}

std::optional<std::vector<std::string>> unpack(std::string_view packed) {
    std::vector<std::string> parts;
    while (!packed.empty()) {
        if (packed.size() < 4) {
            return std::nullopt;
        }
        std::uint32_t n = 0;
        for (int i = 0; i < 4; ++i) {
            n |= static_cast<std::uint32_t>(static_cast<unsigned char>(packed[i])) << (8 * i);
        }
        packed.remove_prefix(4);
        if (n > packed.size()) {
            return std::nullopt;
        }
        parts.emplace_back(packed.substr(0, n));
        packed.remove_prefix(n);
    }
    return parts;
}

}  // namespace haven::storage
