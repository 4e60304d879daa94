// Unit tests for the XML layer: Element DOM, the serializer, and the stream parser's hostile-input
// handling (RFC 6120 §11 restricted XML, §4.9.3 stream errors).
#include <doctest/doctest.h>

#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/xml/element.hpp"
#include "server/xml/stream_parser.hpp"

using namespace haven::xml;

namespace {

const std::string stream_open =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0' "
    "xml:lang='en'>";

struct Recorder : StreamHandler {
    int opens = 0;
    int closes = 0;
    StreamHeader header;
    std::vector<std::string> stanzas;  // serialised as they would be inside the stream
    std::vector<Element> elements;
    std::size_t stop_after = std::numeric_limits<std::size_t>::max();
    bool throw_on_stanza = false;

    void on_stream_open(StreamHeader&& h) override {
        ++opens;
        header = std::move(h);
    }
    bool on_stanza(Element&& e) override {
        if (throw_on_stanza) {
            throw std::runtime_error("handler failure");
        }
        stanzas.push_back(serialize(e, header.default_ns));
        elements.push_back(std::move(e));
        return stanzas.size() < stop_after;
    }
    void on_stream_close() override { ++closes; }
};

ParseError parse_whole(std::string_view input, Recorder& rec, ParserLimits limits = {}) {
    StreamParser parser(rec, limits);
    return parser.feed(input);
}

ParseError parse_bytewise(std::string_view input, Recorder& rec, ParserLimits limits = {}) {
    StreamParser parser(rec, limits);
    ParseError err = ParseError::None;
    for (char c : input) {
        err = parser.feed(std::string_view(&c, 1));
        if (err != ParseError::None) {
            break;
        }
    }
    return err;
}

// Hostile input must fail the same way whole and byte by byte, and deliver nothing afterwards.
void check_rejected(const std::string& input, ParseError expected, ParserLimits limits = {}) {
    CAPTURE(input);
    Recorder whole;
    StreamParser parser(whole, limits);
    CHECK(parser.feed(input) == expected);
    CHECK_FALSE(parser.error_text().empty());
    const auto delivered = whole.stanzas.size();
    // Once failed, more (valid) input changes nothing and fires no callbacks.
    CHECK(parser.feed("<message to='a@b'/>") == expected);
    CHECK(parser.feed("</stream:stream>") == expected);
    CHECK(whole.stanzas.size() == delivered);
    CHECK(whole.closes == 0);

    Recorder bytewise;
    CHECK(parse_bytewise(input, bytewise, limits) == expected);
    CHECK(bytewise.stanzas == whole.stanzas);
}

const std::string valid_stream =
    stream_open +
    "\n  <message to='juliet@example.com/balcony' from='romeo@example.net/orchard' "
    "type='chat' id='m1'><body>Art thou not Romeo, &amp; a Montague? &lt;3 &#x263A; "
    "\xE2\x98\x83</body><thread>t1</thread></message> \n"
    "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
    "<presence><show>away</show><status xml:lang='de'>Weg</status>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>"
    "<message xmlns:x='urn:x' x:attr=\"q'uote\"><x:payload><![CDATA[<raw> & stuff]]></x:payload>"
    "</message>"
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "</stream:features>"
    " </stream:stream>";

}  // namespace

namespace {

// <a><a>…</a></a>: an element nested `depth` deep.
std::string nested(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) {
        s += "<a>";
    }
    for (int i = 0; i < depth; ++i) {
        s += "</a>";
    }
    return s;
}

}  // namespace

TEST_CASE("element: builder, queries and deep copy") {
    Element msg("message", "jabber:client");
    msg.attr("to", "a@b").attr("type", "chat");
    msg.with(Element("body").text("hel").text("lo"));
    msg.add(Element("x", "urn:x")).attr("k", "v").add(Element("y", "urn:x"));
    msg.with(Element("body", "urn:other").text("second"));

    CHECK(msg.attr("to") == "a@b");
    CHECK(msg.attr("missing").empty());
    CHECK(msg.has_attr("type"));
    msg.attr("type", "normal");
    CHECK(msg.attrs().size() == 2);
    CHECK(msg.attr("type") == "normal");
    msg.remove_attr("type");
    CHECK_FALSE(msg.has_attr("type"));

    CHECK(msg.child_text("body") == "hello");
    REQUIRE(msg.child("body")->nodes().size() == 1);  // adjacent text merged
    CHECK(msg.child_text("body", "urn:other") == "second");
    CHECK(msg.child("x", "urn:nope") == nullptr);
    REQUIRE(msg.child_ns("urn:x") != nullptr);
    CHECK(msg.child_ns("urn:x")->attr("k") == "v");
    CHECK(msg.first_child()->name() == "body");
    CHECK(msg.children("body").size() == 2);
    CHECK(msg.children({}, "urn:x").size() == 1);
    CHECK(msg.children().size() == 3);

    Element copy = msg;
    copy.child("x")->attr("k", "changed");
    copy.child("x")->child("y")->text("deep");
    CHECK(msg.child("x")->attr("k") == "v");
    CHECK(msg.child("x")->child("y")->text().empty());
    CHECK(serialize(copy) != serialize(msg));

    Element assigned;
    assigned = msg;
    CHECK(serialize(assigned) == serialize(msg));
    assigned = assigned;  // self-assignment keeps the tree
    CHECK(serialize(assigned) == serialize(msg));

    CHECK(msg.remove_children("body") == 2);
    CHECK(msg.children().size() == 1);
    msg.clear_children();
    CHECK(msg.nodes().empty());
}

