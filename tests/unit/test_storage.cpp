// Storage layer: migrations, transactions, user/roster/offline/kv stores, encryption at rest.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include <sodium.h>
#include <sqlite3.h>

#include <memory>

#include "server/storage/database.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/offline_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/secret_box.hpp"
#include "server/storage/user_store.hpp"
#include "tests/support/test_box.hpp"

using namespace haven::storage;

namespace {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "haven-store-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::int64_t scalar(Database& db, std::string_view sql) {
    auto& st = db.prepare_cached(sql);
    ScopedReset guard(st);
    REQUIRE(st.step());
    return st.column_int64(0);
}

UserRecord make_user(std::string localpart) {
    UserRecord user;
    user.localpart = std::move(localpart);
    user.sha256 = ScramRecord{std::string("salt\0bytes", 10), 4096, std::string("stored\0key", 10),
                              "server-key"};
    user.created = 1700000000;
    return user;
}

}  // namespace

TEST_CASE("migrations apply once, in order, and survive re-opening") {
    TempDir dir;
    const auto file = dir / "haven.db";
    constexpr std::array<std::string_view, 2> v2{
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)",
        "ALTER TABLE notes ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0",
    };
    {
        auto db = Database::open(file, haven::testing::test_box());
        CHECK(db->schema_version("core") == 2);
        CHECK(db->schema_version("notes") == 0);
        db->migrate("notes", v2);
        CHECK(db->schema_version("notes") == 2);
        db->migrate("notes", v2);  // already there: no step runs again (CREATE would fail)
        db->exec("INSERT INTO notes(body, stamp) VALUES('a', 5)");
    }
    // Re-open: the first two steps would fail if re-run; only the appended third one applies.
    constexpr std::array<std::string_view, 3> v3{
        v2[0], v2[1], "INSERT INTO notes(body, stamp) VALUES('from step 3', 7)"};
    auto db = Database::open(file, haven::testing::test_box());
    CHECK(db->schema_version("notes") == 2);
    db->migrate("notes", v3);
    CHECK(db->schema_version("notes") == 3);
    CHECK(scalar(*db, "SELECT count(*) FROM notes") == 2);
    CHECK(scalar(*db, "SELECT stamp FROM notes WHERE body = 'from step 3'") == 7);

    SUBCASE("a failing step rolls back and keeps the version") {
        constexpr std::array<std::string_view, 4> bad{
            v3[0], v3[1], v3[2], "INSERT INTO notes(body) VALUES('x'); SELECT * FROM missing"};
        CHECK_THROWS_AS(db->migrate("notes", bad), StorageError);
        CHECK(db->schema_version("notes") == 3);
        CHECK(scalar(*db, "SELECT count(*) FROM notes") == 2);
    }
    SUBCASE("an older build refuses a newer database") {
        CHECK_THROWS_AS(db->migrate("notes", std::span(v2)), StorageError);
    }
}

TEST_CASE("pragmas: WAL, foreign keys, private file mode") {
    TempDir dir;
    auto db = Database::open(dir / "haven.db", haven::testing::test_box());
    CHECK(scalar(*db, "PRAGMA foreign_keys") == 1);
    CHECK(scalar(*db, "PRAGMA synchronous") == 1);  // NORMAL
    CHECK(scalar(*db, "PRAGMA busy_timeout") == 2000);
    auto& st = db->prepare_cached("PRAGMA journal_mode");
    ScopedReset guard(st);
    REQUIRE(st.step());
    CHECK(st.column_text(0) == "wal");
    struct stat info {};
    REQUIRE(::stat((dir / "haven.db").c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
}

TEST_CASE("statement binding round-trips text, blobs, empties and NULL") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    db->exec("CREATE TABLE t(a, b, c, d)");
    const std::string blob("\0\xff\x01", 3);
    auto& ins = db->prepare_cached("INSERT INTO t VALUES(?1, ?2, ?3, ?4)");
    ins.bind(1, std::string_view()).bind(2, Blob{blob}).bind(3, 42).bind_null(4);
    CHECK_FALSE(ins.step());
    auto& sel = db->prepare_cached("SELECT a, typeof(a), b, c, d FROM t");
    ScopedReset guard(sel);
    REQUIRE(sel.step());
    CHECK(sel.column_text(0).empty());
    CHECK(sel.column_text(1) == "text");  // empty stays '' rather than NULL
    CHECK(sel.column_blob(2) == blob);
    CHECK(sel.column_int64(3) == 42);
    CHECK(sel.column_is_null(4));
    CHECK_FALSE(sel.step());
    CHECK_THROWS_AS(db->prepare_cached("SELECT 1; SELECT 2"), StorageError);
    CHECK_THROWS_AS(db->exec("NOT SQL"), StorageError);
}

TEST_CASE("transactions roll back unless committed, and nest as savepoints") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    db->exec("CREATE TABLE t(x INTEGER)");
    {
        Transaction tx(*db);
        db->exec("INSERT INTO t VALUES(1)");
    }
    CHECK(scalar(*db, "SELECT count(*) FROM t") == 0);
    try {
        Transaction tx(*db);
        db->exec("INSERT INTO t VALUES(1)");
        throw std::runtime_error("handler failed");
    } catch (const std::runtime_error&) {
    }
    CHECK(scalar(*db, "SELECT count(*) FROM t") == 0);
    {
        Transaction outer(*db);
        db->exec("INSERT INTO t VALUES(1)");
        {
            Transaction inner(*db);
            db->exec("INSERT INTO t VALUES(2)");
        }  // inner rolled back only
        {
            Transaction inner(*db);
            db->exec("INSERT INTO t VALUES(3)");
            inner.commit();
        }
        outer.commit();
    }
    CHECK(scalar(*db, "SELECT count(*) FROM t") == 2);
    CHECK(scalar(*db, "SELECT sum(x) FROM t") == 4);  // rows 1 and 3
}

