// Issue 11, privacy at rest: the peer-support grants and the functional-address inquiries are
// sealed, found by keyed hashes, bound to their rows, and converted from their first schema.
#include <doctest/doctest.h>

#include <array>
#include <string>

#include "modules/functional_addresses/inquiry_store.hpp"
#include "modules/peersupport/grant_store.hpp"
#include "server/storage/database.hpp"
#include "server/storage/user_store.hpp"
#include "tests/support/test_box.hpp"

using namespace haven;
using haven::testing::test_box;

namespace {

std::int64_t scalar(storage::Database& db, std::string_view sql) {
    auto& st = db.prepare_cached(sql);
    storage::ScopedReset guard(st);
    REQUIRE(st.step());
    return st.column_int64(0);
}

// Every value of every row of `table` (which has `columns` columns), as bytes: what someone
// with only the file can read.
std::string dump(storage::Database& db, const std::string& table, int columns) {
    auto& st = db.prepare_cached("SELECT * FROM " + table);
    storage::ScopedReset guard(st);
    std::string out;
    while (st.step()) {
        for (int c = 0; c < columns; ++c) {
            out += st.column_blob(c);
            out += '|';
        }
    }
    return out;
}

void add_account(storage::Database& db, const char* local) {
    storage::UserRecord u;
    u.localpart = local;
    REQUIRE(storage::UserStore(db).create(u));
}

}  // namespace

TEST_CASE("grants: found by the pair, listed by either side, no localpart in the table") {
    auto db = storage::Database::open(":memory:", test_box());
    peersupport::GrantStore grants(*db, test_box());
    CHECK(grants.create("sam", "memberneedle", 100));
    CHECK_FALSE(grants.create("sam", "memberneedle", 101));  // exists
    CHECK(grants.create("kim", "memberneedle", 100));
    CHECK(grants.create("sam", "other", 100));
    CHECK(grants.exists("sam", "memberneedle"));
    CHECK_FALSE(grants.exists("memberneedle", "sam"));  // a grant has a direction
    const std::string table = dump(*db, "peersupport_grants", 4);
    for (const char* name : {"sam", "kim", "memberneedle", "other"}) {
        CAPTURE(name);
        CHECK(table.find(name) == std::string::npos);
    }
    auto of_member = grants.list(std::string_view("memberneedle"));
    REQUIRE(of_member.size() == 2);
    CHECK(of_member[0].supporter == "kim");
    CHECK(of_member[1].supporter == "sam");
    CHECK(grants.list(std::string_view("sam")).size() == 2);
    grants.touch("sam", "memberneedle", 500);
    auto idle = grants.idle_since(200);
    CHECK(idle.size() == 2);  // kim's and sam->other: sam->memberneedle was touched at 500

    // Account deletion: either side's grants end, the others stay.
    storage::RosterStore roster(*db, test_box());
    CHECK(peersupport::end_grants_of_account(*db, grants, roster, "example.org", "memberneedle")
              .size() == 2);
    CHECK(grants.list().size() == 1);
    CHECK(grants.remove("sam", "other"));
    CHECK_FALSE(grants.remove("sam", "other"));
}

TEST_CASE("grants: a row's sealed pair copied into another row does not open") {
    auto db = storage::Database::open(":memory:", test_box());
    peersupport::GrantStore grants(*db, test_box());
    grants.create("sam", "alice", 1);
    grants.create("kim", "bob", 1);
    // Someone without the key tries to make kim's grant name alice.
    db->exec("UPDATE peersupport_grants SET parties = (SELECT min(parties) FROM "
             "peersupport_grants) WHERE parties = (SELECT max(parties) FROM peersupport_grants)");
    CHECK_THROWS_AS(grants.list(), storage::StorageError);
}

