// Unit tests for XEP-0045 room rules (xeps/xep0045_muc/room.hpp), the muc#roomconfig form and
// the room record (config_form.hpp, room_store.hpp).
#include <doctest/doctest.h>

#include "server/storage/database.hpp"
#include "server/xmpp/stanza.hpp"
#include "tests/support/test_box.hpp"
#include "xeps/xep0004_data_forms.hpp"
#include "xeps/xep0045_muc/config_form.hpp"
#include "xeps/xep0045_muc/room.hpp"
#include "xeps/xep0045_muc/room_store.hpp"

using namespace haven;
using namespace haven::xeps::muc;

namespace {
Jid jid(std::string_view s) { return *Jid::parse(s); }
Element presence() { return Element("presence", "jabber:client"); }
}  // namespace

TEST_CASE("joining: locked rooms, bans, members-only, passwords, nick conflicts, limits") {
    Room room(jid("r@groups.example"));
    const auto owner = jid("o@example/a");
    const auto alice = jid("alice@example/phone");
    room.set_affiliation(owner.bare(), Affiliation::Owner);
    room.set_locked(true);
    CHECK(room.may_join(alice, "alice", "", 10) == JoinError::Locked);
    CHECK(room.may_join(owner, "o", "", 10) == JoinError::None);
    room.set_locked(false);
    CHECK(room.may_join(alice, "alice", "", 10) == JoinError::None);

    room.add_session(owner, "o", presence(), "id-o");
    CHECK(room.may_join(alice, "o", "", 10) == JoinError::NickConflict);
    // The same account may use its nick from a second device.
    CHECK(room.may_join(jid("o@example/b"), "o", "", 10) == JoinError::None);

    room.config().members_only = true;
    CHECK(room.may_join(alice, "alice", "", 10) == JoinError::MembersOnly);
    room.set_affiliation(alice.bare(), Affiliation::Member);
    CHECK(room.may_join(alice, "alice", "", 10) == JoinError::None);
    room.set_affiliation(alice.bare(), Affiliation::Outcast);
    CHECK(room.may_join(alice, "alice", "", 10) == JoinError::Banned);
    room.set_affiliation(alice.bare(), Affiliation::Member);

    room.config().password = "secret";
    CHECK(room.may_join(alice, "alice", "", 10) == JoinError::Password);
    CHECK(room.may_join(alice, "alice", "secret", 10) == JoinError::None);
    room.config().password.clear();

    CHECK(room.may_join(alice, "alice", "", 1) == JoinError::Full);
    room.config().max_users = 1;
    CHECK(room.may_join(alice, "alice", "", 10) == JoinError::Full);
    // Admins and owners get in even so.
    room.set_affiliation(alice.bare(), Affiliation::Admin);
    CHECK(room.may_join(alice, "alice", "", 10) == JoinError::None);
}

TEST_CASE("default roles follow affiliation and moderation") {
    Room room(jid("r@groups.example"));
    CHECK(room.default_role(Affiliation::Owner) == Role::Moderator);
    CHECK(room.default_role(Affiliation::Admin) == Role::Moderator);
    CHECK(room.default_role(Affiliation::Member) == Role::Participant);
    CHECK(room.default_role(Affiliation::None) == Role::Participant);
    room.config().moderated = true;
    CHECK(room.default_role(Affiliation::None) == Role::Visitor);
    CHECK(room.default_role(Affiliation::Member) == Role::Participant);
}

TEST_CASE("role changes: XEP-0045 §8 and §9 privileges") {
    using A = Affiliation;
    using R = Role;
    // Moderators kick and voice participants and visitors.
    CHECK(Room::may_set_role(A::None, R::Moderator, A::None, R::Participant, R::None));
    CHECK(Room::may_set_role(A::Member, R::Moderator, A::Member, R::Participant, R::Visitor));
    // Participants cannot.
    CHECK_FALSE(Room::may_set_role(A::Member, R::Participant, A::None, R::Participant, R::None));
    // ... but not someone whose affiliation is above their own (a member, by a non-member).
    CHECK_FALSE(Room::may_set_role(A::None, R::Moderator, A::Member, R::Participant, R::None));
    // Nobody kicks or mutes an admin or owner.
    CHECK_FALSE(Room::may_set_role(A::Owner, R::Moderator, A::Admin, R::Moderator, R::None));
    CHECK_FALSE(Room::may_set_role(A::Admin, R::Moderator, A::Owner, R::Moderator, R::Visitor));
    // Granting or revoking moderator needs admin or owner.
    CHECK_FALSE(Room::may_set_role(A::Member, R::Moderator, A::None, R::Participant, R::Moderator));
    CHECK(Room::may_set_role(A::Admin, R::Moderator, A::None, R::Participant, R::Moderator));
    CHECK_FALSE(Room::may_set_role(A::None, R::Moderator, A::None, R::Moderator, R::Participant));
}