TEST_CASE("users: create, get, duplicate, update, list, count") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    UserStore users(*db);
    CHECK(users.count() == 0);
    auto alice = make_user("alice");
    CHECK(users.create(alice));
    CHECK_FALSE(users.create(alice));
    CHECK(users.exists("alice"));
    CHECK_FALSE(users.exists("bob"));
    CHECK_FALSE(users.get("bob"));

    auto got = users.get("alice");
    REQUIRE(got);
    CHECK(got->role == "member");
    CHECK(got->created == 1700000000);
    CHECK_FALSE(got->sha1);
    REQUIRE(got->sha256);
    CHECK(got->sha256->salt == alice.sha256->salt);
    CHECK(got->sha256->salt.size() == 10);
    CHECK(got->sha256->stored_key.size() == 10);  // embedded NUL kept
    CHECK(got->sha256->iterations == 4096);

    ScramRecord sha1{"s1", 10000, "k1", "k2"};
    CHECK(users.set_credentials("alice", sha1, std::nullopt));
    got = users.get("alice");
    REQUIRE(got->sha1);
    CHECK(got->sha1->server_key == "k2");
    CHECK_FALSE(got->sha256);
    CHECK_FALSE(users.set_credentials("nobody", sha1, sha1));

    CHECK(users.set_role("alice", "supporter"));
    CHECK_FALSE(users.set_role("nobody", "admin"));
    CHECK(users.create(make_user("bob")));
    auto all = users.list();
    REQUIRE(all.size() == 2);
    CHECK(all[0].localpart == "alice");
    CHECK(all[0].role == "supporter");
    CHECK(all[1].role == "member");
    CHECK(users.count() == 2);
}

TEST_CASE("removing a user erases everything of theirs and nothing of others") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    auto box = SecretBox::ephemeral();
    UserStore users(*db);
    RosterStore roster(*db, haven::testing::test_box());
    OfflineStore offline(*db, box);
    KeyValueStore kv(*db, box);
    for (const char* name : {"alice", "bob"}) {
        REQUIRE(users.create(make_user(name)));
        roster.put(
            name, RosterItem{
                      "carol@example.org", "Carol", "both", false, false, {"Friends", "Team"}, ""});
        REQUIRE(offline.push(name, 1, "<message/>", 10) == PushResult::Stored);
        kv.put(name, "vcard", "", "<vCard/>");
    }
    CHECK(users.remove("alice"));
    CHECK_FALSE(users.remove("alice"));
    for (const char* table : {"roster", "roster_version", "offline", "kv"}) {
        CAPTURE(table);
        const std::string sql =
            std::string("SELECT count(*) FROM ") + table + " WHERE user = 'alice'";
        CHECK(scalar(*db, sql) == 0);
    }
    CHECK(roster.get_all("bob").size() == 1);
    CHECK(offline.count("bob") == 1);
    CHECK(kv.get("bob", "vcard", ""));
    CHECK(users.count() == 1);
}

