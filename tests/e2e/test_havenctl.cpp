// Issue #2 command-line contract of havenctl, against the database a running havend uses.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "e2e/harness/client.hpp"
#include "e2e/harness/online.hpp"
#include "e2e/harness/server.hpp"

using namespace haven::test;

TEST_CASE("issue 2: havenctl user add/passwd/role/list/delete") {
    TestServer server;
    server.start();

    auto add = server.run_ctl({"user", "add", "carol@localhost", "--role", "supporter",
                               "--password-stdin"},
                              "first-pass");
    REQUIRE_MESSAGE(add.exit_code == 0, add.err);
    // Accounts default to member; a bare localpart names an account of this server too.
    REQUIRE(server.run_ctl({"user", "add", "dave", "--password-stdin"}, "dave-pass").exit_code == 0);
    auto dup = server.run_ctl({"user", "add", "carol@localhost", "--password-stdin"}, "x");
    CHECK(dup.exit_code != 0);
    CHECK(server.run_ctl({"user", "add", "eve@elsewhere.example", "--password-stdin"}, "x")
              .exit_code != 0);
    CHECK(server.run_ctl({"user", "add", "frank@localhost", "--role", "root", "--password-stdin"},
                         "x")
              .exit_code != 0);
    CHECK(server.run_ctl({"user", "add", "gina@localhost"}, "x").exit_code != 0);  // no stdin flag

    auto list = server.run_ctl({"user", "list"});
    CHECK(list.out.find("carol@localhost supporter") != std::string::npos);
    CHECK(list.out.find("dave@localhost member") != std::string::npos);

    {
        TestClient c(server);
        CHECK(c.connect("carol@localhost", "first-pass"));
    }
    REQUIRE(server.run_ctl({"user", "passwd", "carol@localhost", "--password-stdin"}, "second-pass")
                .exit_code == 0);
    {
        TestClient old_pw(server);
        CHECK_FALSE(old_pw.connect("carol@localhost", "first-pass"));
        TestClient new_pw(server);
        CHECK(new_pw.connect("carol@localhost", "second-pass"));
    }
    REQUIRE(server.run_ctl({"user", "role", "carol@localhost", "admin"}).exit_code == 0);
    CHECK(server.run_ctl({"user", "list"}).out.find("carol@localhost admin") != std::string::npos);
    CHECK(server.run_ctl({"user", "role", "carol@localhost", "boss"}).exit_code != 0);

    // Deleting erases the account and what is stored for it: offline messages are gone too.
    {
        OnlineClient dave(server, "dave", "dave-pass");
        dave.say("carol@localhost", "waiting for you");
        dave.sync();
    }
    REQUIRE(server.run_ctl({"user", "delete", "carol@localhost"}).exit_code == 0);
    CHECK(server.run_ctl({"user", "delete", "carol@localhost"}).exit_code != 0);
    TestClient gone(server);
    CHECK_FALSE(gone.connect("carol@localhost", "second-pass"));
    REQUIRE(server.run_ctl({"user", "add", "carol@localhost", "--password-stdin"}, "third-pass")
                .exit_code == 0);
    TestClient fresh(server);
    REQUIRE(fresh.connect("carol@localhost", "third-pass"));
    fresh.send("<presence/>");
    CHECK(fresh.expect_none([](const Stanza& s) { return s.child_text("body") == "waiting for you"; },
                            std::chrono::milliseconds(800)));
    CHECK(server.stop() == 0);
}

TEST_CASE("issue 11: havenctl checks module options against the schema without linking modules") {
    // havenctl links the config schema only (server/config/schema.hpp), yet refuses what havend
    // refuses: an unknown key in a module's section, a malformed functional-address table.
    TestServer server;
    server.set_config("peersupport.no_such_option", "1");
    auto unknown = server.run_ctl({"user", "list"});
    CHECK(unknown.exit_code != 0);
    CHECK(unknown.err.find("no_such_option") != std::string::npos);
    CHECK(server.check_config().exit_code != 0);

    TestServer fa;
    fa.set_config("functional_addresses.addresses", R"([{jid = "not a jid", staff = []}])");
    auto bad = fa.run_ctl({"user", "list"});
    CHECK(bad.exit_code != 0);
    CHECK(bad.err.find("functional_addresses") != std::string::npos);

    // Module options it knows are accepted, and a [modules] list naming a real module too.
    TestServer ok;
    ok.set_config("offline.quota", "5");
    ok.set_config("modules.enabled", R"(["presence", "roster", "peersupport"])");
    auto fine = ok.run_ctl({"user", "list"});
    CHECK_MESSAGE(fine.exit_code == 0, fine.err);
    ok.set_config("modules.enabled", R"(["presence", "no_such_module"])");
    CHECK(ok.run_ctl({"user", "list"}).exit_code != 0);
}
