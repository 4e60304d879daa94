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

#include "server/storage/database.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/offline_store.hpp"
#include "server/storage/roster_store.hpp"
#include "server/storage/secret_box.hpp"
#include "server/storage/user_store.hpp"

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
        auto db = Database::open(file);
        CHECK(db->schema_version("core") == 1);
        CHECK(db->schema_version("notes") == 0);
        db->migrate("notes", v2);
        CHECK(db->schema_version("notes") == 2);
        db->migrate("notes", v2);  // already there: no step runs again (CREATE would fail)
        db->exec("INSERT INTO notes(body, stamp) VALUES('a', 5)");
    }
    // Re-open: the first two steps would fail if re-run; only the appended third one applies.
    constexpr std::array<std::string_view, 3> v3{
        v2[0], v2[1], "INSERT INTO notes(body, stamp) VALUES('from step 3', 7)"};
    auto db = Database::open(file);
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
    auto db = Database::open(dir / "haven.db");
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
    auto db = Database::open(":memory:");
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
    auto db = Database::open(":memory:");
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
    auto db = Database::open(":memory:");
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
    auto db = Database::open(":memory:");
    auto box = SecretBox::ephemeral();
    UserStore users(*db);
    RosterStore roster(*db);
    OfflineStore offline(*db, box);
    KeyValueStore kv(*db, &box);
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
    for (const char* table : {"roster", "roster_groups", "roster_version", "offline", "kv"}) {
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
    auto db = Database::open(":memory:");
    UserStore users(*db);
    RosterStore roster(*db);
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
    CHECK(scalar(*db, "SELECT count(*) FROM roster_groups") == 0);

    bob.subscription = "maybe";
    CHECK_THROWS_AS(roster.put("alice", bob), StorageError);
    CHECK(roster.get_version("alice") == v2 + 2);              // failed put changed nothing
    CHECK_THROWS_AS(roster.put("nobody", zed), StorageError);  // FK: accounts only
}