TEST_CASE("serializer: namespaces, prefixes and escaping") {
    SUBCASE("default namespace only where it changes") {
        Element iq("iq", "jabber:client");
        iq.attr("type", "result");
        iq.add(Element("query", "jabber:iq:roster")).add(Element("item", "jabber:iq:roster"));
        CHECK(serialize(iq, "jabber:client") ==
              "<iq type='result'><query xmlns='jabber:iq:roster'><item/></query></iq>");
        CHECK(serialize(iq) == "<iq xmlns='jabber:client' type='result'><query "
                               "xmlns='jabber:iq:roster'><item/></query></iq>");
    }
    SUBCASE("an empty namespace inherits the parent's") {
        Element m("message", "jabber:client");
        m.with(Element("body").text("x"));
        CHECK(serialize(m, "jabber:client") == "<message><body>x</body></message>");
    }
    SUBCASE("stream namespace elements use the stream: prefix") {
        Element features("features", std::string(ns_streams));
        features.add(Element("starttls", "urn:ietf:params:xml:ns:xmpp-tls"))
            .add(Element("required"));
        features.add(Element("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"))
            .with(Element("mechanism").text("SCRAM-SHA-256"));
        CHECK(serialize(features, "jabber:client") ==
              "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
              "</starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>"
              "SCRAM-SHA-256</mechanism></mechanisms></stream:features>");
        Element error("error", std::string(ns_streams));
        error.with(Element("conflict", "urn:ietf:params:xml:ns:xmpp-streams"));
        CHECK(serialize(error, "jabber:client") ==
              "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
              "</stream:error>");
        // Children of a stream: element still inherit the stream's content namespace.
        Element wrapped("features", std::string(ns_streams));
        wrapped.with(Element("x", "jabber:client"));
        CHECK(serialize(wrapped, "jabber:client") == "<stream:features><x/></stream:features>");
    }
    SUBCASE("attribute and text escaping") {
        Element e("m", "jabber:client");
        e.attr("a", "x&y<z>\"q'\t\n\r");
        e.text("1 < 2 && 3 > 2 \"quoted\" 'single' ]]> \r\n");
        CHECK(serialize(e, "jabber:client") ==
              "<m a='x&amp;y&lt;z>\"q&apos;&#9;&#10;&#13;'>1 &lt; 2 &amp;&amp; 3 > 2 "
              "\"quoted\" 'single' ]]&gt; &#13;\n</m>");
        std::string out;
        append_escaped(out, "&<>\"'");
        // Values are quoted with ', so " and > stay as they are (no growth on the way out).
        CHECK(out == "&amp;&lt;>\"&apos;");
        // "]]>" must never appear in character data, even when a dropped control separates it.
        CHECK(serialize(Element("m").text(std::string("]\x01]>x>", 6))) == "<m>]]&gt;x></m>");
    }
    SUBCASE("control characters XML cannot carry are dropped") {
        Element e("m");
        e.attr("a", std::string("a\x01z", 3));
        e.text(std::string("b\x00\x1f" "c", 4));
        CHECK(serialize(e) == "<m a='az'>bc</m>");
    }
    SUBCASE("namespaced attributes get generated prefixes") {
        Element e("item", "urn:a");
        e.attr("xml:lang", "en");
        e.attr("{urn:x}one", "1");
        e.attr("plain", "p");
        e.attr("{urn:y}two", "2");
        e.attr("{urn:x}three", "3");
        e.attr("{http://www.w3.org/XML/1998/namespace}id", "i");
        e.attr("xmlns", "urn:ignored");  // the serializer owns namespace declarations
        CHECK(serialize(e, "urn:a") ==
              "<item xml:lang='en' xmlns:ns1='urn:x' ns1:one='1' plain='p' xmlns:ns2='urn:y' "
              "ns2:two='2' ns1:three='3' xml:id='i'/>");
    }
    SUBCASE("stream open") {
        CHECK(serialize_stream_open("jabber:client", {{"from", "example.org"},
                                                      {"id", "a'b&c"},
                                                      {"version", "1.0"},
                                                      {"xml:lang", "en"}}) ==
              "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams' from='example.org' "
              "id='a&apos;b&amp;c' version='1.0' xml:lang='en'>");
    }
}

