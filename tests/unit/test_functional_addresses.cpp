// Unit tests for functional addresses: config parsing and the inquiry store's state changes
// (modules/functional_addresses/README.md).
#include <doctest/doctest.h>

#include <toml++/toml.h>
#include <set>

#include "modules/functional_addresses/address_config.hpp"
#include "modules/functional_addresses/inquiry_store.hpp"
#include "modules/functional_addresses/stanzas.hpp"
#include "server/config/config.hpp"
#include "tests/support/test_box.hpp"

using namespace haven;
using namespace haven::functional_addresses;

namespace {

std::vector<AddressConfig> parse(std::string_view addresses) {
    auto doc = toml::parse("addresses = " + std::string(addresses));
    return parse_addresses(*doc.get("addresses"));
}

std::optional<std::string> error_of(std::string_view addresses) {
    auto doc = toml::parse("addresses = " + std::string(addresses));
    return validate_addresses(*doc.get("addresses"));
}

}  // namespace

TEST_CASE("config: an address with defaults and one with every key") {
    // TOML inline tables stay on one line.
    auto list = parse(
        R"([{jid = "Beratung@Example.org", staff = ["sam@example.org", "SAM@example.org"]},)"
        R"({jid = "trans-group@example.org", name = "Trans group", staff = ["kim@example.org"], )"
        R"(auto_reply_en = "Hi", auto_reply_de = "Hallo", show_sender = "pseudonym", )"
        R"(reply_nick = false}])");
    REQUIRE(list.size() == 2);
    CHECK(list[0].local == "beratung");  // normalised
    CHECK(list[0].domain == "example.org");
    CHECK(list[0].name == "beratung");  // defaults to the localpart
    CHECK(list[0].staff == std::vector<std::string>{"sam@example.org"});  // duplicates collapse
    CHECK(list[0].show_sender == ShowSender::Jid);
    CHECK(list[0].reply_nick);
    CHECK(list[0].auto_reply_en.empty());
    CHECK(list[1].jid() == "trans-group@example.org");
    CHECK(list[1].name == "Trans group");
    CHECK(list[1].auto_reply_de == "Hallo");
    CHECK(list[1].show_sender == ShowSender::Pseudonym);
    CHECK_FALSE(list[1].reply_nick);
}

TEST_CASE("config: malformed addresses are rejected with a message") {
    CHECK_FALSE(error_of(R"([{jid = "a@example.org", staff = ["s@example.org"]}])"));
    CHECK(error_of(R"("a@example.org")"));                                         // not an array
    CHECK(error_of(R"(["a@example.org"])"));                                       // not tables
    CHECK(error_of(R"([{staff = ["s@example.org"]}])"));                           // no jid
    CHECK(error_of(R"([{jid = "example.org", staff = ["s@example.org"]}])"));      // no local
    CHECK(error_of(R"([{jid = "a@example.org/r", staff = ["s@example.org"]}])"));  // resource
    CHECK(error_of(R"([{jid = "a@example.org"}])"));                               // no staff
    CHECK(error_of(R"([{jid = "a@example.org", staff = []}])"));
    CHECK(error_of(R"([{jid = "a@example.org", staff = ["s@other.org"]}])"));  // not local
    CHECK(error_of(R"([{jid = "a@example.org", staff = [1]}])"));
    CHECK(error_of(R"([{jid = "a@example.org", staff = ["s@example.org"], x = 1}])"));
    CHECK(error_of(R"([{jid = "a@example.org", staff = ["s@example.org"], reply_nick = "y"}])"));
    CHECK(error_of(R"([{jid = "a@example.org", staff = ["s@example.org"], show_sender = "x"}])"));
    CHECK(error_of(R"([{jid = "a@example.org", staff = ["s@example.org"]},
                       {jid = "A@example.org", staff = ["s@example.org"]}])"));  // twice
    auto plus = error_of(R"([{jid = "a+b@example.org", staff = ["s@example.org"]}])");
    REQUIRE(plus);
    CHECK(plus->find("'+'") != std::string::npos);
    CHECK(plus->find("entry 1") != std::string::npos);
}

