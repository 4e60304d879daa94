// Accounts: credentials and roles of local users.
#include "server/core/accounts.hpp"

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

namespace haven {
namespace {

storage::ScramRecord to_record(const auth::ScramCredential& c) {
    return storage::ScramRecord{c.salt, c.iterations, c.stored_key, c.server_key};
}

}  // namespace

bool valid_role(std::string_view role) {
    for (auto r : roles) {
        if (r == role) {
            return true;
        }
    }
    return false;
}

std::optional<auth::ScramCredential> Accounts::scram(std::string_view localpart,
                                                     auth::HashAlg alg) const {
    auto rec = users_.get(localpart);
    if (!rec) {
        return std::nullopt;
    }
    const auto& r = alg == auth::HashAlg::Sha256 ? rec->sha256 : rec->sha1;
    if (!r) {
        return std::nullopt;
    }
    return auth::ScramCredential{alg, r->salt, r->iterations, r->stored_key, r->server_key};
}

std::string Accounts::role(std::string_view localpart) const {
    auto rec = users_.get(localpart);
    return rec ? rec->role : std::string("member");
}

auth::CredentialSet Accounts::derive(std::string_view password) const {
    return auth::make_credentials(password, iterations_);
}

bool Accounts::create(std::string_view localpart, const auth::CredentialSet& creds,
                      std::string_view role) {
    storage::UserRecord rec;
    rec.localpart = std::string(localpart);
    rec.role = std::string(role);
    if (creds.sha1) {
        rec.sha1 = to_record(*creds.sha1);
    }
    if (creds.sha256) {
        rec.sha256 = to_record(*creds.sha256);
    }
    rec.created = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    return users_.create(rec);
}

bool Accounts::set_credentials(std::string_view localpart, const auth::CredentialSet& creds) {
    std::optional<storage::ScramRecord> s1, s256;
    if (creds.sha1) {
        s1 = to_record(*creds.sha1);
    }
    if (creds.sha256) {
        s256 = to_record(*creds.sha256);
    }
    return users_.set_credentials(localpart, s1, s256);
}

std::string load_or_create_secret(const std::filesystem::path& file) {
    std::string secret(32, '\0');
    if (std::ifstream in{file, std::ios::binary}) {
        in.read(secret.data(), static_cast<std::streamsize>(secret.size()));
        if (in.gcount() == static_cast<std::streamsize>(secret.size())) {
            return secret;
        }
        throw std::runtime_error(file.string() + ": wrong size; remove it to regenerate");
    }
    randombytes_buf(secret.data(), secret.size());
    // A unique temporary name and link() rather than rename(): several processes starting on
    // a fresh data dir (havenctl runs in parallel, havend) must end up sharing one secret.
    auto tmp = file;
    tmp += ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
        ::chmod(tmp.c_str(), 0600);
        out.write(secret.data(), static_cast<std::streamsize>(secret.size()));
        if (!out) {
            throw std::runtime_error(tmp.string() + ": cannot write");
        }
    }
    int linked = ::link(tmp.c_str(), file.c_str());
    int link_errno = errno;
    std::filesystem::remove(tmp);
    if (linked != 0) {
        if (link_errno == EEXIST) {
            return load_or_create_secret(file);  // another process won: use its secret
        }
        throw std::runtime_error(file.string() + ": cannot create: " + std::strerror(link_errno));
    }
    return secret;
}

}  // namespace haven
