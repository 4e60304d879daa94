// MeetingStore: meetings added while the server runs (ad-hoc commands, havenctl), sealed.
#pragma once

#include <string>
#include <vector>

#include "modules/groups/group_config.hpp"
#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"

namespace haven::groups {

// The config's own meetings live in the config. These are the others: one row each, a keyed
// hash of the group id (to list a group's meetings) and the sealed meeting, since a meeting
// URL lets whoever has it into the call.
class MeetingStore {
public:
    MeetingStore(storage::Database& db, const storage::SecretBox& box);

    void add(const std::string& group_id, const MeetingConfig& m);
    bool remove(const std::string& group_id, const std::string& meeting_id);
    // The group's stored meetings, in the group's time zone.
    std::vector<MeetingConfig> list(const std::string& group_id,
                                    const std::string& time_zone) const;

private:
    std::string group_hash(const std::string& group_id) const;

    storage::Database& db_;
    const storage::SecretBox& box_;
};

}  // namespace haven::groups