TEST_CASE("parser: a valid stream") {
    Recorder rec;
    StreamParser parser(rec, {});
    REQUIRE(parser.feed(valid_stream) == ParseError::None);
    CHECK(parser.error_text().empty());
    CHECK(rec.opens == 1);
    CHECK(rec.closes == 1);
    CHECK(rec.header.name == "stream");
    CHECK(rec.header.ns == ns_streams);
    CHECK(rec.header.default_ns == "jabber:client");
    CHECK(rec.header.attr("to") == "example.org");
    CHECK(rec.header.attr("version") == "1.0");
    CHECK(rec.header.attr("xml:lang") == "en");
    REQUIRE(rec.stanzas.size() == 5);

    const Element& m = rec.elements[0];
    CHECK(m.name() == "message");
    CHECK(m.ns() == "jabber:client");
    CHECK(m.attr("type") == "chat");
    CHECK(m.child_text("body", "jabber:client") ==
          "Art thou not Romeo, & a Montague? <3 \xE2\x98\xBA \xE2\x98\x83");
    CHECK(rec.stanzas[0] ==
          "<message to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat' "
          "id='m1'><body>Art thou not Romeo, &amp; a Montague? &lt;3 \xE2\x98\xBA \xE2\x98\x83"
          "</body><thread>t1</thread></message>");
    CHECK(rec.elements[1].child("ping", "urn:xmpp:ping") != nullptr);
    CHECK(rec.stanzas[1] == "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(rec.elements[2].child("status")->attr("xml:lang") == "de");
    CHECK(rec.stanzas[2] ==
          "<presence><show>away</show><status xml:lang='de'>Weg</status><c "
          "xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>");
    CHECK(rec.elements[3].attr("{urn:x}attr") == "q'uote");
    CHECK(rec.elements[3].child("payload", "urn:x")->text() == "<raw> & stuff");
    CHECK(rec.stanzas[3] ==
          "<message xmlns:ns1='urn:x' ns1:attr='q&apos;uote'><payload xmlns='urn:x'>&lt;raw> "
          "&amp; stuff</payload></message>");
    CHECK(rec.elements[4].ns() == ns_streams);
    CHECK(rec.stanzas[4] == "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                            "<required/></starttls></stream:features>");
}

TEST_CASE("parser: split at every byte boundary yields identical stanzas") {
    Recorder reference;
    REQUIRE(parse_whole(valid_stream, reference) == ParseError::None);
    REQUIRE(reference.stanzas.size() == 5);

    for (std::size_t cut = 0; cut <= valid_stream.size(); ++cut) {
        Recorder rec;
        StreamParser parser(rec, {});
        const std::string_view all(valid_stream);
        REQUIRE(parser.feed(all.substr(0, cut)) == ParseError::None);
        REQUIRE(parser.feed(all.substr(cut)) == ParseError::None);
        CHECK(rec.stanzas == reference.stanzas);
        CHECK(rec.header.attrs == reference.header.attrs);
        CHECK(rec.closes == 1);
    }
    for (std::size_t a = 1; a < valid_stream.size(); a += 7) {
        for (std::size_t b = a; b < valid_stream.size(); b += 13) {
            Recorder rec;
            StreamParser parser(rec, {});
            const std::string_view all(valid_stream);
            REQUIRE(parser.feed(all.substr(0, a)) == ParseError::None);
            REQUIRE(parser.feed(all.substr(a, b - a)) == ParseError::None);
            REQUIRE(parser.feed(all.substr(b)) == ParseError::None);
            CHECK(rec.stanzas == reference.stanzas);
        }
    }
    Recorder bytewise;
    REQUIRE(parse_bytewise(valid_stream, bytewise) == ParseError::None);
    CHECK(bytewise.stanzas == reference.stanzas);
    CHECK(bytewise.closes == 1);
}

TEST_CASE("parser: stanzas are delivered as soon as they close") {
    Recorder rec;
    StreamParser parser(rec, {});
    REQUIRE(parser.feed(stream_open) == ParseError::None);
    CHECK(rec.opens == 1);
    REQUIRE(parser.feed("<message><body>hi</body></mess") == ParseError::None);
    CHECK(rec.stanzas.empty());
    REQUIRE(parser.feed("age>") == ParseError::None);
    CHECK(rec.stanzas.size() == 1);
    // A large attribute value arriving in two pieces (the tail small) must not be held back.
    const std::string big(40000, 'a');
    REQUIRE(parser.feed("<message id='" + big) == ParseError::None);
    REQUIRE(parser.feed("'/>") == ParseError::None);
    CHECK(rec.stanzas.size() == 2);
}

TEST_CASE("parser: restricted XML (RFC 6120 §11.1)") {
    SUBCASE("DOCTYPE before the stream header") {
        check_rejected("<?xml version='1.0'?><!DOCTYPE stream:stream>" + stream_open,
                       ParseError::RestrictedXml);
    }
    SUBCASE("DOCTYPE after the stream header") {
        check_rejected(stream_open + "<!DOCTYPE foo>", ParseError::NotWellFormed);
    }
    SUBCASE("billion laughs") {
        check_rejected("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
                       "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
                       "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
                       "<stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams'><message><body>&lol3;"
                       "</body></message>",
                       ParseError::RestrictedXml);
    }
    SUBCASE("processing instruction inside a stanza") {
        check_rejected(stream_open + "<message/><message><?evil data?></message>",
                       ParseError::RestrictedXml);
    }
    SUBCASE("processing instruction before the stream header") {
        check_rejected("<?xml version='1.0'?><?xml-stylesheet href='x'?>" + stream_open,
                       ParseError::RestrictedXml);
    }
    SUBCASE("comment between stanzas") {
        check_rejected(stream_open + "<message/><!-- hi --><message/>", ParseError::RestrictedXml);
    }
    SUBCASE("comment inside a stanza") {
        check_rejected(stream_open + "<message><body>a<!-- b --></body></message>",
                       ParseError::RestrictedXml);
    }
    SUBCASE("undefined entity") {
        check_rejected(stream_open + "<message><body>&nbsp;</body></message>",
                       ParseError::NotWellFormed);
    }
    SUBCASE("a second XML declaration") {
        check_rejected(stream_open + "<?xml version='1.0'?>", ParseError::NotWellFormed);
    }
}

TEST_CASE("parser: malformed input") {
    SUBCASE("overlong UTF-8") {
        check_rejected(stream_open + "<message><body>\xC0\xAF</body></message>",
                       ParseError::NotWellFormed);
    }
    SUBCASE("lone continuation byte") {
        check_rejected(stream_open + "<message><body>a\x80z</body></message>",
                       ParseError::NotWellFormed);
    }
    SUBCASE("truncated sequence") {
        check_rejected(stream_open + "<message><body>\xE2\x98</body></message>",
                       ParseError::NotWellFormed);
    }
    SUBCASE("UTF-16 surrogate encoded in UTF-8") {
        check_rejected(stream_open + "<message><body>\xED\xA0\x80</body></message>",
                       ParseError::NotWellFormed);
    }
    SUBCASE("invalid byte in an element name") {
        check_rejected(stream_open + "<mess\xFF" "age/>", ParseError::NotWellFormed);
    }
    SUBCASE("control character reference") {
        check_rejected(stream_open + "<message><body>&#1;</body></message>",
                       ParseError::NotWellFormed);
    }
    SUBCASE("mismatched tags") {
        check_rejected(stream_open + "<message><body></message>", ParseError::NotWellFormed);
    }
    SUBCASE("duplicate attribute") {
        check_rejected(stream_open + "<message to='a' to='b'/>", ParseError::NotWellFormed);
    }
    SUBCASE("text between stanzas") {
        check_rejected(stream_open + "<message/>hello<message/>", ParseError::NotWellFormed);
    }
    SUBCASE("escaped text between stanzas") {
        check_rejected(stream_open + "&amp;", ParseError::NotWellFormed);
    }
    SUBCASE("unbound prefix") {
        check_rejected(stream_open + "<foo:bar/>", ParseError::NotWellFormed);
    }
    SUBCASE("unbound attribute prefix") {
        check_rejected(stream_open + "<message foo:bar='x'/>", ParseError::NotWellFormed);
    }
    SUBCASE("unbound stream prefix") {
        check_rejected("<stream:stream xmlns='jabber:client'>", ParseError::NotWellFormed);
    }
    SUBCASE("content after the stream closed") {
        Recorder rec;
        StreamParser parser(rec, {});
        CHECK(parser.feed(stream_open + "</stream:stream>\n  ") == ParseError::None);
        CHECK(rec.closes == 1);
        CHECK(parser.feed("<message/>") == ParseError::NotWellFormed);
        CHECK(rec.stanzas.empty());
    }
}

TEST_CASE("parser: encoding (RFC 6120 §11.6)") {
    SUBCASE("ISO-8859-1 declared") {
        check_rejected("<?xml version='1.0' encoding='ISO-8859-1'?>"
                       "<stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams'>",
                       ParseError::UnsupportedEncoding);
    }
    SUBCASE("UTF-16 declared") {
        check_rejected("<?xml version='1.0' encoding='UTF-16'?><stream:stream/>",
                       ParseError::UnsupportedEncoding);
    }
    SUBCASE("utf-8 in any case is fine, and so is a byte order mark") {
        Recorder rec;
        CHECK(parse_whole("\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8'?>"
                          "<stream:stream xmlns='jabber:client' "
                          "xmlns:stream='http://etherx.jabber.org/streams'><message/>",
                          rec) == ParseError::None);
        CHECK(rec.stanzas.size() == 1);
    }
    SUBCASE("no XML declaration at all") {
        Recorder rec;
        CHECK(parse_whole("<stream:stream xmlns='jabber:client' "
                          "xmlns:stream='http://etherx.jabber.org/streams'><message/>",
                          rec) == ParseError::None);
        CHECK(rec.stanzas.size() == 1);
    }
}

TEST_CASE("parser: stream root and namespaces") {
    SUBCASE("wrong stream namespace") {
        check_rejected("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                       "xmlns:stream='urn:wrong'>",
                       ParseError::InvalidNamespace);
    }
    SUBCASE("wrong root name") {
        check_rejected("<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>",
                       ParseError::InvalidNamespace);
    }
    SUBCASE("root in no namespace") {
        check_rejected("<stream>", ParseError::InvalidNamespace);
    }
    SUBCASE("default namespace recorded, server-to-server too") {
        Recorder rec;
        CHECK(parse_whole("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                          "xmlns='jabber:server' xmlns:db='jabber:server:dialback' from='a' "
                          "to='b'><db:result from='a' to='b'>key</db:result>",
                          rec) == ParseError::None);
        CHECK(rec.header.default_ns == "jabber:server");
        REQUIRE(rec.elements.size() == 1);
        CHECK(rec.elements[0].ns() == "jabber:server:dialback");
        CHECK(rec.stanzas[0] == "<result xmlns='jabber:server:dialback' from='a' to='b'>key"
                                "</result>");
    }
    SUBCASE("no default namespace") {
        Recorder rec;
        CHECK(parse_whole("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"
                          "<message/>",
                          rec) == ParseError::None);
        CHECK(rec.header.default_ns.empty());
        REQUIRE(rec.elements.size() == 1);
        CHECK(rec.elements[0].ns().empty());
    }
    SUBCASE("prefixes declared on the stream apply inside stanzas") {
        Recorder rec;
        CHECK(parse_whole(stream_open + "<stream:error><conflict "
                                        "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                        "</stream:error>",
                          rec) == ParseError::None);
        REQUIRE(rec.elements.size() == 1);
        CHECK(rec.elements[0].ns() == ns_streams);
        CHECK(rec.elements[0].name() == "error");
        CHECK(rec.stanzas[0] == "<stream:error><conflict "
                                "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    }
}

TEST_CASE("parser: size and depth caps (policy-violation)") {
    ParserLimits limits;
    limits.max_stanza_bytes = 1000;
    limits.max_depth = 8;

    SUBCASE("a stanza exactly at the cap passes, one byte more fails") {
        const std::string head = "<message><body>";
        const std::string tail = "</body></message>";
        const std::string fits = head + std::string(1000 - head.size() - tail.size(), 'x') + tail;
        REQUIRE(fits.size() == 1000);
        Recorder ok;
        CHECK(parse_whole(stream_open + fits, ok, limits) == ParseError::None);
        CHECK(ok.stanzas.size() == 1);
        Recorder ok_bytewise;
        CHECK(parse_bytewise(stream_open + fits, ok_bytewise, limits) == ParseError::None);
        CHECK(ok_bytewise.stanzas.size() == 1);

        const std::string over = head + std::string(1001 - head.size() - tail.size(), 'x') + tail;
        check_rejected(stream_open + over, ParseError::PolicyViolation, limits);
    }
    SUBCASE("oversize closed stanza in one piece") {
        check_rejected(stream_open + "<message/><message><body>" + std::string(100000, 'x') +
                           "</body></message><message/>",
                       ParseError::PolicyViolation, limits);
    }
    SUBCASE("oversize stanza that never closes") {
        Recorder rec;
        StreamParser parser(rec, limits);
        REQUIRE(parser.feed(stream_open + "<message><body>") == ParseError::None);
        ParseError err = ParseError::None;
        for (int i = 0; i < 100 && err == ParseError::None; ++i) {
            err = parser.feed(std::string(50, 'x'));
        }
        CHECK(err == ParseError::PolicyViolation);
        CHECK(rec.stanzas.empty());
    }
    SUBCASE("a start tag that never ends") {
        check_rejected(stream_open + "<message to='" + std::string(5000, 'x'),
                       ParseError::PolicyViolation, limits);
    }
    SUBCASE("a stream header that never ends") {
        check_rejected("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='" +
                           std::string(5000, 'x'),
                       ParseError::PolicyViolation, limits);
    }
    SUBCASE("many small stanzas are each counted on their own") {
        std::string input = stream_open;
        for (int i = 0; i < 200; ++i) {
            input += "<message><body>0123456789</body></message>";
        }
        Recorder rec;
        CHECK(parse_whole(input, rec, limits) == ParseError::None);
        CHECK(rec.stanzas.size() == 200);
    }
    SUBCASE("depth at the cap passes, one deeper fails") {
        Recorder ok;
        CHECK(parse_whole(stream_open + nested(8), ok, limits) == ParseError::None);
        CHECK(ok.stanzas.size() == 1);
        check_rejected(stream_open + nested(9), ParseError::PolicyViolation, limits);
    }
    SUBCASE("depth bomb with the default limits") {
        std::string bomb = stream_open;
        for (int i = 0; i < 100000; ++i) {
            bomb += "<a>";
        }
        Recorder rec;
        CHECK(parse_whole(bomb, rec) == ParseError::PolicyViolation);
        CHECK(rec.stanzas.empty());
    }
    SUBCASE("limits can be changed between stanzas") {
        Recorder rec;
        StreamParser parser(rec, {});
        const std::string big = "<message><body>" + std::string(5000, 'x') + "</body></message>";
        REQUIRE(parser.feed(stream_open + big) == ParseError::None);
        parser.set_limits(limits);
        CHECK(parser.limits().max_stanza_bytes == 1000);
        CHECK(parser.feed(big) == ParseError::PolicyViolation);
        CHECK(rec.stanzas.size() == 1);
    }
}

TEST_CASE("parser: whitespace keepalives (RFC 6120 §4.6.1)") {
    ParserLimits limits;
    limits.max_stanza_bytes = 100;
    Recorder rec;
    StreamParser parser(rec, limits);
    REQUIRE(parser.feed(stream_open) == ParseError::None);
    // Far more whitespace in total than the cap: keepalives never accumulate.
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(parser.feed(i % 2 ? " " : "\r\n\t ") == ParseError::None);
    }
    REQUIRE(parser.feed("<message/>  ") == ParseError::None);
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(parser.feed(" ") == ParseError::None);
    }
    CHECK(rec.stanzas == std::vector<std::string>{"<message/>"});
    CHECK(parser.feed("</stream:stream>") == ParseError::None);
    CHECK(rec.closes == 1);
}

TEST_CASE("parser: mixed content round-trips") {
    const std::string stanza =
        "<message to='a@b' type='chat'><body>Hello bold &amp; italic!</body>"
        "<html xmlns='http://jabber.org/protocol/xhtml-im'><body "
        "xmlns='http://www.w3.org/1999/xhtml'><p style='font-weight:bold'>Hello <b>bold</b> "
        "&amp; <i>italic</i>!<br/>next &lt;line></p></body></html></message>";
    Recorder rec;
    REQUIRE(parse_whole(stream_open + stanza, rec) == ParseError::None);
    REQUIRE(rec.stanzas.size() == 1);
    CHECK(rec.stanzas[0] == stanza);
    const Element* p =
        rec.elements[0].child("html")->child("body", "http://www.w3.org/1999/xhtml")->child("p");
    REQUIRE(p != nullptr);
    REQUIRE(p->nodes().size() == 7);
    CHECK(p->nodes()[0].text == "Hello ");
    CHECK(p->nodes()[1].element->name() == "b");
    CHECK(p->nodes()[2].text == " & ");
    CHECK(p->text() == "Hello  & !next <line>");

    // Serialising and parsing again is stable.
    Recorder again;
    REQUIRE(parse_whole(stream_open + rec.stanzas[0], again) == ParseError::None);
    CHECK(again.stanzas == rec.stanzas);
}

TEST_CASE("parser: attribute escaping and namespaced attributes round-trip") {
    Element built("message", "jabber:client");
    built.attr("id", "a&b<c>\"d'e\tf\ng");
    built.attr("xml:lang", "en");
    built.attr("{urn:example:x}flag", "1");
    built.attr("{urn:example:y}other", "<&>");
    built.add(Element("body")).attr("{urn:example:x}inner", "2").text("t<&>\"'\r\n");

    const std::string wire = serialize(built, "jabber:client");
    Recorder rec;
    REQUIRE(parse_whole(stream_open + wire, rec) == ParseError::None);
    REQUIRE(rec.elements.size() == 1);
    const Element& e = rec.elements[0];
    CHECK(e.attr("id") == "a&b<c>\"d'e\tf\ng");
    CHECK(e.attr("xml:lang") == "en");
    CHECK(e.attr("{urn:example:x}flag") == "1");
    CHECK(e.attr("{urn:example:y}other") == "<&>");
    CHECK(e.child("body")->attr("{urn:example:x}inner") == "2");
    CHECK(e.child_text("body") == "t<&>\"'\r\n");
    CHECK(e.attrs() == built.attrs());
    CHECK(rec.stanzas[0] == wire);
}

TEST_CASE("parser: stopping after a stanza, then reset") {
    Recorder rec;
    rec.stop_after = 1;
    StreamParser parser(rec, {});
    // STARTTLS: everything after <proceed/>'s trigger must be discarded.
    CHECK(parser.feed(stream_open + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                    "<message>injected</message>") == ParseError::None);
    CHECK(parser.stopped());
    CHECK(rec.stanzas.size() == 1);
    CHECK(parser.feed("<message/>") == ParseError::None);  // ignored until reset
    CHECK(rec.stanzas.size() == 1);

    parser.reset();
    CHECK_FALSE(parser.stopped());
    rec.stop_after = std::numeric_limits<std::size_t>::max();
    CHECK(parser.feed("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                      "xmlns:stream='http://etherx.jabber.org/streams' to='example.net' "
                      "version='1.0'><message id='after'/>") == ParseError::None);
    CHECK(rec.opens == 2);
    CHECK(rec.header.attr("to") == "example.net");
    REQUIRE(rec.stanzas.size() == 2);
    CHECK(rec.stanzas[1] == "<message id='after'/>");
}

TEST_CASE("parser: reset after an error starts a clean stream") {
    Recorder rec;
    StreamParser parser(rec, {});
    CHECK(parser.feed(stream_open + "<!-- x -->") == ParseError::RestrictedXml);
    CHECK(parser.error() == ParseError::RestrictedXml);
    parser.reset();
    CHECK(parser.error() == ParseError::None);
    CHECK(parser.error_text().empty());
    CHECK(parser.feed(stream_open + "<message/>") == ParseError::None);
    CHECK(rec.stanzas.size() == 1);
}

TEST_CASE("parser: reset from inside a callback takes effect after feed") {
    struct Restarter : Recorder {
        StreamParser* parser = nullptr;
        bool on_stanza(Element&& e) override {
            Recorder::on_stanza(std::move(e));
            parser->reset();
            return true;
        }
    } rec;
    StreamParser parser(rec, {});
    rec.parser = &parser;
    CHECK(parser.feed(stream_open + "<auth/><message/>") == ParseError::None);
    CHECK(rec.stanzas.size() == 1);
    CHECK_FALSE(parser.stopped());
    CHECK(parser.feed(stream_open + "<message/>") == ParseError::None);
    CHECK(rec.opens == 2);
    CHECK(rec.stanzas.size() == 2);
}

TEST_CASE("parser: an exception from a handler propagates and stops the parser") {
    Recorder rec;
    rec.throw_on_stanza = true;
    StreamParser parser(rec, {});
    CHECK_THROWS_AS(parser.feed(stream_open + "<message/><message/>"), std::runtime_error);
    CHECK(parser.stopped());
    rec.throw_on_stanza = false;
    CHECK(parser.feed("<message/>") == ParseError::None);
    CHECK(rec.stanzas.empty());
    parser.reset();
    CHECK(parser.feed(stream_open + "<message/>") == ParseError::None);
    CHECK(rec.stanzas.size() == 1);
}

TEST_CASE("parser: error text never echoes the input") {
    Recorder rec;
    StreamParser parser(rec, {});
    CHECK(parser.feed(stream_open + "<message><body>secret-password&nbsp;</body></message>") ==
          ParseError::NotWellFormed);
    CHECK(parser.error_text().find("secret") == std::string::npos);
    CHECK(parser.error_text().find("nbsp") == std::string::npos);
}

// --- hibernation: dropping the Expat parser of an idle stream and rebuilding it on demand ---

namespace {

struct ChunkRun {
    ParseError error = ParseError::None;
    int hibernations = 0;
};

// Feeds `chunks` in order. With `hibernate` set, hibernate() is tried after every chunk.
ChunkRun feed_chunks(const std::vector<std::string>& chunks, Recorder& rec, bool hibernate,
                     ParserLimits limits = {}) {
    StreamParser parser(rec, limits);
    ChunkRun run;
    for (const auto& chunk : chunks) {
        run.error = parser.feed(chunk);
        if (run.error != ParseError::None) {
            break;
        }
        if (hibernate && parser.hibernate()) {
            CHECK(parser.hibernated());
            ++run.hibernations;
        }
    }
    return run;
}

// The same events, down to every element's name and namespace.
void check_same_events(const Recorder& got, const Recorder& expected) {
    CHECK(got.opens == expected.opens);
    CHECK(got.closes == expected.closes);
    CHECK(got.header.attrs == expected.header.attrs);
    CHECK(got.header.default_ns == expected.header.default_ns);
    CHECK(got.stanzas == expected.stanzas);
    REQUIRE(got.elements.size() == expected.elements.size());
    for (std::size_t i = 0; i < got.elements.size(); ++i) {
        CHECK(got.elements[i].name() == expected.elements[i].name());
        CHECK(got.elements[i].ns() == expected.elements[i].ns());
    }
}

// Parses `chunks` with and without hibernating between them; both must agree.
ChunkRun check_hibernation_invisible(const std::vector<std::string>& chunks, Recorder& rec,
                                     ParserLimits limits = {}) {
    Recorder plain;
    const ChunkRun reference = feed_chunks(chunks, plain, false, limits);
    const ChunkRun run = feed_chunks(chunks, rec, true, limits);
    CHECK(run.error == reference.error);
    check_same_events(rec, plain);
    return run;
}

}  // namespace

TEST_CASE("parser: hibernating between stanzas is invisible to the handler") {
    Recorder rec;
    const ChunkRun run = check_hibernation_invisible(
        {stream_open, "\n", "<message to='a@b'><body>hi</body></message>", " ",
         "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
         "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
         "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
         "<r xmlns='urn:xmpp:sm:3'/>", "<message xmlns:x='urn:x' x:a='1'><x:p/></message>",
         "</stream:stream>"},
        rec);
    CHECK(run.error == ParseError::None);
    CHECK(run.hibernations == 9);  // after every chunk but the stream close
    CHECK(rec.opens == 1);
    CHECK(rec.closes == 1);
    CHECK(rec.header.attr("to") == "example.org");
    REQUIRE(rec.elements.size() == 6);
    CHECK(rec.elements[0].ns() == "jabber:client");
    CHECK(rec.elements[1].child("query", "jabber:iq:roster") != nullptr);
    CHECK(rec.elements[2].ns() == ns_streams);
    CHECK(rec.stanzas[2] ==
          "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    CHECK(rec.elements[3].name() == "error");
    CHECK(rec.elements[3].ns() == ns_streams);
    CHECK(rec.elements[4].ns() == "urn:xmpp:sm:3");
    CHECK(rec.elements[5].attr("{urn:x}a") == "1");
    CHECK(rec.elements[5].child("p", "urn:x") != nullptr);
}

TEST_CASE("parser: hibernated() and hibernate() on an already hibernated parser") {
    Recorder rec;
    StreamParser parser(rec, {});
    CHECK_FALSE(parser.hibernated());
    REQUIRE(parser.feed(stream_open) == ParseError::None);
    CHECK(parser.hibernate());
    CHECK(parser.hibernated());
    CHECK(parser.hibernate());
    CHECK(parser.feed("") == ParseError::None);  // nothing to parse: stays asleep
    CHECK(parser.hibernated());
    CHECK(parser.feed("<message/>") == ParseError::None);
    CHECK_FALSE(parser.hibernated());
    CHECK(rec.stanzas == std::vector<std::string>{"<message/>"});
    CHECK(rec.opens == 1);
}

TEST_CASE("parser: hibernating streams with other prefixes and declarations") {
    SUBCASE("a different stream prefix") {
        const std::string open =
            "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
            "xmlns='jabber:client' to='example.org'>";
        Recorder rec;
        const ChunkRun run = check_hibernation_invisible(
            {open, "<s:features><x/></s:features>", "<message/>", "</s:stream>"}, rec);
        CHECK(run.error == ParseError::None);
        CHECK(run.hibernations == 3);
        REQUIRE(rec.elements.size() == 2);
        CHECK(rec.elements[0].ns() == ns_streams);
        CHECK(rec.elements[0].child("x", "jabber:client") != nullptr);
        CHECK(rec.elements[1].ns() == "jabber:client");
        CHECK(rec.closes == 1);

        // The replayed root is <s:stream>, so the wrong end tag is still wrong.
        Recorder wrong;
        CHECK(check_hibernation_invisible({open, "<message/>", "</stream:stream>"}, wrong).error ==
              ParseError::NotWellFormed);
        CHECK(wrong.closes == 0);
    }
    SUBCASE("an extra prefix declared on the stream (dialback)") {
        const std::string open =
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
            "xmlns='jabber:server' xmlns:db='jabber:server:dialback'>";
        Recorder rec;
        const ChunkRun run =
            check_hibernation_invisible({open, "<db:result from='a' to='b'>key</db:result>",
                                         "<db:verify id='1'/>", "</stream:stream>"},
                                        rec);
        CHECK(run.error == ParseError::None);
        CHECK(run.hibernations == 3);
        REQUIRE(rec.elements.size() == 2);
        CHECK(rec.elements[0].ns() == "jabber:server:dialback");
        CHECK(rec.elements[0].text() == "key");
        CHECK(rec.elements[1].ns() == "jabber:server:dialback");
        CHECK(rec.closes == 1);

        // A prefix that was never declared stays unbound.
        Recorder unbound;
        CHECK(check_hibernation_invisible({open, "<message/>", "<foo:bar/>"}, unbound).error ==
              ParseError::NotWellFormed);
    }
    SUBCASE("the stream element in the default namespace") {
        Recorder rec;
        const ChunkRun run = check_hibernation_invisible(
            {"<stream xmlns='http://etherx.jabber.org/streams'>", "<features/>", "</stream>"}, rec);
        CHECK(run.error == ParseError::None);
        CHECK(run.hibernations == 2);
        REQUIRE(rec.elements.size() == 1);
        CHECK(rec.elements[0].ns() == ns_streams);
        CHECK(rec.closes == 1);
    }
    SUBCASE("namespace URIs that need escaping in the replay") {
        Recorder rec;
        const ChunkRun run = check_hibernation_invisible(
            {"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
             "xmlns=\"urn:a&amp;b'c&quot;d&#9;e&lt;\" xmlns:p='urn:&apos;'>",
             "<message/>", "<p:x/>", "</stream:stream>"},
            rec);
        CHECK(run.error == ParseError::None);
        CHECK(run.hibernations == 3);
        REQUIRE(rec.elements.size() == 2);
        CHECK(rec.elements[0].ns() == "urn:a&b'c\"d\te<");
        CHECK(rec.elements[1].ns() == "urn:'");
    }
    SUBCASE("the default namespace undeclared") {
        Recorder rec;
        const ChunkRun run = check_hibernation_invisible(
            {"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns=''>",
             "<message/>", "</stream:stream>"},
            rec);
        CHECK(run.error == ParseError::None);
        CHECK(run.hibernations == 2);
        REQUIRE(rec.elements.size() == 1);
        CHECK(rec.elements[0].ns().empty());
    }
    SUBCASE("an ambiguous stream prefix never hibernates") {
        Recorder rec;
        const ChunkRun run =
            check_hibernation_invisible({"<stream:stream xmlns='http://etherx.jabber.org/streams' "
                                         "xmlns:stream='http://etherx.jabber.org/streams'>",
                                         "<message/>", "</stream:stream>"},
                                        rec);
        CHECK(run.error == ParseError::None);
        CHECK(run.hibernations == 0);
        REQUIRE(rec.elements.size() == 1);
        CHECK(rec.elements[0].ns() == ns_streams);
        CHECK(rec.closes == 1);
    }
}

TEST_CASE("parser: hibernate() refuses unless the stream is at rest") {
    Recorder rec;
    StreamParser parser(rec, {});

    SUBCASE("before and during the stream header") {
        CHECK_FALSE(parser.hibernate());
        REQUIRE(parser.feed(stream_open.substr(0, 40)) == ParseError::None);
        CHECK_FALSE(parser.hibernate());
        REQUIRE(parser.feed(stream_open.substr(40)) == ParseError::None);
        CHECK(rec.opens == 1);
        CHECK(parser.hibernate());
    }
    SUBCASE("inside a stanza") {
        REQUIRE(parser.feed(stream_open + "<message><body>hi") == ParseError::None);
        CHECK_FALSE(parser.hibernate());
        REQUIRE(parser.feed("</body>") == ParseError::None);
        CHECK_FALSE(parser.hibernate());
        REQUIRE(parser.feed("</message>") == ParseError::None);
        CHECK(rec.stanzas == std::vector<std::string>{"<message><body>hi</body></message>"});
        CHECK(parser.hibernate());
    }
    SUBCASE("a partial start tag, end tag or CRLF") {
        REQUIRE(parser.feed(stream_open + "<mess") == ParseError::None);
        CHECK_FALSE(parser.hibernate());
        REQUIRE(parser.feed("age/>") == ParseError::None);
        CHECK(parser.hibernate());
        REQUIRE(parser.feed("<message></mess") == ParseError::None);
        CHECK_FALSE(parser.hibernate());
        REQUIRE(parser.feed("age>") == ParseError::None);
        CHECK(parser.hibernate());
        REQUIRE(parser.feed("\r") == ParseError::None);  // Expat waits to see whether LF follows
        CHECK_FALSE(parser.hibernate());
        REQUIRE(parser.feed("\n") == ParseError::None);
        CHECK(parser.hibernate());
        REQUIRE(parser.feed("<") == ParseError::None);
        CHECK_FALSE(parser.hibernate());
        REQUIRE(parser.feed("/stream:stream>") == ParseError::None);
        CHECK(rec.stanzas == std::vector<std::string>{"<message/>", "<message/>"});
        CHECK(rec.closes == 1);
        CHECK_FALSE(parser.hibernate());  // closed
    }
    SUBCASE("after an error") {
        CHECK(parser.feed(stream_open + "<message>x</iq>") == ParseError::NotWellFormed);
        CHECK_FALSE(parser.hibernate());
        CHECK(parser.feed("<message/>") == ParseError::NotWellFormed);
        CHECK(rec.stanzas.empty());
    }
    SUBCASE("after a wrong root") {
        CHECK(parser.feed("<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>") ==
              ParseError::InvalidNamespace);
        CHECK_FALSE(parser.hibernate());
    }
    SUBCASE("stopped by the handler") {
        rec.stop_after = 1;
        REQUIRE(parser.feed(stream_open + "<auth/><message/>") == ParseError::None);
        CHECK(parser.stopped());
        CHECK_FALSE(parser.hibernate());
    }
}

TEST_CASE("parser: hibernate() from inside a callback is refused") {
    struct Sleeper : Recorder {
        StreamParser* parser = nullptr;
        std::vector<bool> results;
        bool on_stanza(Element&& e) override {
            results.push_back(parser->hibernate());
            return Recorder::on_stanza(std::move(e));
        }
    } rec;
    StreamParser parser(rec, {});
    rec.parser = &parser;
    REQUIRE(parser.feed(stream_open + "<message/><message/>") == ParseError::None);
    CHECK(rec.results == std::vector<bool>{false, false});
    CHECK(rec.stanzas.size() == 2);
    CHECK(parser.hibernate());
}

TEST_CASE("parser: reset() of a hibernated parser starts a fresh stream") {
    Recorder rec;
    StreamParser parser(rec, {});
    REQUIRE(parser.feed(stream_open + "<message/>") == ParseError::None);
    REQUIRE(parser.hibernate());
    parser.reset();
    CHECK_FALSE(parser.hibernated());
    CHECK_FALSE(parser.hibernate());  // no header yet on the new stream
    // The new stream uses another prefix: nothing of the old replay may survive.
    REQUIRE(parser.feed("<s:stream xmlns:s='http://etherx.jabber.org/streams' "
                        "xmlns='jabber:client' to='example.net'>") == ParseError::None);
    CHECK(rec.opens == 2);
    CHECK(rec.header.attr("to") == "example.net");
    REQUIRE(parser.hibernate());
    REQUIRE(parser.feed("<message id='after'/>") == ParseError::None);
    REQUIRE(parser.hibernate());
    REQUIRE(parser.feed("</s:stream>") == ParseError::None);
    CHECK(rec.stanzas == std::vector<std::string>{"<message/>", "<message id='after'/>"});
    CHECK(rec.closes == 1);
}

TEST_CASE("parser: whitespace keepalives keep a stream at rest") {
    ParserLimits limits;
    limits.max_stanza_bytes = 100;
    Recorder rec;
    StreamParser parser(rec, limits);
    REQUIRE(parser.feed(stream_open) == ParseError::None);
    const char* keepalives[] = {" ", "\n", "\r\n", "\t ", "  \r\n  "};
    for (int i = 0; i < 500; ++i) {
        REQUIRE(parser.feed(keepalives[i % 5]) == ParseError::None);
        REQUIRE(parser.hibernate());
    }
    REQUIRE(parser.feed("<message/>") == ParseError::None);
    CHECK(rec.stanzas == std::vector<std::string>{"<message/>"});
    CHECK(parser.hibernate());
}

TEST_CASE("parser: size and depth caps after waking") {
    ParserLimits limits;
    limits.max_stanza_bytes = 1000;
    limits.max_depth = 8;
    const std::string head = "<message><body>";
    const std::string tail = "</body></message>";
    const std::string fits = head + std::string(1000 - head.size() - tail.size(), 'x') + tail;
    const std::string over = head + std::string(1001 - head.size() - tail.size(), 'x') + tail;

    SUBCASE("a stanza exactly at the cap passes, one byte more fails") {
        Recorder rec;
        const ChunkRun run =
            check_hibernation_invisible({stream_open, fits, fits, over}, rec, limits);
        CHECK(run.error == ParseError::PolicyViolation);
        CHECK(run.hibernations == 3);
        CHECK(rec.stanzas.size() == 2);

        StreamParser parser(rec, limits);
        REQUIRE(parser.feed(stream_open) == ParseError::None);
        REQUIRE(parser.hibernate());
        CHECK(parser.feed(over) == ParseError::PolicyViolation);
        CHECK(parser.error_text() == "stanza too large");
    }
    SUBCASE("the replayed opening tag does not count") {
        // Its declarations alone take most of the cap.
        const std::string open =
            "<stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:" +
            std::string(800, 'x') + "'>";
        REQUIRE(open.size() < 1000);
        // Half a start tag: only the unit start set when waking bounds it.
        const std::string long_tag = "<message id='" + std::string(1000 - 16, 'x') + "'/>";
        REQUIRE(long_tag.size() == 1000);
        Recorder rec;
        const ChunkRun run = check_hibernation_invisible(
            {open, fits, long_tag.substr(0, 600), long_tag.substr(600)}, rec, limits);
        CHECK(run.error == ParseError::None);
        CHECK(run.hibernations == 3);
        CHECK(rec.stanzas.size() == 2);
    }
    SUBCASE("a stanza that never closes") {
        auto feeds_until_failure = [&](bool hibernate) {
            Recorder rec;
            StreamParser parser(rec, limits);
            REQUIRE(parser.feed(stream_open) == ParseError::None);
            if (hibernate) {
                REQUIRE(parser.hibernate());
            }
            REQUIRE(parser.feed("<message><body>") == ParseError::None);
            for (int i = 0; i < 100; ++i) {
                if (parser.feed(std::string(50, 'x')) != ParseError::None) {
                    CHECK(parser.error() == ParseError::PolicyViolation);
                    return i;
                }
            }
            return -1;
        };
        const int plain = feeds_until_failure(false);
        CHECK(plain > 0);
        CHECK(feeds_until_failure(true) == plain);
    }
    SUBCASE("a start tag that never ends") {
        Recorder rec;
        CHECK(check_hibernation_invisible(
                  {stream_open, "<message/>", "<message to='", std::string(5000, 'x')}, rec, limits)
                  .error == ParseError::PolicyViolation);
    }
    SUBCASE("depth at the cap passes, one deeper fails") {
        Recorder rec;
        const ChunkRun run =
            check_hibernation_invisible({stream_open, nested(8), nested(9)}, rec, limits);
        CHECK(run.error == ParseError::PolicyViolation);
        CHECK(run.hibernations == 2);
        CHECK(rec.stanzas.size() == 1);
    }
}

TEST_CASE("parser: hibernating after every stanza, a hundred times") {
    Recorder rec;
    StreamParser parser(rec, {});
    REQUIRE(parser.feed(stream_open) == ParseError::None);
    std::vector<std::string> expected;
    for (int i = 0; i < 100; ++i) {
        REQUIRE(parser.hibernate());
        REQUIRE(parser.hibernated());
        const std::string stanza = "<message id='m" + std::to_string(i) + "'><body>" +
                                   std::to_string(i) + "</body></message>";
        REQUIRE(parser.feed(stanza) == ParseError::None);
        expected.push_back(stanza);
    }
    REQUIRE(parser.hibernate());
    REQUIRE(parser.feed("</stream:stream>") == ParseError::None);
    CHECK(rec.stanzas == expected);
    CHECK(rec.opens == 1);
    CHECK(rec.closes == 1);
}

TEST_CASE("parser: split at every byte with hibernate() attempts yields identical events") {
    Recorder reference;
    REQUIRE(parse_whole(valid_stream, reference) == ParseError::None);
    const std::string_view all(valid_stream);

    // At rest: right after the header, after each byte of the keepalive runs ("\n  ", " \n",
    // " ") and after each of the five stanzas: 4 + 2 + 1 + 5 = 12 places.
    int at_rest = 0;
    for (std::size_t cut = 0; cut <= valid_stream.size(); ++cut) {
        Recorder rec;
        StreamParser parser(rec, {});
        REQUIRE(parser.feed(all.substr(0, cut)) == ParseError::None);
        if (parser.hibernate()) {
            ++at_rest;
        }
        REQUIRE(parser.feed(all.substr(cut)) == ParseError::None);
        check_same_events(rec, reference);
    }
    CHECK(at_rest == 12);

    Recorder bytewise;
    StreamParser parser(bytewise, {});
    int hibernations = 0;
    for (char c : valid_stream) {
        REQUIRE(parser.feed(std::string_view(&c, 1)) == ParseError::None);
        if (parser.hibernate()) {
            ++hibernations;
        }
    }
    CHECK(hibernations == 12);
    check_same_events(bytewise, reference);
}

TEST_CASE("serializer: a namespaced attribute whose URI contains '}' round-trips") {
    // Found by tests/fuzz/fuzz_stream: "{uri}local" was split at the first '}'.
    const std::string stanza =
        "<message to='a@b'><x xmlns:p='urn:x:a}b'><a p:k='v'/></x></message>";
    auto parsed = parse_fragment(stanza);
    REQUIRE(parsed);
    CHECK(parsed->child("x")->child("a")->attr("{urn:x:a}b}k") == "v");
    const auto out = serialize(*parsed, "jabber:client");
    auto back = parse_fragment(out);
    REQUIRE_MESSAGE(back, out);
    CHECK(back->child("x")->child("a")->attr("{urn:x:a}b}k") == "v");
}

TEST_CASE("serializer: an element in XML's own namespace keeps the xml: prefix") {
    // Found by tests/fuzz/fuzz_stream: <xml:x/> came out as <x xmlns='...XML/1998/namespace'/>,
    // which Namespaces in XML §3 forbids, so it did not parse back.
    auto parsed = parse_fragment("<message to='a@b'><xml:note/></message>");
    REQUIRE(parsed);
    const auto out = serialize(*parsed, "jabber:client");
    CHECK(out == "<message to='a@b'><xml:note/></message>");
    REQUIRE(parse_fragment(out));
}