TEST_CASE("roster: put, get, groups, remove, version bumps") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    UserStore users(*db);
    RosterStore roster(*db, haven::testing::test_box());
    REQUIRE(users.create(make_user("alice")));
    CHECK(roster.get_version("alice") == 0);
    CHECK(roster.get_all("alice").empty());

    RosterItem bob{"bob@example.org", "Bob", "none", true, false, {"Peers", "Peers", "A\nB"}, ""};
    const auto v1 = roster.put("alice", bob);
    CHECK(v1 > 0);
    CHECK(roster.get_version("alice") == v1);
    RosterItem zed{"zed@example.org", "", "from", false, true, {}, "<presence type='subscribe'/>"};
    const auto v2 = roster.put("alice", zed);
    CHECK(v2 == v1 + 1);

    auto got = roster.get("alice", "bob@example.org");
    REQUIRE(got);
    CHECK(got->name == "Bob");
    CHECK(got->ask_out);
    CHECK_FALSE(got->ask_in);
    CHECK(got->groups == std::vector<std::string>{"A\nB", "Peers"});

    bob.subscription = "to";
    bob.ask_out = false;
    bob.groups = {"Team"};
    CHECK(roster.put("alice", bob) == v2 + 1);
    auto all = roster.get_all("alice");
    REQUIRE(all.size() == 2);
    CHECK(all[0].contact == "bob@example.org");
    CHECK(all[0].subscription == "to");
    CHECK(all[0].groups == std::vector<std::string>{"Team"});
    CHECK(all[1].contact == "zed@example.org");
    CHECK(all[1].ask_in);
    CHECK(all[1].groups.empty());
    CHECK(all[1].pending_subscribe == "<presence type='subscribe'/>");

    CHECK(roster.remove("alice", "bob@example.org") == v2 + 2);
    CHECK(roster.remove("alice", "bob@example.org") == 0);
    CHECK(roster.get_version("alice") == v2 + 2);
    CHECK_FALSE(roster.get("alice", "bob@example.org"));
    CHECK(roster.count("alice") == 1);

    bob.subscription = "maybe";
    CHECK_THROWS_AS(roster.put("alice", bob), StorageError);
    CHECK(roster.get_version("alice") == v2 + 2);              // failed put changed nothing
    CHECK_THROWS_AS(roster.put("nobody", zed), StorageError);  // FK: accounts only
}

TEST_CASE("offline: quota, list order, remove") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    auto box = SecretBox::ephemeral();
    UserStore users(*db);
    OfflineStore offline(*db, box);
    REQUIRE(users.create(make_user("alice")));
    REQUIRE(users.create(make_user("bob")));
    CHECK(offline.push("alice", 100, "<message id='1'/>", 3) == PushResult::Stored);
    CHECK(offline.push("alice", 101, "<message id='2'/>", 3) == PushResult::Stored);
    CHECK(offline.push("alice", 102, "", 3) == PushResult::Stored);
    CHECK(offline.push("alice", 103, "<message id='4'/>", 3) == PushResult::Full);
    CHECK(offline.count("alice") == 3);
    CHECK(offline.push("nobody", 100, "<message/>", 3) == PushResult::NoAccount);
    CHECK(offline.push("bob", 100, "<message/>", 0) == PushResult::Full);
    CHECK(offline.push("bob", 100, "<message/>", 3) == PushResult::Stored);

    auto msgs = offline.list("alice");
    REQUIRE(msgs.size() == 3);
    CHECK(msgs[0].payload == "<message id='1'/>");
    CHECK(msgs[0].stamp == 100);
    CHECK(msgs[2].payload.empty());
    CHECK(msgs[0].id < msgs[1].id);

    const auto bob_id = offline.list("bob").at(0).id;
    const std::array<std::int64_t, 3> ids{msgs[0].id, msgs[1].id, bob_id};
    CHECK(offline.remove("alice", ids) == 2);  // bob's id is not alice's to remove
    CHECK(offline.count("alice") == 1);
    CHECK(offline.count("bob") == 1);
    CHECK(offline.push("alice", 104, "<message id='5'/>", 3) == PushResult::Stored);
    CHECK(offline.list("alice").back().id > msgs[2].id);

    CHECK(offline.remove_older_than(103) == 2);
    CHECK(offline.count("alice") == 1);
    CHECK(offline.count("bob") == 0);
}