TEST_CASE("affiliation changes: admins below admin, owners anything") {
    using A = Affiliation;
    CHECK(Room::may_set_affiliation(A::Admin, A::None, A::Member));
    CHECK(Room::may_set_affiliation(A::Admin, A::Member, A::Outcast));
    CHECK_FALSE(Room::may_set_affiliation(A::Admin, A::Owner, A::None));
    CHECK_FALSE(Room::may_set_affiliation(A::Admin, A::Admin, A::Member));
    CHECK_FALSE(Room::may_set_affiliation(A::Admin, A::Member, A::Admin));
    CHECK(Room::may_set_affiliation(A::Owner, A::Owner, A::Admin));
    CHECK_FALSE(Room::may_set_affiliation(A::Member, A::None, A::Member));
}

TEST_CASE("sessions, nick changes and private-message policy") {
    Room room(jid("r@groups.example"));
    auto [o, fresh] = room.add_session(jid("a@example/1"), "a", presence(), "x");
    CHECK(fresh);
    auto [o2, fresh2] = room.add_session(jid("a@example/2"), "a", presence(), "x");
    CHECK_FALSE(fresh2);
    CHECK(o == o2);
    CHECK(room.occupant_count() == 1);
    CHECK_FALSE(room.remove_session(jid("a@example/1")));
    CHECK(room.by_nick("a")->latest == jid("a@example/2"));
    auto& renamed = room.rename("a", "b");
    CHECK(renamed.nick == "b");
    CHECK(room.by_nick("a") == nullptr);
    CHECK(room.by_session(jid("a@example/2")) == &renamed);
    CHECK(room.remove_session(jid("a@example/2")));
    CHECK(room.empty());

    room.config().allow_pm = PmPolicy::Moderators;
    CHECK(room.may_private_message(Role::Moderator));
    CHECK_FALSE(room.may_private_message(Role::Participant));
    room.config().allow_pm = PmPolicy::None;
    CHECK_FALSE(room.may_private_message(Role::Moderator));
}

TEST_CASE("history honours maxstanzas, maxchars, seconds and since") {
    Room room(jid("r@groups.example"));
    room.config().history_length = 3;
    for (int i = 0; i < 5; ++i) {
        Element m("message", "jabber:client");
        m.add(Element("body")).text("m" + std::to_string(i));
        room.add_history(std::move(m), 1000 + i * 10);
    }
    HistoryRequest all;
    auto h = room.history(all, 2000);
    REQUIRE(h.size() == 3);  // the room keeps 3
    CHECK(h.front()->message.child_text("body") == "m2");
    CHECK(h.back()->message.child_text("body") == "m4");
    HistoryRequest two;
    two.max_stanzas = 2;
    CHECK(room.history(two, 2000).front()->message.child_text("body") == "m3");
    HistoryRequest recent;
    recent.seconds = 15;
    CHECK(room.history(recent, 1045).size() == 2);  // stamps 1030, 1040
    HistoryRequest since;
    since.since = 1040;
    CHECK(room.history(since, 2000).size() == 1);
    HistoryRequest none;
    none.max_stanzas = 0;
    CHECK(room.history(none, 2000).empty());
    HistoryRequest small;
    small.max_chars = 1;
    CHECK(room.history(small, 2000).empty());
}

TEST_CASE("besides its count, a room's history is bounded in bytes") {
    Room room(jid("r@groups.example"));
    room.config().history_length = 1000;
    for (int i = 0; i < 100; ++i) {
        Element big("message", "jabber:client");
        big.add(Element("body")).text(std::string(10000, 'x'));
        room.add_history(std::move(big), 5000);
    }
    std::size_t bytes = 0;
    for (const auto* e : room.history(HistoryRequest{}, 6000)) {
        bytes += e->chars;
    }
    CHECK(bytes <= max_history_bytes);
    CHECK(room.history(HistoryRequest{}, 6000).size() >= 20);
}