TEST_CASE("config: pseudonyms name staff of the address only") {
    auto list = parse(R"([{jid = "a@example.org", staff = ["sam@example.org"], )"
                      R"(pseudonyms = {"SAM@example.org" = "Sam"}}])");
    REQUIRE(list.size() == 1);
    CHECK(list[0].pseudonyms.at("sam@example.org") == "Sam");  // the key is normalised
    CHECK(error_of(R"([{jid = "a@example.org", staff = ["sam@example.org"], )"
                   R"(pseudonyms = {"kim@example.org" = "Kim"}}])"));  // not staff
    CHECK(error_of(R"([{jid = "a@example.org", staff = ["sam@example.org"], )"
                   R"(pseudonyms = {"sam@example.org" = ""}}])"));  // empty
    CHECK(error_of(R"([{jid = "a@example.org", staff = ["sam@example.org"], )"
                   R"(pseudonyms = ["Sam"]}])"));  // not a table
}

TEST_CASE("store: one active inquiry per sender and address; tokens are [a-z0-9]{4,6}") {
    auto db = storage::Database::open(":memory:", haven::testing::test_box());
    InquiryStore store(*db, haven::testing::test_box());
    auto a = store.create("beratung", "alice@example.org", 100, {});
    CHECK(a.token.size() == 4);
    CHECK(a.token.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") == std::string::npos);
    CHECK(a.state == State::Open);
    auto found = store.active("beratung", "alice@example.org");
    REQUIRE(found);
    CHECK(found->token == a.token);
    CHECK_FALSE(store.active("other", "alice@example.org"));
    // The unique index refuses a second active inquiry for the same pair.
    CHECK_THROWS(store.create("beratung", "alice@example.org", 101, {}));
    // Vetoed tokens are never used.
    std::set<std::string> vetoed;
    auto b = store.create("beratung", "bob@example.org", 102, [&](std::string_view t) {
        if (vetoed.size() < 20) {
            vetoed.insert(std::string(t));
            return true;
        }
        return false;
    });
    CHECK_FALSE(vetoed.contains(b.token));
    CHECK(b.token.size() == 5);  // 16 vetoed 4-character tokens, then longer ones
}

TEST_CASE("store: exactly one claim wins; handover, close and a new inquiry afterwards") {
    auto db = storage::Database::open(":memory:", haven::testing::test_box());
    InquiryStore store(*db, haven::testing::test_box());
    auto i = store.create("beratung", "alice@example.org", 100, {});
    CHECK(store.claim(i.token, "sam@example.org", 101));
    CHECK_FALSE(store.claim(i.token, "kim@example.org", 101));  // the second claim loses
    auto now = store.find(i.token);
    REQUIRE(now);
    CHECK(now->state == State::Claimed);
    CHECK(now->claimed_by == "sam@example.org");

    // Only the holder's handover matches (or an unconditional one, for admins).
    CHECK_FALSE(store.reassign(i.token, "kim@example.org", "lee@example.org", 102));
    CHECK(store.reassign(i.token, "sam@example.org", "kim@example.org", 102));
    CHECK(store.find(i.token)->claimed_by == "kim@example.org");
    CHECK(store.reassign(i.token, "", "lee@example.org", 103));
    CHECK(store.find(i.token)->claimed_by == "lee@example.org");

    CHECK(store.close(i.token, 104));
    CHECK_FALSE(store.close(i.token, 105));
    CHECK_FALSE(store.claim(i.token, "sam@example.org", 105));
    CHECK_FALSE(store.reassign(i.token, "", "sam@example.org", 105));
    CHECK(store.find(i.token)->state == State::Closed);
    CHECK_FALSE(store.active("beratung", "alice@example.org"));

    auto next = store.create("beratung", "alice@example.org", 106, {});
    CHECK(next.token != i.token);
    CHECK(store.list_active().size() == 1);

    // Closed inquiries are purged after the retention time; active ones never.
    CHECK(store.purge_closed(105) == 1);
    CHECK_FALSE(store.find(i.token));
    CHECK(store.purge_closed(1000) == 0);
    CHECK(store.find(next.token));
}

TEST_CASE("store: account deletion forgets a sender's inquiries and releases a holder's") {
    auto db = storage::Database::open(":memory:", haven::testing::test_box());
    InquiryStore store(*db, haven::testing::test_box());
    auto a = store.create("beratung", "alice@example.org", 100, {});
    auto b = store.create("beratung", "bob@example.org", 100, {});
    CHECK(store.claim(b.token, "sam@example.org", 101));
    CHECK(store.remove_sender("alice@example.org") == 1);
    CHECK_FALSE(store.find(a.token));
    CHECK(store.release_claims("sam@example.org", 102) == 1);
    auto open = store.find(b.token);
    REQUIRE(open);
    CHECK(open->state == State::Open);
    CHECK(open->claimed_by.empty());
}

TEST_CASE("payload: only body, thread, chat states and E2EE/OOB data cross an address") {
    using xml::Element;
    Element in("message", "jabber:client");
    in.attr("xml:lang", "de").attr("id", "orig").attr("from", "sam@example.org/r1");
    in.add(Element("body", "jabber:client")).text("Hallo sam@example.org");
    in.add(Element("thread", "jabber:client")).text("t1");
    in.add(Element("nick", "http://jabber.org/protocol/nick")).text("sam@example.org");
    in.add(Element("addresses", "http://jabber.org/protocol/address"));
    in.add(Element("request", "urn:xmpp:receipts"));
    in.add(Element("active", "http://jabber.org/protocol/chatstates"));
    in.add(Element("encrypted", "eu.siacs.conversations.axolotl"));
    auto& oob = in.add(Element("x", "jabber:x:oob"));
    oob.add(Element("url", "jabber:x:oob")).text("https://files.example/sam@example.org/a.png");
    in.add(Element("x", "jabber:x:conference")).attr("jid", "room@muc.example.org");

    Element out("message", "jabber:client");
    copy_payload(in, out, {"sam@example.org"});
    std::vector<std::string> names;
    for (const auto* c : out.children()) {
        names.push_back(c->name() + " " + c->ns());
    }
    CHECK(names == std::vector<std::string>{"body jabber:client", "thread jabber:client",
                                            "active http://jabber.org/protocol/chatstates",
                                            "encrypted eu.siacs.conversations.axolotl"});
    CHECK(out.attr("xml:lang") == "de");
    CHECK(out.attr("id").empty());  // addresses and ids are the caller's
    // The body is the supporter's own words and stays as written.
    CHECK(out.child_text("body") == "Hallo sam@example.org");

    // Without JIDs to hide (towards the staff), the file link crosses too.
    Element to_staff("message", "jabber:client");
    copy_payload(in, to_staff, {});
    CHECK(to_staff.child("x", "jabber:x:oob"));
    CHECK_FALSE(to_staff.child("x", "jabber:x:conference"));
}

TEST_CASE("texts: placeholders are filled, tokens recognised") {
    CHECK(fill("Taken by {staff}; {staff}!", {{"{staff}", "Sam"}}) == "Taken by Sam; Sam!");
    CHECK(fill("{a}{b}", {{"{a}", "{b}"}, {"{b}", "x"}}) == "xx");
    CHECK(trim("  /close \n") == "/close");
    CHECK(is_token("7f3k"));
    CHECK(is_token("abc123"));
    CHECK_FALSE(is_token("abc"));
    CHECK_FALSE(is_token("abcdefg"));
    CHECK_FALSE(is_token("AB12"));
    CHECK_FALSE(is_token("ab-1"));
}
