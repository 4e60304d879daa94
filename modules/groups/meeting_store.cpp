// MeetingStore: the module's own table of meetings, sealed (see meeting_store.hpp).
#include "modules/groups/meeting_store.hpp"

#include <array>
#include <charconv>

#include "server/storage/error.hpp"

namespace haven::groups {
namespace {

constexpr std::string_view step1 =
    R"sql(CREATE TABLE group_meetings (
        id TEXT PRIMARY KEY NOT NULL,  -- random, shown to supporters to remove it
        group_h BLOB NOT NULL,         -- lookup(pack("group", group id))
        record BLOB NOT NULL           -- sealed pack(group, title, start, minutes, repeat, url)
    ) WITHOUT ROWID;
    CREATE INDEX group_meetings_group ON group_meetings(group_h);)sql";

std::string row(std::string_view id) { return storage::pack({"group_meeting", id}); }

}  // namespace

MeetingStore::MeetingStore(storage::Database& db, const storage::SecretBox& box)
    : db_(db), box_(box) {
    const std::array<storage::Migration, 1> steps{storage::Migration{step1}};
    db_.migrate("group_rooms", steps);
}

std::string MeetingStore::group_hash(const std::string& group_id) const {
    return box_.lookup(storage::pack({"group", group_id}));
}

void MeetingStore::add(const std::string& group_id, const MeetingConfig& m) {
    const auto record = storage::pack(
        {group_id, m.title, format_local_datetime(m.time.start),
         std::to_string(m.time.duration_minutes), repeat_name(m.time.repeat), m.url});
    auto& st = db_.prepare_cached(
        "INSERT INTO group_meetings (id, group_h, record) VALUES (?1, ?2, ?3)");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(m.id))
        .bind(2, storage::Blob{group_hash(group_id)})
        .bind(3, storage::Blob{box_.seal(record, row(m.id))});
    st.step();
}

bool MeetingStore::remove(const std::string& group_id, const std::string& meeting_id) {
    auto& st = db_.prepare_cached("DELETE FROM group_meetings WHERE id = ?1 AND group_h = ?2");
    storage::ScopedReset guard(st);
    st.bind(1, std::string_view(meeting_id)).bind(2, storage::Blob{group_hash(group_id)});
    st.step();
    return db_.changes() > 0;
}

std::vector<MeetingConfig> MeetingStore::list(const std::string& group_id,
                                              const std::string& time_zone) const {
    std::vector<MeetingConfig> out;
    auto& st = db_.prepare_cached("SELECT id, record FROM group_meetings WHERE group_h = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, storage::Blob{group_hash(group_id)});
    while (st.step()) {
        MeetingConfig m;
        m.id = st.column_text(0);
        auto plain = box_.open(st.column_blob(1), row(m.id));
        auto parts = plain ? storage::unpack(*plain) : std::nullopt;
        if (!parts || parts->size() != 6 || (*parts)[0] != group_id) {
            throw storage::StorageError("group_rooms: a meeting does not decrypt: wrong key?");
        }
        auto start = parse_local_datetime((*parts)[2]);
        auto repeat = parse_repeat((*parts)[4]);
        int minutes = 0;
        const auto& mins = (*parts)[3];
        std::from_chars(mins.data(), mins.data() + mins.size(), minutes);
        if (!start || !repeat || minutes <= 0) {
            throw storage::StorageError("group_rooms: a stored meeting is malformed");
        }
        m.title = (*parts)[1];
        m.time = MeetingTime{*start, time_zone, minutes, *repeat};
        m.url = (*parts)[5];
        out.push_back(std::move(m));
    }
    return out;
}

}  // namespace haven::groups