TEST_CASE("grants: the first schema's rows are converted and the plaintext table goes") {
    auto db = storage::Database::open(":memory:", test_box());
    add_account(*db, "sam");
    add_account(*db, "alice");
    constexpr std::array<std::string_view, 1> v1{
        R"sql(CREATE TABLE peersupport_grants (
            supporter TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
            member TEXT NOT NULL REFERENCES accounts(localpart) ON DELETE CASCADE,
            created INTEGER NOT NULL,
            last_activity INTEGER NOT NULL,
            PRIMARY KEY (supporter, member)
        ) WITHOUT ROWID;
        CREATE INDEX peersupport_grants_member ON peersupport_grants(member);)sql"};
    db->migrate("peersupport", v1);  // as a build before issue 11 left it
    db->exec("INSERT INTO peersupport_grants VALUES ('sam', 'alice', 10, 20)");

    peersupport::GrantStore grants(*db, test_box());
    CHECK(db->schema_version("peersupport") == 2);
    auto all = grants.list();
    REQUIRE(all.size() == 1);
    CHECK(all[0].supporter == "sam");
    CHECK(all[0].member == "alice");
    CHECK(all[0].created == 10);
    CHECK(all[0].last_activity == 20);
    CHECK(dump(*db, "peersupport_grants", 4).find("alice") == std::string::npos);
    CHECK(scalar(*db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v1%'") == 0);
}

TEST_CASE("inquiries: nobody's JID in the table; closing unlinks a sender's inquiries") {
    auto db = storage::Database::open(":memory:", test_box());
    functional_addresses::InquiryStore store(*db, test_box());
    auto a = store.create("beratung", "memberneedle@example.org", 100, {});
    CHECK(store.claim(a.token, "staffneedle@example.org", 101));
    const std::string table = dump(*db, "fa_inquiries", 6);
    for (const char* needle : {"beratung", "memberneedle", "staffneedle"}) {
        CAPTURE(needle);
        CHECK(table.find(needle) == std::string::npos);
    }
    auto got = store.active("beratung", "memberneedle@example.org");
    REQUIRE(got);
    CHECK(got->claimed_by == "staffneedle@example.org");
    CHECK_FALSE(store.active("beratung", "other@example.org"));
    CHECK_FALSE(store.active("trans-group", "memberneedle@example.org"));

    // The same person writes again after the first inquiry closed: the two rows share no
    // lookup hash, so the file does not tell that one person wrote twice.
    CHECK(store.close(a.token, 102));
    auto b = store.create("beratung", "memberneedle@example.org", 103, {});
    CHECK(scalar(*db, "SELECT count(DISTINCT thread_h) FROM fa_inquiries") == 2);
    CHECK(store.active("beratung", "memberneedle@example.org")->token == b.token);
    CHECK(store.find(a.token)->sender == "memberneedle@example.org");

    // A record moved to another token does not open.
    db->exec("UPDATE fa_inquiries SET record = (SELECT record FROM fa_inquiries WHERE token = '" +
             a.token + "') WHERE token = '" + b.token + "'");
    CHECK_THROWS_AS(store.find(b.token), storage::StorageError);
}

TEST_CASE("inquiries: the first schema's rows are converted, claims and states kept") {
    auto db = storage::Database::open(":memory:", test_box());
    constexpr std::array<std::string_view, 1> v1{
        R"sql(CREATE TABLE fa_inquiries (
            token TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            sender TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('open', 'claimed', 'closed')),
            claimed_by TEXT,
            created INTEGER NOT NULL,
            updated INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX fa_inquiries_active ON fa_inquiries(address, sender)
            WHERE state != 'closed';
        CREATE INDEX fa_inquiries_sender ON fa_inquiries(sender);
        CREATE INDEX fa_inquiries_claimed_by ON fa_inquiries(claimed_by);)sql"};
    db->migrate("functional_addresses", v1);
    db->exec(
        "INSERT INTO fa_inquiries VALUES "
        "('ab12', 'beratung', 'alice@example.org', 'claimed', 'sam@example.org', 10, 11),"
        "('cd34', 'beratung', 'alice@example.org', 'closed', NULL, 5, 6),"
        "('ef56', 'beratung', 'bob@example.org', 'open', NULL, 12, 12)");

    functional_addresses::InquiryStore store(*db, test_box());
    CHECK(db->schema_version("functional_addresses") == 2);
    auto claimed = store.active("beratung", "alice@example.org");
    REQUIRE(claimed);
    CHECK(claimed->token == "ab12");
    CHECK(claimed->state == functional_addresses::State::Claimed);
    CHECK(claimed->claimed_by == "sam@example.org");
    CHECK(claimed->created == 10);
    CHECK(store.find("cd34")->state == functional_addresses::State::Closed);
    CHECK(store.list_active().size() == 2);
    CHECK(dump(*db, "fa_inquiries", 6).find("alice") == std::string::npos);
    CHECK(scalar(*db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v1%'") == 0);
    // The claim can still be handed on and released as before.
    CHECK(store.reassign("ab12", "sam@example.org", "kim@example.org", 20));
    CHECK(store.release_claims("kim@example.org", 21) == 1);
    CHECK(store.find("ab12")->state == functional_addresses::State::Open);
}