TEST_CASE("offline: quota, list order, remove") {
    auto db = Database::open(":memory:");
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
    auto db = Database::open(":memory:");
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
    auto db = Database::open(path);
    auto box = SecretBox::ephemeral();
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    REQUIRE(users.create(make_user("bob")));
    DeferredLimits limits;
    limits.max_messages = 3;
    OfflineStore offline(*db, box, nullptr, limits);
    REQUIRE(offline.push("alice", 1, "<message id='0'/>", 10) == PushResult::Stored);
    db->set_busy_timeout(std::chrono::milliseconds(5));

    auto other = Database::open(path);  // the admin CLI, a backup, sqlite3
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
    auto db = Database::open(path);
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    auto box = SecretBox::ephemeral();
    KeyValueStore kv(*db, &box);
    db->set_busy_timeout(std::chrono::milliseconds(150));
    auto other = Database::open(path);
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
    auto db = Database::open(path);
    auto box = SecretBox::ephemeral();
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    OfflineStore offline(*db, box);
    db->set_busy_timeout(std::chrono::milliseconds(0));
    auto other = Database::open(path);
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

    const auto sealed = first.seal("hello");
    CHECK(sealed.size() == 5 + SecretBox::overhead);
    CHECK(first.seal("hello") != sealed);  // fresh nonce each time
    auto second = SecretBox::load_or_create(key_file);
    CHECK(read_bytes(key_file) == key_bytes);
    CHECK(second.open(sealed) == std::optional<std::string>("hello"));
    CHECK_FALSE(SecretBox::ephemeral().open(sealed));
    auto tampered = sealed;
    tampered.back() ^= 1;
    CHECK_FALSE(second.open(tampered));
    CHECK_FALSE(second.open("short"));

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

TEST_CASE("personal data is ciphertext on disk") {
    TempDir dir;
    const auto file = dir / "haven.db";
    const std::string secret_msg = "PLAINTEXT-OFFLINE-needle-4711";
    const std::string secret_vcard = "PLAINTEXT-VCARD-needle-0815";
    const std::string roster_name = "PLAINTEXT-ROSTER-needle-42";
    auto box = SecretBox::load_or_create(dir / "storage.key");
    {
        auto db = Database::open(file);
        UserStore users(*db);
        REQUIRE(users.create(make_user("alice")));
        REQUIRE(OfflineStore(*db, box).push("alice", 1,
                                            "<message><body>" + secret_msg + "</body></message>",
                                            10) == PushResult::Stored);
        KeyValueStore(*db, &box).put("alice", "vcard", "", secret_vcard);
        // Control: an unencrypted value, proving the scan below sees the real bytes.
        RosterStore(*db).put("alice",
                             RosterItem{"bob@x", roster_name, "none", false, false, {}, ""});
        // Read everything while the data is still (partly) in the WAL file, too.
        std::string bytes = read_bytes(file) + read_bytes(dir / "haven.db-wal");
        CHECK(bytes.find(roster_name) != std::string::npos);
        CHECK(bytes.find(secret_msg) == std::string::npos);
        CHECK(bytes.find(secret_vcard) == std::string::npos);
    }
    const std::string bytes = read_bytes(file);  // checkpointed on close
    CHECK(bytes.find(roster_name) != std::string::npos);
    CHECK(bytes.find(secret_msg) == std::string::npos);
    CHECK(bytes.find(secret_vcard) == std::string::npos);

    auto db = Database::open(file);
    CHECK(OfflineStore(*db, box).list("alice").at(0).payload.find(secret_msg) != std::string::npos);
    CHECK(KeyValueStore(*db, &box).get("alice", "vcard", "") == secret_vcard);
    CHECK_THROWS_AS(KeyValueStore(*db).get("alice", "vcard", ""), StorageError);
    auto other = SecretBox::ephemeral();
    CHECK_THROWS_AS(OfflineStore(*db, other).list("alice"), StorageError);
}

TEST_CASE("kv: put, get, overwrite, list, remove, remove_store") {
    auto db = Database::open(":memory:");
    UserStore users(*db);
    REQUIRE(users.create(make_user("alice")));
    KeyValueStore kv(*db);
    CHECK_FALSE(kv.get("alice", "blocklist", "x@y"));
    kv.put("alice", "blocklist", "mallory@evil.example", "");
    kv.put("alice", "blocklist", "eve@evil.example", "");
    kv.put("alice", "private", "storage:bookmarks", "<storage/>");
    kv.put("alice", "private", "storage:bookmarks", "<storage><conference/></storage>");
    CHECK(kv.get("alice", "private", "storage:bookmarks") == "<storage><conference/></storage>");
    CHECK(kv.get("alice", "blocklist", "eve@evil.example") == "");
    CHECK(kv.list_keys("alice", "blocklist") ==
          std::vector<std::string>{"eve@evil.example", "mallory@evil.example"});
    CHECK(kv.remove("alice", "blocklist", "eve@evil.example"));
    CHECK_FALSE(kv.remove("alice", "blocklist", "eve@evil.example"));
    CHECK(kv.remove_store("alice", "blocklist") == 1);
    CHECK(kv.list_keys("alice", "blocklist").empty());
    CHECK(kv.list_keys("alice", "private").size() == 1);
    CHECK_THROWS_AS(kv.put("nobody", "private", "k", "v"), StorageError);  // FK: accounts only

    // Switching encryption on later: old plaintext rows stay readable, new writes are sealed.
    auto box = SecretBox::ephemeral();
    KeyValueStore sealed(*db, &box);
    CHECK(sealed.get("alice", "private", "storage:bookmarks") ==
          "<storage><conference/></storage>");
    sealed.put("alice", "private", "storage:bookmarks", "<storage/>");
    CHECK(scalar(*db, "SELECT sealed FROM kv WHERE store = 'private'") == 1);
    CHECK(sealed.get("alice", "private", "storage:bookmarks") == "<storage/>");
}

TEST_CASE("data_version notices commits by another connection") {
    TempDir dir;
    auto server = Database::open(dir / "haven.db");
    auto admin = Database::open(dir / "haven.db");  // as the admin CLI would
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
    Database::open(file);  // create the schema before forking
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // No destructors, no checkpoint: the commit exists only in the WAL file.
        auto db = Database::open(file);
        const bool created = UserStore(*db).create(make_user("survivor"));
        ::raise(created ? SIGKILL : SIGABRT);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    auto db = Database::open(file);
    CHECK(UserStore(*db).exists("survivor"));
}
