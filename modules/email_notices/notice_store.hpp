// NoticeStore: each user's e-mail address (sealed), its confirmation state, whether a message
// waits for a notice, and the outbox of mails not yet handed to the relay (sealed). All rows go
// with the account (ON DELETE CASCADE).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::email_notices {

struct AddressRecord {
    std::string user;
    std::string address;
    bool confirmed = false;
    std::string code_h;  // keyed hash of the pending confirmation code; empty: none
    std::int64_t code_expires = 0;
    int attempts = 0;
    std::string lang;
    std::int64_t waiting_since = 0;  // a message has waited since (unix s); 0: none
    std::int64_t last_notice = 0;
};

struct OutboxMail {
    std::int64_t id = 0;
    std::string user;
    std::string to, subject, body;
    std::int64_t next_try = 0;
    int attempts = 0;
};

class NoticeStore {
public:
    NoticeStore(storage::Database& db, const storage::SecretBox& box);

    std::optional<AddressRecord> get(const std::string& user) const;
    void put(const AddressRecord& r);      // insert or replace
    bool remove(const std::string& user);  // the address and the user's outbox
    // Users with a confirmed address (loaded at start; the module keeps them in memory).
    std::vector<AddressRecord> confirmed() const;
    void set_waiting(const std::string& user, std::int64_t since);
    void set_notified(const std::string& user, std::int64_t at);

    void add_mail(const std::string& user, const std::string& to, const std::string& subject,
                  const std::string& body, std::int64_t next_try);
    // The oldest mail due at `now`, if any.
    std::optional<OutboxMail> next_due(std::int64_t now) const;
    void mail_sent(std::int64_t id);
    void mail_failed(std::int64_t id, std::int64_t next_try);
    std::size_t outbox_size() const;

    // A keyed hash of a confirmation code for `user` (what get()/put() keep).
    std::string code_hash(const std::string& user, const std::string& code) const;

private:
    storage::Database& db_;
    const storage::SecretBox& box_;
};

}  // namespace haven::email_notices
