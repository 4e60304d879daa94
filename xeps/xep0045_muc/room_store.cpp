// RoomStore: persistent rooms in the module's own table, sealed (see room_store.hpp).
#include "xeps/xep0045_muc/room_store.hpp"

#include <array>
#include <charconv>

#include "server/storage/error.hpp"
#include "server/xml/stream_parser.hpp"

namespace haven::xeps::muc {
namespace {

constexpr std::string_view record_ns = "urn:haven:muc:room";

constexpr std::string_view step1 =
    R"sql(CREATE TABLE muc_rooms (
        room_h BLOB PRIMARY KEY NOT NULL,  -- lookup(pack("muc_room", room JID))
        record BLOB NOT NULL               -- sealed RoomStore::to_element(), bound to room_h
    ) WITHOUT ROWID;)sql";

std::string row(std::string_view hash) { return storage::pack({"muc_room", hash}); }

std::string_view flag(bool b) { return b ? "1" : "0"; }

std::size_t to_size(std::string_view s) {
    std::size_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

}  // namespace

RoomStore::RoomStore(storage::Database& db, const storage::SecretBox& box) : db_(db), box_(box) {
    const std::array<storage::Migration, 1> steps{storage::Migration{step1}};
    db_.migrate("muc", steps);
}

std::string RoomStore::room_hash(const Jid& room) const {
    return box_.lookup(storage::pack({"muc_room", room.str()}));
}

Element RoomStore::to_element(const Room& room) {
    Element e("room", std::string(record_ns));
    e.attr("jid", room.jid().str());
    if (room.locked()) {
        e.attr("locked", "1");
    }
    const auto& c = room.config();
    auto& conf = e.add(Element("config", std::string(record_ns)));
    conf.attr("name", c.name)
        .attr("description", c.description)
        .attr("lang", c.lang)
        .attr("persistent", std::string(flag(c.persistent)))
        .attr("public", std::string(flag(c.public_room)))
        .attr("members_only", std::string(flag(c.members_only)))
        .attr("moderated", std::string(flag(c.moderated)))
        .attr("non_anonymous", std::string(flag(c.non_anonymous)))
        .attr("allow_invites", std::string(flag(c.allow_invites)))
        .attr("change_subject", std::string(flag(c.change_subject)))
        .attr("allow_pm", std::string(name(c.allow_pm)))
        .attr("password", c.password)
        .attr("max_users", std::to_string(c.max_users))
        .attr("history_length", std::to_string(c.history_length));
    for (const auto& [jid, aff] : room.affiliations()) {
        e.add(Element("affiliation", std::string(record_ns)))
            .attr("jid", jid.str())
            .attr("affiliation", std::string(name(aff)));
    }
    if (!room.subject().empty()) {
        e.add(Element("subject", std::string(record_ns)))
            .attr("by", room.subject_by())
            .text(room.subject());
    }
    return e;
}

std::unique_ptr<Room> RoomStore::from_element(const Element& e) {
    auto jid = Jid::parse(e.attr("jid"));
    const auto* conf = e.child("config", record_ns);
    if (e.name() != "room" || !jid || !conf) {
        return nullptr;
    }
    auto room = std::make_unique<Room>(*jid);
    room->set_locked(e.attr("locked") == "1");
    auto& c = room->config();
    c.name = conf->attr("name");
    c.description = conf->attr("description");
    c.lang = conf->attr("lang");
    c.persistent = conf->attr("persistent") == "1";
    c.public_room = conf->attr("public") == "1";
    c.members_only = conf->attr("members_only") == "1";
    c.moderated = conf->attr("moderated") == "1";
    c.non_anonymous = conf->attr("non_anonymous") == "1";
    c.allow_invites = conf->attr("allow_invites") == "1";
    c.change_subject = conf->attr("change_subject") == "1";
    c.allow_pm = parse_pm_policy(conf->attr("allow_pm")).value_or(PmPolicy::Anyone);
    c.password = conf->attr("password");
    c.max_users = to_size(conf->attr("max_users"));
    c.history_length = to_size(conf->attr("history_length"));
    for (const auto* a : e.children("affiliation", record_ns)) {
        auto who = Jid::parse(a->attr("jid"));
        auto aff = parse_affiliation(a->attr("affiliation"));
        if (who && aff) {
            room->set_affiliation(*who, *aff);
        }
    }
    if (const auto* s = e.child("subject", record_ns)) {
        room->set_subject(s->text(), std::string(s->attr("by")));
    }
    return room;
}

void RoomStore::save(const Room& room) {
    const auto h = room_hash(room.jid());
    auto& st = db_.prepare_cached(
        "INSERT INTO muc_rooms (room_h, record) VALUES (?1, ?2) "
        "ON CONFLICT(room_h) DO UPDATE SET record = excluded.record");
    storage::ScopedReset guard(st);
    st.bind(1, storage::Blob{h}).bind(
        2, storage::Blob{box_.seal(xml::serialize(to_element(room)), row(h))});
    st.step();
}

void RoomStore::remove(const Jid& room) {
    auto& st = db_.prepare_cached("DELETE FROM muc_rooms WHERE room_h = ?1");
    storage::ScopedReset guard(st);
    st.bind(1, storage::Blob{room_hash(room)});
    st.step();
}

std::vector<std::unique_ptr<Room>> RoomStore::load_all() const {
    std::vector<std::unique_ptr<Room>> out;
    auto& st = db_.prepare_cached("SELECT room_h, record FROM muc_rooms");
    storage::ScopedReset guard(st);
    while (st.step()) {
        const auto h = st.column_blob(0);
        auto plain = box_.open(st.column_blob(1), row(h));
        if (!plain) {
            throw storage::StorageError("muc: a room record does not decrypt: wrong key file?");
        }
        auto e = xml::parse_fragment(*plain, record_ns);
        auto room = e ? from_element(*e) : nullptr;
        if (!room) {
            throw storage::StorageError("muc: a room record is malformed");
        }
        out.push_back(std::move(room));
    }
    return out;
}

}  // namespace haven::xeps::muc
