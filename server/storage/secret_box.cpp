// SecretBox: at-rest encryption of personal data (libsodium crypto_secretbox, key in a 0600 file).
#include "server/storage/secret_box.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "server/storage/error.hpp"

namespace haven::storage {
namespace {

static_assert(SecretBox::key_size == crypto_secretbox_KEYBYTES);
static_assert(SecretBox::overhead == crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES);

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
    Key key(static_cast<unsigned char*>(sodium_malloc(key_size)));
    if (!key) {
        throw StorageError("storage: cannot allocate guarded memory for the key");
    }
    return key;
}

void SecretBox::seal_key(unsigned char* key) { sodium_mprotect_readonly(key); }

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

std::string SecretBox::seal(std::string_view plaintext) const {
    std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size(),
                    '\0');
    auto* nonce = reinterpret_cast<unsigned char*>(out.data());
    randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES,
                          reinterpret_cast<const unsigned char*>(plaintext.data()),
                          plaintext.size(), nonce, key_.get());
    return out;
}

std::optional<std::string> SecretBox::open(std::string_view sealed) const {
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

}  // namespace haven::storage