TEST_CASE("offline: byte quota counts what is stored, per recipient") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    auto box = SecretBox::ephemeral();
    UserStore users(*db);
    OfflineStore offline(*db, box);
    REQUIRE(users.create(make_user("alice")));
    REQUIRE(users.create(make_user("bob")));
    const std::string body(1000, 'x');
    const OfflineQuota quota{100, 2500};
    CHECK(offline.push("alice", 1, body, quota) == PushResult::Stored);
    CHECK(offline.push("alice", 2, body, quota) == PushResult::Stored);
    CHECK(offline.push("alice", 3, body, quota) == PushResult::Full);  // 3 x ~1040 > 2500
    CHECK(offline.count("alice") == 2);
    CHECK(offline.bytes("alice") > 2000);
    CHECK(offline.bytes("alice") <= 2500);
    CHECK(offline.push("bob", 1, body, quota) == PushResult::Stored);  // bob has his own quota
    CHECK(offline.push("bob", 2, std::string(3000, 'y'), quota) == PushResult::Full);
    CHECK(offline.push("alice", 4, "<m/>", quota) == PushResult::Stored);  // small still fits
}

TEST_CASE("offline: a write lock held by another connection queues, never waits") {
    TempDir dir;
    const auto path = dir / "haven.sqlite";
    auto db = Database::open(path, haven::testing::test_box());
    auto box = SecretBox::ephemeral();
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    REQUIRE(users.create(make_user("bob")));
    DeferredLimits limits;
    limits.max_messages = 3;
    OfflineStore offline(*db, box, nullptr, limits);
    REQUIRE(offline.push("alice", 1, "<message id='0'/>", 10) == PushResult::Stored);
    db->set_busy_timeout(std::chrono::milliseconds(5));

    auto other = Database::open(path, haven::testing::test_box());  // the admin CLI, a backup, sqlite3
    other->exec("BEGIN EXCLUSIVE");
    const auto start = std::chrono::steady_clock::now();
    CHECK(offline.push("alice", 2, "<message id='1'/>", 10) == PushResult::Queued);
    CHECK(offline.push("alice", 3, "<message id='2'/>", 10) == PushResult::Queued);
    CHECK(offline.push("nobody", 3, "<message/>", 10) == PushResult::NoAccount);
    CHECK(offline.push("alice", 4, "<message id='x'/>", 3) == PushResult::Full);  // 1 + 2 queued
    CHECK(offline.push("bob", 4, "<message id='b'/>", 10) == PushResult::Queued);
    CHECK(offline.push("bob", 5, "<message id='c'/>", 10) == PushResult::Overloaded);
    CHECK(offline.queued() == 3);
    CHECK(offline.count("alice") == 3);
    CHECK_FALSE(offline.flush());
    // One busy_timeout for the first attempt at most, then no waiting at all.
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500));

    // Delivery at login while still locked: stored, then queued, in order; removal deferred.
    auto msgs = offline.list("alice");
    REQUIRE(msgs.size() == 3);
    CHECK(msgs[0].payload == "<message id='0'/>");
    CHECK(msgs[1].payload == "<message id='1'/>");
    CHECK(msgs[2].payload == "<message id='2'/>");
    std::vector<std::int64_t> ids;
    for (const auto& m : msgs) {
        ids.push_back(m.id);
    }
    CHECK(offline.remove("alice", ids) == 3);
    CHECK(offline.list("alice").empty());  // exactly once, even before the DELETE ran
    CHECK(offline.count("alice") == 0);
    CHECK(offline.queued() == 1);  // bob's

    other->exec("COMMIT");
    CHECK(offline.flush());
    CHECK(offline.queued() == 0);
    CHECK(scalar(*db, "SELECT count(*) FROM offline WHERE user = 'alice'") == 0);
    auto bob = offline.list("bob");
    REQUIRE(bob.size() == 1);
    CHECK(bob[0].payload == "<message id='b'/>");
    CHECK(bob[0].id > 0);
    CHECK(offline.push("alice", 6, "<message id='3'/>", 10) == PushResult::Stored);
}

TEST_CASE("a lock held by another connection costs one busy timeout, then writes fail at once") {
    TempDir dir;
    const auto path = dir / "haven.sqlite";
    auto db = Database::open(path, haven::testing::test_box());
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    auto box = SecretBox::ephemeral();
    KeyValueStore kv(*db, box);
    db->set_busy_timeout(std::chrono::milliseconds(150));
    auto other = Database::open(path, haven::testing::test_box());
    other->exec("BEGIN EXCLUSIVE");
    using clock = std::chrono::steady_clock;
    auto start = clock::now();
    try {
        kv.put("alice", "vcard", "", "<vCard/>");
        FAIL("the write went through a held lock");
    } catch (const StorageError& e) {
        CHECK(e.busy());
    }
    CHECK(clock::now() - start >= std::chrono::milliseconds(100));  // waited once
    start = clock::now();
    for (int i = 0; i < 20; ++i) {
        CHECK_THROWS_AS(kv.put("alice", "vcard", "", "<vCard/>"), StorageError);
    }
    CHECK(clock::now() - start < std::chrono::milliseconds(100));  // then failed at once
    CHECK(kv.get("alice", "vcard", "") == std::nullopt);           // reads still work (WAL)
    other->exec("COMMIT");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the fast-fail period ends
    kv.put("alice", "vcard", "", "<vCard/>");
    CHECK(kv.get("alice", "vcard", "") == std::optional<std::string>("<vCard/>"));
}

