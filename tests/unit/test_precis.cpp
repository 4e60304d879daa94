// Unit tests for haven::precis: RFC 8265 UsernameCaseMapped and OpaqueString, RFC 7622 parts.
#include "server/xmpp/precis.hpp"

#include "server/auth/precis.hpp"
#include "server/xmpp/jid.hpp"

#include <doctest/doctest.h>

#include <string>

namespace precis = haven::precis;

TEST_CASE("profiles versus XMPP parts: exclusions and lengths belong to RFC 7622") {
    CHECK(precis::username_case_mapped("A@B") == "a@b");  // '@' is ASCII7, so PVALID
    CHECK_FALSE(precis::localpart("A@B"));                // RFC 7622 §3.3.1
    CHECK_FALSE(precis::localpart("a\uFF20b"));           // fullwidth '@' maps to '@' first
    CHECK(precis::localpart("Juliet") == "juliet");

    const std::string long_password(5000, 'p');
    CHECK(precis::opaque_string(long_password) == long_password);  // passwords: no limit
    CHECK_FALSE(precis::resourcepart(long_password));
    CHECK(precis::resourcepart(std::string(1023, 'r')));
    CHECK_FALSE(precis::resourcepart(std::string(1024, 'r')));
    CHECK_FALSE(precis::localpart(std::string(1024, 'l')));

    for (auto* f : {&precis::username_case_mapped, &precis::opaque_string, &precis::localpart,
                    &precis::resourcepart}) {
        CHECK_FALSE(f(""));
        CHECK_FALSE(f("\xC3"));          // truncated UTF-8
        CHECK_FALSE(f("\xC0\xAF"));      // overlong
        CHECK_FALSE(f("\xED\xA0\x80"));  // UTF-8-encoded surrogate
    }
}

TEST_CASE("RFC 8265 §3.3.2: IdentifierClass is checked before case mapping and NFC") {
    // Each of these would become a PVALID letter after toLowerCase or NFC, but the input holds a
    // HasCompat or titlecase code point, which preparation refuses.
    for (const char* bad : {"\u212Aate",   // KELVIN SIGN
                            "\u2126",      // OHM SIGN
                            "\u212B",      // ANGSTROM SIGN
                            "\u1F88",      // Lt: ALPHA WITH PSILI AND PROSGEGRAMMENI
                            "\uF900",      // CJK COMPATIBILITY IDEOGRAPH
                            "\u0958",      // DEVANAGARI LETTER QA (composition exclusion)
                            "a\u0340"}) {  // COMBINING GRAVE TONE MARK
        CAPTURE(bad);
        CHECK_FALSE(precis::username_case_mapped(bad));
    }
    // FreeformClass allows HasCompat code points; OpaqueString only normalises them with NFC.
    CHECK(precis::opaque_string("\u212B") == "\u00C5");
    CHECK(precis::opaque_string("\u212Aate") == "Kate");  // a canonical singleton; case kept
}

TEST_CASE("RFC 8265 §4.2.2: FreeformClass is checked before NFC") {
    // Conjoining jamo are OldHangulJamo (DISALLOWED) even where NFC would compose them.
    CHECK_FALSE(precis::opaque_string("\u1100\u1161"));
    CHECK(precis::opaque_string("\uAC00") == "\uAC00");
    CHECK(precis::opaque_string("a\u3000b") == "a b");         // non-ASCII space → U+0020
    CHECK(precis::opaque_string("Pa\uFF53s") == "Pa\uFF53s");  // no width mapping
}

TEST_CASE("RFC 5892 Appendix A contextual rules apply to both profiles") {
    for (auto* f : {&precis::username_case_mapped, &precis::opaque_string}) {
        CHECK(f("\u0628\u200C\u0628"));        // ZWNJ between dual-joining letters (A.1)
        CHECK(f("\u0915\u094D\u200D\u0937"));  // ZWJ after a virama (A.2)
        CHECK_FALSE(f("a\u200Cb"));
        CHECK_FALSE(f("a\u200Db"));
        CHECK(f("l\u00B7l"));  // MIDDLE DOT (A.3)
        CHECK_FALSE(f("a\u00B7b"));
        CHECK(f("\u0375\u03B1"));  // KERAIA before Greek (A.4)
        CHECK_FALSE(f("\u0375a"));
        CHECK(f("\u05D0\u05F3"));  // GERESH after Hebrew (A.5)
        CHECK(f("\u30A2\u30FB"));  // KATAKANA MIDDLE DOT (A.7)
        CHECK_FALSE(f("a\u30FB"));
        CHECK(f("\u0628\u0661\u0662"));        // one Arabic-Indic digit set (A.8)
        CHECK_FALSE(f("\u0628\u0661\u06F2"));  // mixed sets (A.8/A.9)
    }
}

