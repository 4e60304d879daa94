// RoomStore: persistent rooms (configuration, affiliations, subject), one sealed record each.
#pragma once

#include <memory>
#include <vector>

#include "server/storage/database.hpp"
#include "server/storage/secret_box.hpp"
#include "xeps/xep0045_muc/room.hpp"

namespace haven::xeps::muc {

// A room's affiliation list says who belongs to which group: in a peer-support organisation
// that is health data. So a room is a keyed hash of its JID and one sealed record (the room's
// XML form below), bound to that hash; the file alone shows how many rooms there are.
class RoomStore {
public:
    RoomStore(storage::Database& db, const storage::SecretBox& box);

    void save(const Room& room);
    void remove(const Jid& room);
    // Every stored room; a record that does not open (another key file) throws StorageError.
    std::vector<std::unique_ptr<Room>> load_all() const;

    // The record's form, also used by tests: <room xmlns='urn:haven:muc:room'> with the
    // configuration as attributes of <config/>, one <affiliation/> per JID and the subject.
    static Element to_element(const Room& room);
    static std::unique_ptr<Room> from_element(const Element& e);

private:
    std::string room_hash(const Jid& room) const;

    storage::Database& db_;
    const storage::SecretBox& box_;
};

}  // namespace haven::xeps::muc