TEST_CASE("offline: shutdown flush waits a bounded time, then reports what is left") {
    TempDir dir;
    const auto path = dir / "haven.sqlite";
    auto db = Database::open(path, haven::testing::test_box());
    auto box = SecretBox::ephemeral();
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    OfflineStore offline(*db, box);
    db->set_busy_timeout(std::chrono::milliseconds(0));
    auto other = Database::open(path, haven::testing::test_box());
    other->exec("BEGIN IMMEDIATE");
    REQUIRE(offline.push("alice", 1, "<message/>", 10) == PushResult::Queued);
    const auto start = std::chrono::steady_clock::now();
    CHECK(offline.flush_for_shutdown(std::chrono::milliseconds(100)) == 1);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    other->exec("COMMIT");
    CHECK(offline.flush_for_shutdown(std::chrono::milliseconds(100)) == 0);
    CHECK(offline.count("alice") == 1);
}

TEST_CASE("key file: created 0600, reused, wrong size refused") {
    TempDir dir;
    const auto key_file = dir / "storage.key";
    auto first = SecretBox::load_or_create(key_file);
    struct stat info {};
    REQUIRE(::stat(key_file.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
    CHECK(info.st_size == 32);
    const auto key_bytes = read_bytes(key_file);

    const std::string row = pack({"kv", "alice", "vcard"});
    const auto sealed = first.seal("hello", row);
    CHECK(sealed.size() == 5 + SecretBox::overhead);
    CHECK(first.seal("hello", row) != sealed);  // fresh nonce each time
    auto second = SecretBox::load_or_create(key_file);
    CHECK(read_bytes(key_file) == key_bytes);
    CHECK(second.open(sealed, row) == std::optional<std::string>("hello"));
    CHECK_FALSE(SecretBox::ephemeral().open(sealed, row));
    CHECK_FALSE(second.open(sealed, pack({"kv", "bob", "vcard"})));  // bound to its row
    auto tampered = sealed;
    tampered.back() ^= 1;
    CHECK_FALSE(second.open(tampered, row));
    CHECK_FALSE(second.open("short", row));
    // Lookup hashes: stable for one key, unrelated across keys and across inputs.
    CHECK(first.lookup("bob@x").size() == SecretBox::lookup_size);
    CHECK(first.lookup("bob@x") == second.lookup("bob@x"));
    CHECK(first.lookup("bob@x") != SecretBox::ephemeral().lookup("bob@x"));
    CHECK(first.lookup(pack({"ab", "c"})) != first.lookup(pack({"a", "bc"})));

    std::filesystem::resize_file(key_file, 31);
    CHECK_THROWS_AS(SecretBox::load_or_create(key_file), StorageError);
    CHECK(std::filesystem::file_size(key_file) == 31);  // left alone, never replaced
    std::filesystem::resize_file(key_file, 32);
    std::filesystem::permissions(key_file, std::filesystem::perms::others_read,
                                 std::filesystem::perm_options::add);
    CHECK_THROWS_AS(SecretBox::load_or_create(key_file), StorageError);
    CHECK_THROWS_AS(SecretBox::load_or_create(dir / "missing-dir" / "k"), StorageError);
    // No temporary files left behind.
    CHECK(std::distance(std::filesystem::directory_iterator(dir / ""),
                        std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("pack/unpack: unambiguous, and truncated input is refused") {
    CHECK(pack({"ab", "c"}) != pack({"a", "bc"}));
    CHECK(unpack(pack({"", "x", std::string(300, 'y')})) ==
          std::vector<std::string>{"", "x", std::string(300, 'y')});
    CHECK(unpack("") == std::vector<std::string>{});
    const auto packed = pack({"hello"});
    CHECK_FALSE(unpack(packed.substr(0, packed.size() - 1)));
    CHECK_FALSE(unpack(packed.substr(0, 3)));
    CHECK_FALSE(unpack("\xff\xff\xff\xff"));
}

TEST_CASE("issue 11: personal data and who is in whose roster are ciphertext on disk") {
    TempDir dir;
    const auto file = dir / "haven.db";
    const std::string owner = "owner-in-the-clear-1234";  // control: account names are not sealed
    const std::string needles[] = {
        "needle-offline-4711", "needle-vcard-0815", "needle-roster-name-42",
        "needle-group-17",     "needle-contact",    "needle-pending-23",
        "needle-hidden-key",
    };
    auto box = SecretBox::load_or_create(dir / "storage.key");
    auto scan = [&](const std::string& bytes) {
        CHECK(bytes.find(owner) != std::string::npos);
        for (const auto& n : needles) {
            CAPTURE(n);
            CHECK(bytes.find(n) == std::string::npos);
        }
    };
    {
        auto db = Database::open(file, box);
        UserStore users(*db);
        REQUIRE(users.create(make_user(owner)));
        REQUIRE(OfflineStore(*db, box).push(
                    owner, 1, "<message><body>" + needles[0] + "</body></message>", 10) ==
                PushResult::Stored);
        KeyValueStore(*db, box).put(owner, "vcard", "", needles[1]);
        KeyValueStore(*db, box).put(owner, "roster.hidden", needles[6] + "@x", "1");
        RosterStore(*db, box).put(owner, RosterItem{needles[4] + "@x", needles[2], "none", false,
                                                    true, {needles[3]}, needles[5]});
        // Read everything while the data is still (partly) in the WAL file, too.
        scan(read_bytes(file) + read_bytes(dir / "haven.db-wal"));
    }
    scan(read_bytes(file));  // checkpointed on close

    auto db = Database::open(file, box);
    CHECK(OfflineStore(*db, box).list(owner).at(0).payload.find(needles[0]) != std::string::npos);
    CHECK(KeyValueStore(*db, box).get(owner, "vcard", "") == needles[1]);
    CHECK(KeyValueStore(*db, box).list_keys(owner, "roster.hidden") ==
          std::vector<std::string>{needles[6] + "@x"});
    CHECK(RosterStore(*db, box).get(owner, needles[4] + "@x")->groups ==
          std::vector<std::string>{needles[3]});
    auto other = SecretBox::ephemeral();
    CHECK_FALSE(KeyValueStore(*db, other).get(owner, "vcard", ""));  // another key finds nothing
    CHECK_THROWS_AS(OfflineStore(*db, other).list(owner), StorageError);
}

TEST_CASE("issue 11: a sealed row copied into another account's row does not open") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    const auto& box = haven::testing::test_box();
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    REQUIRE(users.create(make_user("bob")));
    KeyValueStore kv(*db, box);
    RosterStore roster(*db, box);
    OfflineStore offline(*db, box);
    kv.put("alice", "vcard", "", "<vCard>alice</vCard>");
    kv.put("bob", "vcard", "", "<vCard>bob</vCard>");
    roster.put("alice", RosterItem{"carol@x", "Carol", "both", false, false, {}, ""});
    roster.put("bob", RosterItem{"carol@x", "Carol", "none", false, false, {}, ""});
    REQUIRE(offline.push("alice", 1, "<message>for alice</message>", 10) == PushResult::Stored);
    REQUIRE(offline.push("bob", 1, "<message>for bob</message>", 10) == PushResult::Stored);
    // Someone with write access to the file but not the key swaps the ciphertexts.
    db->exec("UPDATE kv SET value = (SELECT value FROM kv WHERE user = 'alice') WHERE user = 'bob'");
    db->exec(
        "UPDATE roster SET item = (SELECT item FROM roster WHERE user = 'alice') "
        "WHERE user = 'bob'");
    db->exec(
        "UPDATE offline SET payload = (SELECT payload FROM offline WHERE user = 'alice') "
        "WHERE user = 'bob'");
    CHECK_THROWS_AS(kv.get("bob", "vcard", ""), StorageError);
    CHECK_THROWS_AS(roster.get("bob", "carol@x"), StorageError);
    CHECK_THROWS_AS(offline.list("bob"), StorageError);
    CHECK(kv.get("alice", "vcard", "") == "<vCard>alice</vCard>");
    CHECK(roster.get("alice", "carol@x")->subscription == "both");
}

// A file as the builds before schema "core" 2 wrote it: roster and key-value rows in the
// clear, offline and sealed key-value rows in the old crypto_secretbox format.
TEST_CASE("issue 11: the migration seals an existing database and leaves no plaintext") {
    TempDir dir;
    const auto file = dir / "haven.db";
    const auto key_file = dir / "storage.key";
    auto box = SecretBox::load_or_create(key_file);
    const std::string key = read_bytes(key_file);
    auto legacy_seal = [&](std::string_view plain) {
        std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain.size(),
                        '\0');
        auto* nonce = reinterpret_cast<unsigned char*>(out.data());
        randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
        crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES,
                              reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                              nonce, reinterpret_cast<const unsigned char*>(key.data()));
        return out;
    };
    {
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open(file.c_str(), &raw) == SQLITE_OK);
        std::unique_ptr<sqlite3, decltype(&sqlite3_close)> handle(raw, &sqlite3_close);
        auto exec = [&](const std::string& sql) {
            REQUIRE(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
        };
        exec(R"sql(
            CREATE TABLE schema_version(component TEXT PRIMARY KEY, version INTEGER NOT NULL);
            INSERT INTO schema_version VALUES('core', 1);
            CREATE TABLE accounts(localpart TEXT PRIMARY KEY NOT NULL,
              role TEXT NOT NULL DEFAULT 'member', sha1_salt BLOB, sha1_iter INTEGER,
              sha1_stored BLOB, sha1_server BLOB, sha256_salt BLOB, sha256_iter INTEGER,
              sha256_stored BLOB, sha256_server BLOB, created INTEGER NOT NULL);
            CREATE TABLE roster(user TEXT NOT NULL REFERENCES accounts(localpart)
              ON DELETE CASCADE, contact TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
              subscription TEXT NOT NULL DEFAULT 'none', ask_out INTEGER NOT NULL DEFAULT 0,
              ask_in INTEGER NOT NULL DEFAULT 0, pending_subscribe TEXT NOT NULL DEFAULT '',
              PRIMARY KEY(user, contact)) WITHOUT ROWID;
            CREATE TABLE roster_groups(user TEXT NOT NULL, contact TEXT NOT NULL,
              grp TEXT NOT NULL, PRIMARY KEY(user, contact, grp),
              FOREIGN KEY(user, contact) REFERENCES roster(user, contact) ON DELETE CASCADE)
              WITHOUT ROWID;
            CREATE TABLE roster_version(user TEXT PRIMARY KEY NOT NULL
              REFERENCES accounts(localpart) ON DELETE CASCADE, version INTEGER NOT NULL)
              WITHOUT ROWID;
            CREATE TABLE offline(id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL
              REFERENCES accounts(localpart) ON DELETE CASCADE, stamp INTEGER NOT NULL,
              payload BLOB NOT NULL);
            CREATE TABLE kv(user TEXT NOT NULL REFERENCES accounts(localpart)
              ON DELETE CASCADE, store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
              sealed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(user, store, key)) WITHOUT ROWID;
            INSERT INTO accounts(localpart, created) VALUES('alice', 1), ('bob', 1);
            INSERT INTO roster VALUES('alice', 'needle-contact@x', 'needle-name', 'both', 0, 1,
                                      'needle-pending');
            INSERT INTO roster_groups VALUES('alice', 'needle-contact@x', 'needle-group-b'),
                                            ('alice', 'needle-contact@x', 'needle-group-a');
            INSERT INTO kv VALUES('alice', 'roster.hidden', 'needle-hidden@x', '1', 0);
        )sql");
        sqlite3_stmt* st = nullptr;
        REQUIRE(sqlite3_prepare_v2(raw, "INSERT INTO kv VALUES('bob', 'vcard', '', ?1, 1)", -1,
                                   &st, nullptr) == SQLITE_OK);
        const auto vcard = legacy_seal("needle-vcard");
        sqlite3_bind_blob(st, 1, vcard.data(), static_cast<int>(vcard.size()), SQLITE_TRANSIENT);
        CHECK(sqlite3_step(st) == SQLITE_DONE);
        sqlite3_finalize(st);
        REQUIRE(sqlite3_prepare_v2(raw, "INSERT INTO offline(user, stamp, payload) "
                                        "VALUES('bob', 7, ?1)",
                                   -1, &st, nullptr) == SQLITE_OK);
        const auto message = legacy_seal("<message>needle-offline</message>");
        sqlite3_bind_blob(st, 1, message.data(), static_cast<int>(message.size()),
                          SQLITE_TRANSIENT);
        CHECK(sqlite3_step(st) == SQLITE_DONE);
        sqlite3_finalize(st);
    }
    REQUIRE(read_bytes(file).find("needle-contact") != std::string::npos);  // the fixture works

    // A wrong key file stops the migration before anything is converted or lost.
    CHECK_THROWS_AS(Database::open(file, SecretBox::ephemeral()), StorageError);
    {
        auto db = Database::open(file, box);
        CHECK(db->schema_version("core") == 2);
        auto item = RosterStore(*db, box).get("alice", "needle-contact@x");
        REQUIRE(item);
        CHECK(item->name == "needle-name");
        CHECK(item->subscription == "both");
        CHECK(item->ask_in);
        CHECK(item->pending_subscribe == "needle-pending");
        CHECK(item->groups == std::vector<std::string>{"needle-group-a", "needle-group-b"});
        KeyValueStore kv(*db, box);
        CHECK(kv.get("alice", "roster.hidden", "needle-hidden@x") == "1");
        CHECK(kv.get("bob", "vcard", "") == "needle-vcard");
        auto offline = OfflineStore(*db, box).list("bob");
        REQUIRE(offline.size() == 1);
        CHECK(offline[0].stamp == 7);
        CHECK(offline[0].payload == "<message>needle-offline</message>");
        CHECK(scalar(*db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v1'") == 0);
    }
    // VACUUM after the conversion: the old rows are not left in free pages or the WAL.
    const std::string bytes = read_bytes(file) + read_bytes(dir / "haven.db-wal");
    CHECK(bytes.find("alice") != std::string::npos);
    for (const char* needle : {"needle-contact", "needle-name", "needle-pending", "needle-group",
                               "needle-hidden"}) {
        CAPTURE(needle);
        CHECK(bytes.find(needle) == std::string::npos);
    }
}

TEST_CASE("kv: put, get, overwrite, list, remove, remove_store") {
    auto db = Database::open(":memory:", haven::testing::test_box());
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    KeyValueStore kv(*db, haven::testing::test_box());
    CHECK_FALSE(kv.get("alice", "blocklist", "x@y"));
    kv.put("alice", "blocklist", "mallory@evil.example", "");
    kv.put("alice", "blocklist", "eve@evil.example", "");
    kv.put("alice", "private", "storage:bookmarks", "<storage/>");
    kv.put("alice", "private", "storage:bookmarks", "<storage><conference/></storage>");
    CHECK(kv.get("alice", "private", "storage:bookmarks") == "<storage><conference/></storage>");
    CHECK(kv.get("alice", "blocklist", "eve@evil.example") == "");
    CHECK(kv.list_keys("alice", "blocklist") ==
          std::vector<std::string>{"eve@evil.example", "mallory@evil.example"});
    CHECK(kv.count("alice", "blocklist") == 2);
    CHECK(kv.remove("alice", "blocklist", "eve@evil.example"));
    CHECK_FALSE(kv.remove("alice", "blocklist", "eve@evil.example"));
    CHECK(kv.remove_store("alice", "blocklist") == 1);
    CHECK(kv.list_keys("alice", "blocklist").empty());
    CHECK(kv.list_keys("alice", "private").size() == 1);
    CHECK_THROWS_AS(kv.put("nobody", "private", "k", "v"), StorageError);  // FK: accounts only
}

TEST_CASE("data_version notices commits by another connection") {
    TempDir dir;
    auto server = Database::open(dir / "haven.db", haven::testing::test_box());
    auto admin = Database::open(dir / "haven.db", haven::testing::test_box());  // as the admin CLI would
    const auto before = server->data_version();
    CHECK(server->data_version() == before);
    UserStore(*server).create(make_user("own"));
    CHECK(server->data_version() == before);  // own commits don't count
    REQUIRE(UserStore(*admin).create(make_user("alice")));
    const auto after = server->data_version();
    CHECK(after != before);
    CHECK(UserStore(*server).exists("alice"));
    CHECK(server->data_version() == after);
}

TEST_CASE("a commit survives kill -9 of the process (WAL, synchronous=NORMAL)") {
    TempDir dir;
    const auto file = dir / "haven.db";
    Database::open(file, haven::testing::test_box());  // create the schema before forking
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // No destructors, no checkpoint: the commit exists only in the WAL file.
        auto db = Database::open(file, haven::testing::test_box());
        const bool created = UserStore(*db).create(make_user("survivor"));
        ::raise(created ? SIGKILL : SIGABRT);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    auto db = Database::open(file, haven::testing::test_box());
    CHECK(UserStore(*db).exists("survivor"));
}