TEST_CASE("RFC 5893 Bidi Rule for usernames with right-to-left code points") {
    CHECK(precis::username_case_mapped("\u05D0\u05B7"));         // R, then a non-spacing mark
    CHECK(precis::username_case_mapped("\u05D01"));              // R, EN
    CHECK(precis::username_case_mapped("\u0627\u0661"));         // AL, AN
    CHECK_FALSE(precis::username_case_mapped("\u0627\u06611"));  // EN and AN together
    CHECK_FALSE(precis::username_case_mapped("a\u05D0"));        // L first, then R
    CHECK_FALSE(precis::username_case_mapped("1\u05D0"));        // must start with L, R or AL
    CHECK(precis::username_case_mapped("abc1"));                 // LTR only: no rule applies
    CHECK(precis::opaque_string("a\u05D0"));  // OpaqueString has no directionality rule
}

TEST_CASE("ASCII fast paths agree with the full preparation") {
    // Appending a non-ASCII letter forces the ICU path; the ASCII prefix must come out the same.
    for (int c = 0x20; c <= 0x7E; ++c) {
        const std::string ascii(1, static_cast<char>(c));
        CAPTURE(ascii);
        const auto fast_user = precis::username_case_mapped(ascii);
        const auto slow_user = precis::username_case_mapped(ascii + "\u00E9");
        CHECK(fast_user.has_value() == slow_user.has_value());
        if (fast_user && slow_user) {
            CHECK(*slow_user == *fast_user + "\u00E9");
        }
        CHECK(precis::opaque_string(ascii + "\u00E9") == ascii + "\u00E9");
        CHECK(precis::opaque_string(ascii) == ascii);
    }
    CHECK_FALSE(precis::opaque_string("a\x7F"));  // DEL is a control on both paths
    CHECK_FALSE(precis::opaque_string("a\x7F\u00E9"));
}

TEST_CASE("outputs are stable under a second application") {
    for (const char* in : {"\uFF2Aohn", "E\u0301lodie", "\u03A3", "\u0628\u200C\u0628",
                           "fu\u00DFball", "\u0130stanbul"}) {
        CAPTURE(in);
        const auto once = precis::username_case_mapped(in);
        REQUIRE(once);
        CHECK(precis::username_case_mapped(*once) == once);
    }
    for (const char* in : {"\u212B x\u2003y", "A\u030A", "\U0001F600 \u00A0", "\u2163"}) {
        CAPTURE(in);
        const auto once = precis::opaque_string(in);
        REQUIRE(once);
        CHECK(precis::opaque_string(*once) == once);
    }
}

TEST_CASE("SASL usernames and JID localparts are the same function") {
    // They used to be two implementations that disagreed, e.g. SASL mapped KELVIN SIGN to 'k'
    // while Jid refused it, and Jid allowed a ZWNJ that SASL refused.
    for (const char* in : {"User", "\u212Aate", "\u0628\u200C\u0628", "\uFF55ser", "a@b",
                           "J\u00FCrgen", "\u0628\u0661\u06F2", "col\u00B7la"}) {
        CAPTURE(in);
        const auto jid = haven::Jid::make(in, "example.com");
        const auto sasl = haven::auth::prepare_username(in);
        REQUIRE(jid.has_value() == sasl.has_value());
        if (jid) {
            CHECK(jid->local() == *sasl);
        }
    }
}

TEST_CASE("map_for_idna: RFC 5895 §2 mapping ahead of IDNA2008") {
    CHECK(precis::map_for_idna("Example.COM") == "example.com");
    CHECK(precis::map_for_idna("\uFF25X.COM") == "ex.com");
    CHECK(precis::map_for_idna("M\u00DCLLER.de") == "m\u00FCller.de");
    CHECK(precis::map_for_idna("cafe\u0301") == "caf\u00E9");
    CHECK_FALSE(precis::map_for_idna("caf\xC3"));
}
