// Unit tests for haven::Jid: RFC 7622 §3.5 examples, PRECIS/IDNA normalisation, hostile input.
#include "server/xmpp/jid.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <unordered_set>
#include <vector>

using haven::Jid;

namespace {

std::string norm(std::string_view s) {
    auto j = Jid::parse(s);
    return j ? j->str() : std::string("<invalid>");
}

bool valid(std::string_view s) { return Jid::parse(s).has_value(); }

}  // namespace

TEST_CASE("RFC 7622 §3.5.1: valid addresses") {
    struct Case {
        const char* in;
        const char* local;
        const char* domain;
        const char* resource;
    };
    const Case cases[] = {
        {"juliet@example.com", "juliet", "example.com", ""},
        {"juliet@example.com/foo", "juliet", "example.com", "foo"},
        {"juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
        {"juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
        {"foo\\20bar@example.com", "foo\\20bar", "example.com", ""},
        {"fussball@example.com", "fussball", "example.com", ""},
        {"fu\u00DFball@example.com", "fu\u00DFball", "example.com", ""},
        {"\u03C0@example.com", "\u03C0", "example.com", ""},
        {"\u03A3@example.com/foo", "\u03C3", "example.com", "foo"},
        {"\u03C3@example.com/foo", "\u03C3", "example.com", "foo"},
        {"\u03C2@example.com/foo", "\u03C2", "example.com", "foo"},
        {"king@example.com/\u265A", "king", "example.com", "\u265A"},
        {"example.com", "", "example.com", ""},
        {"example.com/foobar", "", "example.com", "foobar"},
        {"a.example.com/b@example.net", "", "a.example.com", "b@example.net"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.in);
        auto j = Jid::parse(c.in);
        REQUIRE(j);
        CHECK(j->local() == c.local);
        CHECK(j->domain() == c.domain);
        CHECK(j->resource() == c.resource);
    }
    // ß is not case-folded to "ss" (RFC 8265 uses toLowerCase, not case folding), and final
    // sigma stays distinct from sigma.
    CHECK(*Jid::parse("fussball@example.com") != *Jid::parse("fu\u00DFball@example.com"));
    CHECK(*Jid::parse("\u03C3@example.com") != *Jid::parse("\u03C2@example.com"));
    CHECK(*Jid::parse("\u03A3@example.com") == *Jid::parse("\u03C3@example.com"));
}

TEST_CASE("RFC 7622 §3.5.2: invalid addresses") {
    CHECK_FALSE(valid("\"juliet\"@example.com"));  // §3.3.1 excludes U+0022
    CHECK_FALSE(valid("foo bar@example.com"));     // spaces are not in IdentifierClass
    CHECK_FALSE(valid("@example.com/"));           // empty localpart and resourcepart
    CHECK_FALSE(valid("henry\u2163@example.com"));  // ROMAN NUMERAL FOUR: HasCompat
    CHECK_FALSE(valid("\u265A@example.com"));       // BLACK CHESS KING: a symbol
    CHECK_FALSE(valid("juliet@"));                  // empty domainpart
    CHECK_FALSE(valid("/foobar"));                  // empty domainpart
}

TEST_CASE("RFC 7622 §3.5.2 lists a leading space in the resourcepart, but OpaqueString allows it") {
    // The example list calls "juliet@example.com/ foo" invalid, yet §3.4 makes the resourcepart an
    // OpaqueString whose FreeformClass allows U+0020 anywhere, and no rule forbids a leading one.
    // Refusing it would drop stanzas other servers consider addressable, so we follow the rules.
    auto j = Jid::parse("juliet@example.com/ foo");
    REQUIRE(j);
    CHECK(j->resource() == " foo");
}

TEST_CASE("case mapping and preservation") {
    CHECK(norm("JULIET@Example.COM") == "juliet@example.com");
    CHECK(norm("JULIET@Example.COM/Balcony") == "juliet@example.com/Balcony");
    CHECK(norm("\u00C9LODIE@example.com") == "\u00E9lodie@example.com");
    CHECK(norm("juliet@example.com/R\u00C9SOURCE") == "juliet@example.com/R\u00C9SOURCE");
}

TEST_CASE("localpart: width mapping, NFC, exclusions") {
    // Fullwidth letters map to ASCII (RFC 8265 §3.3.2 width mapping), then lower-case.
    CHECK(norm("\uFF2A\uFF55\uFF4C\uFF49\uFF45\uFF54@example.com") == "juliet@example.com");
    // Decomposed e + COMBINING ACUTE composes to U+00E9.
    CHECK(norm("e\u0301lodie@example.com") == "\u00E9lodie@example.com");
    // A fullwidth commercial at maps to '@', which §3.3.1 then excludes.
    CHECK_FALSE(valid("a\uFF20b@example.com"));
    for (const char* bad : {"a&b@example.com", "a'b@example.com", "a:b@example.com",
                            "a<b@example.com", "a>b@example.com", "a\tb@example.com"}) {
        CAPTURE(bad);
        CHECK_FALSE(valid(bad));
    }
    CHECK_FALSE(valid("a@b@example.com"));             // the second '@' lands in the domain
    CHECK_FALSE(valid("\u212Aelvin@example.com"));     // KELVIN SIGN: HasCompat, not mapped
    CHECK_FALSE(valid("a\u00A0b@example.com"));        // NBSP is a space
    CHECK_FALSE(valid("a\u200Bb@example.com"));        // ZERO WIDTH SPACE: ignorable
    CHECK_FALSE(valid("\xEE\x80\x80@example.com"));    // U+E000: private use
    CHECK(valid("\u4E2D\u6587@example.com"));          // Han letters are fine
    CHECK(valid("\u05D0\u05D1@example.com"));          // right-to-left, Bidi rule satisfied
    CHECK_FALSE(valid("\u05D0a@example.com"));         // mixed direction breaks the Bidi rule
    CHECK(valid("col\u00B7la@example.com"));           // MIDDLE DOT between two 'l' (RFC 5892 A.3)
    CHECK_FALSE(valid("co\u00B7la@example.com"));
}

TEST_CASE("localpart: RFC 5892 contextual rules and RFC 5893 Bidi rule") {
    CHECK(valid("\u0915\u094D\u200C\u0937@example.com"));  // ZWNJ after a virama (A.1)
    CHECK(valid("\u0628\u200C\u0628@example.com"));        // ZWNJ between joining letters
    CHECK_FALSE(valid("a\u200Cb@example.com"));              // ZWNJ with no reason to exist
    CHECK_FALSE(valid("a\u200Db@example.com"));              // ZWJ without a virama (A.2)
    CHECK(valid("\u30A2\u30FB\u30A2@example.com"));        // KATAKANA MIDDLE DOT (A.7)
    CHECK_FALSE(valid("a\u30FBb@example.com"));
    CHECK(valid("\u0628\u0661@example.com"));               // Arabic-Indic digit (A.8)
    CHECK_FALSE(valid("\u0628\u0661\u06F1@example.com"));  // mixed digit sets (A.8/A.9)
    CHECK_FALSE(valid("\u0661\u0662@example.com"));         // Bidi: must start with L, R or AL
}

TEST_CASE("resourcepart: OpaqueString") {
    // Non-ASCII spaces map to U+0020 and NFC applies.
    CHECK(norm("juliet@example.com/a\u00A0b") == "juliet@example.com/a b");
    CHECK(norm("juliet@example.com/e\u0301") == "juliet@example.com/\u00E9");
    CHECK(norm("juliet@example.com/a/b") == "juliet@example.com/a/b");  // first '/' only
    CHECK(norm("juliet@example.com/\u2163") == "juliet@example.com/\u2163");  // HasCompat: ok
    CHECK_FALSE(valid("juliet@example.com/a\tb"));       // control
    CHECK_FALSE(valid("juliet@example.com/a\x7F"));      // DEL is a control
    CHECK_FALSE(valid("juliet@example.com/a\u200Bb"));   // ignorable
    CHECK_FALSE(valid("juliet@example.com/\u2028"));     // LINE SEPARATOR
    CHECK(valid("juliet@example.com/\U0001F600"));       // emoji are symbols: allowed
    // VARIATION SELECTOR-16 is Default_Ignorable, which FreeformClass disallows (RFC 8264 §9).
    CHECK_FALSE(valid("juliet@example.com/\u2764\uFE0F"));
    CHECK_FALSE(valid(std::string_view("juliet@example.com/a\0b", 22)));
}

TEST_CASE("domainpart: trailing dot, IP literals, IDNs") {
    CHECK(norm("juliet@example.com.") == "juliet@example.com");
    CHECK(norm("Example.COM./r") == "example.com/r");
    CHECK_FALSE(valid("example.com.."));
    CHECK_FALSE(valid("."));
    CHECK_FALSE(valid("juliet@./r"));

    CHECK(norm("juliet@[::1]/r") == "juliet@[::1]/r");
    CHECK(norm("[2001:DB8:0:0::1]") == "[2001:db8::1]");
    CHECK_FALSE(valid("[::1"));
    CHECK_FALSE(valid("[example.com]"));
    CHECK_FALSE(valid("[]"));
    CHECK(norm("juliet@192.0.2.1") == "juliet@192.0.2.1");
    CHECK_FALSE(valid("192.0.2.256"));
    CHECK_FALSE(valid("1.2.3"));

    // IDNs are stored as lower-case U-labels; the A-label spelling is the same domain.
    CHECK(norm("M\u00DCLLER.de") == "m\u00FCller.de");
    CHECK(norm("xn--mller-kva.de") == "m\u00FCller.de");
    CHECK(norm("XN--MLLER-KVA.DE") == "m\u00FCller.de");
    CHECK(*Jid::parse("a@xn--mller-kva.de") == *Jid::parse("a@m\u00FCller.de"));
    CHECK(norm("\uFF45\uFF58\uFF41\uFF4D\uFF50\uFF4C\uFF45.com") == "example.com");  // fullwidth
    CHECK_FALSE(valid("xn--garbage-.de"));  // bad punycode
    CHECK_FALSE(valid("\u265A.com"));       // symbols are not IDNA2008 PVALID
    CHECK_FALSE(valid("caf\u00E9..com"));   // empty label on the IDN path

    CHECK(valid("conference_1.example.com"));
    for (const char* bad : {"exa mple.com", "example.com:5222", "exa<mple.com", "-example.com",
                            "example-.com", "a..b", "exa\"mple.com"}) {
        CAPTURE(bad);
        CHECK_FALSE(valid(bad));
    }
}

TEST_CASE("length limits: 1..1023 octets per part, 63 per DNS label") {
    const std::string l1023(1023, 'a');
    const std::string l1024(1024, 'a');
    CHECK(valid(l1023 + "@example.com"));
    CHECK_FALSE(valid(l1024 + "@example.com"));
    CHECK(valid("example.com/" + l1023));
    CHECK_FALSE(valid("example.com/" + l1024));

    CHECK(valid(std::string(63, 'a') + ".com"));
    CHECK_FALSE(valid(std::string(64, 'a') + ".com"));
    std::string long_domain;
    while (long_domain.size() < 1100) {
        long_domain += std::string(60, 'b') + ".";
    }
    long_domain += "com";
    CHECK_FALSE(valid(long_domain));

    // 2-octet letters: 511 of them fit (1022 octets), 512 do not (1024).
    std::string pi511;
    for (int i = 0; i < 511; ++i) {
        pi511 += "\u03C0";
    }
    CHECK(valid(pi511 + "@example.com"));
    CHECK_FALSE(valid(pi511 + "\u03C0@example.com"));

    // A huge hostile input is refused without working through it.
    CHECK_FALSE(valid(std::string(1 << 20, 'a')));
    CHECK_FALSE(valid(""));
}

TEST_CASE("invalid UTF-8 is refused in every part") {
    for (const char* bad : {"\xC3@example.com", "a@exa\xFFmple.com", "a@example.com/\xC0\xAF",
                            "\xED\xA0\x80@example.com", "a@example.com/\xF4\x90\x80\x80",
                            "a@example.com/\xE2\x82"}) {
        CAPTURE(bad);
        CHECK_FALSE(valid(bad));
    }
}

TEST_CASE("str() round-trips to an equal Jid") {
    for (const char* in :
         {"JULIET@Example.COM/Balcony", "\u03A3@example.com/foo", "xn--mller-kva.de",
          "\uFF2A@\uFF45\uFF58.com/a\u00A0b", "[2001:DB8::1]/x", "e\u0301@example.com."}) {
        CAPTURE(in);
        auto j = Jid::parse(in);
        REQUIRE(j);
        auto again = Jid::parse(j->str());
        REQUIRE(again);
        CHECK(*again == *j);
        CHECK(again->str() == j->str());
    }
}

TEST_CASE("make, bare, with_resource, predicates") {
    Jid empty;
    CHECK(empty.empty());
    CHECK(empty.str().empty());
    CHECK_FALSE(empty.with_resource("r"));

    auto full = Jid::make("Juliet", "Example.com", "Balcony");
    REQUIRE(full);
    CHECK(full->str() == "juliet@example.com/Balcony");
    CHECK(full->bare_str() == "juliet@example.com");
    CHECK_FALSE(full->is_bare());
    CHECK_FALSE(full->is_domain());

    const Jid bare = full->bare();
    CHECK(bare.str() == "juliet@example.com");
    CHECK(bare.is_bare());
    CHECK_FALSE(bare.is_domain());
    CHECK(bare == *Jid::parse("juliet@example.com"));

    auto other = bare.with_resource("Orchard");
    REQUIRE(other);
    CHECK(other->str() == "juliet@example.com/Orchard");
    CHECK_FALSE(bare.with_resource(""));
    CHECK_FALSE(bare.with_resource("a\tb"));

    auto domain = Jid::make("", "example.com");
    REQUIRE(domain);
    CHECK(domain->is_domain());
    CHECK(domain->is_bare());

    CHECK_FALSE(Jid::make("a@b", "example.com"));  // make takes unescaped parts, not a JID
    CHECK_FALSE(Jid::make("a", ""));
    CHECK_FALSE(Jid::make("a", "example.com/x"));
}

TEST_CASE("equality, ordering and hashing use the normalised form") {
    const Jid a = *Jid::parse("JULIET@Example.com/r");
    const Jid b = *Jid::parse("juliet@example.com./r");
    CHECK(a == b);
    CHECK(std::hash<Jid>{}(a) == std::hash<Jid>{}(b));
    CHECK(a != *Jid::parse("juliet@example.com/R"));  // resources are case-sensitive

    std::unordered_set<Jid> set{a, b, *Jid::parse("romeo@example.com")};
    CHECK(set.size() == 2);

    // Ordered by domain, then localpart, then resource.
    std::set<Jid> ordered{*Jid::parse("b@a.example"), *Jid::parse("a@b.example"),
                          *Jid::parse("a.example"), *Jid::parse("b@a.example/x")};
    std::vector<std::string> got;
    for (const auto& j : ordered) {
        got.push_back(j.str());
    }
    CHECK(got == std::vector<std::string>{"a.example", "b@a.example", "b@a.example/x",
                                          "a@b.example"});
    CHECK((Jid() < *Jid::parse("a.example")));
}