TEST_CASE("the configuration form round-trips and rejects bad values") {
    Room room(jid("r@groups.example"));
    room.set_affiliation(jid("o@example"), Affiliation::Owner);
    auto form = config_form(room, 50);
    CHECK(xeps::form_value(form, "FORM_TYPE") == "http://jabber.org/protocol/muc#roomconfig");
    CHECK(xeps::form_values(form, "muc#roomconfig_roomowners") ==
          std::vector<std::string>{"o@example"});

    auto submit = xeps::make_typed_form("submit", "http://jabber.org/protocol/muc#roomconfig");
    xeps::add_field(submit, "muc#roomconfig_membersonly", {}, {}, "1");
    xeps::add_field(submit, "muc#roomconfig_whois", {}, {}, "anyone");
    xeps::add_field(submit, "muc#maxhistoryfetch", {}, {}, "500");
    std::string error;
    auto change = parse_config(room, submit, 50, error);
    REQUIRE(change);
    CHECK(change->config.members_only);
    CHECK(change->config.non_anonymous);
    CHECK(change->config.history_length == 50);  // capped by the service
    CHECK_FALSE(change->owners);                 // not submitted: unchanged

    auto bad = xeps::make_typed_form("submit", {});
    xeps::add_field(bad, "muc#roomconfig_allowpm", {}, {}, "everybody");
    CHECK_FALSE(parse_config(room, bad, 50, error));
    auto no_secret = xeps::make_typed_form("submit", {});
    xeps::add_field(no_secret, "muc#roomconfig_passwordprotectedroom", {}, {}, "1");
    CHECK_FALSE(parse_config(room, no_secret, 50, error));
    auto no_owner = xeps::make_typed_form("submit", {});
    xeps::add_field(no_owner, "muc#roomconfig_roomowners", "jid-multi", {});
    CHECK_FALSE(parse_config(room, no_owner, 50, error));
}

TEST_CASE("rooms are stored sealed and read back whole") {
    auto db = storage::Database::open(":memory:", testing::test_box());
    RoomStore store(*db, testing::test_box());
    Room room(jid("secret-group@groups.example"));
    room.config().name = "Secret group";
    room.config().persistent = true;
    room.config().members_only = true;
    room.config().allow_pm = PmPolicy::Moderators;
    room.set_affiliation(jid("sam@example"), Affiliation::Owner);
    room.set_affiliation(jid("alice@example"), Affiliation::Member);
    room.set_subject("Tuesday", "sam");
    store.save(room);
    store.save(room);  // an update, not a second row

    auto loaded = store.load_all();
    REQUIRE(loaded.size() == 1);
    const auto& r = *loaded.front();
    CHECK(r.jid() == room.jid());
    CHECK(r.config().name == "Secret group");
    CHECK(r.config().members_only);
    CHECK(r.config().allow_pm == PmPolicy::Moderators);
    CHECK(r.affiliation(jid("alice@example")) == Affiliation::Member);
    CHECK(r.affiliation(jid("sam@example")) == Affiliation::Owner);
    CHECK(r.subject() == "Tuesday");

    auto& st = db->prepare_cached("SELECT room_h, record FROM muc_rooms");
    storage::ScopedReset guard(st);
    REQUIRE(st.step());
    const auto raw = st.column_blob(0) + st.column_blob(1);
    CHECK(raw.find("alice") == std::string::npos);
    CHECK(raw.find("secret-group") == std::string::npos);
    CHECK(raw.find("Tuesday") == std::string::npos);

    store.remove(room.jid());
    CHECK(store.load_all().empty());
}

TEST_CASE("XEP-0082 date-times parse for <history since=''/>") {
    CHECK(parse_xep82_datetime("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_xep82_datetime("2026-12-03T12:00:00Z") == 1796299200);
    CHECK(parse_xep82_datetime("2026-12-03T12:00:00.123Z") == 1796299200);
    CHECK(parse_xep82_datetime("2026-12-03T13:00:00+01:00") == 1796299200);
    CHECK(parse_xep82_datetime(xep82_datetime(1796299200)) == 1796299200);
    CHECK_FALSE(parse_xep82_datetime("2026-12-03 12:00:00Z"));
    CHECK_FALSE(parse_xep82_datetime("2026-13-03T12:00:00Z"));
    CHECK_FALSE(parse_xep82_datetime("2026-12-03T12:00:00"));
    CHECK_FALSE(parse_xep82_datetime(""));
}
