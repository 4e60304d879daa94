// ArchiveStore: XEP-0313 message archives, one table for all accounts, sealed like offline
// messages; found by keyed hashes of the conversation partner, never by the partner's JID.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::xeps::mam {

struct ArchivedMessage {
    std::string id;          // XEP-0359 stanza-id, also the RSM/MAM id
    std::int64_t stamp = 0;  // unix seconds
    std::string payload;     // the serialised message, decrypted
};

// XEP-0313 §4.1.1 filters and XEP-0059 paging, already resolved to what the store needs.
struct ArchiveQuery {
    std::string with;  // bare or full JID (as given); empty: every conversation
    bool with_full = false;
    std::optional<std::int64_t> start, end;          // inclusive, unix seconds
    std::optional<std::string> after_id, before_id;  // the form's filters, exclusive
    std::vector<std::string> ids;                    // urn:xmpp:mam:2#extended: only these
    // XEP-0059: <after>ID</after> pages forward from ID; <before>ID</before> (or an empty
    // <before/>: from the newest) pages backward.
    std::optional<std::string> rsm_after;
    std::optional<std::string> rsm_before;
    std::size_t max = 50;
};

struct ArchivePage {
    std::vector<ArchivedMessage> items;  // oldest first
    bool complete = false;               // nothing further in the direction of the query
};

class ArchiveStore {
public:
    ArchiveStore(storage::Database& db, const storage::SecretBox& box);

    void add(const std::string& user, const std::string& id, std::int64_t stamp,
             const std::string& with_bare, const std::string& with_full,
             const std::string& payload);
    // nullopt: an id in after_id / before_id / ids is not in this user's archive.
    std::optional<ArchivePage> query(const std::string& user, const ArchiveQuery& q) const;
    std::size_t remove_older_than(std::int64_t stamp);
    std::size_t count(const std::string& user) const;

private:
    std::string with_hash(const std::string& user, const std::string& jid) const;
    std::optional<std::int64_t> seq_of(const std::string& user, const std::string& id) const;

    storage::Database& db_;
    const storage::SecretBox& box_;
};

}  // namespace haven::xeps::mam
