// Stanza helpers of the functional addresses (README.md §10.2).
#include "modules/functional_addresses/stanzas.hpp"

#include <algorithm>

#include <sodium.h>

#include "server/core/random_id.hpp"
#include "server/xml/stream_parser.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::functional_addresses {
namespace {

constexpr std::string_view content_ns[] = {
    "eu.siacs.conversations.axolotl",  // OMEMO (legacy)
    "urn:xmpp:omemo:2",                // OMEMO 2
    "urn:xmpp:openpgp:0",              // XEP-0373
    "jabber:x:oob",                    // XEP-0066 out-of-band data (shared files)
    "urn:xmpp:eme:0",                  // XEP-0380: tells clients which encryption is used
};

bool mentions(const Element& e, const std::vector<std::string>& jids) {
    auto text = xml::serialize(e);
    return std::any_of(jids.begin(), jids.end(),
                       [&](const std::string& j) { return text.find(j) != std::string::npos; });
}

}  // namespace

std::string random_id() { return random_hex(8); }

std::string trim(std::string_view s) {
    auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    auto last = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(first, last - first + 1));
}

bool is_token(std::string_view t) {
    return t.size() >= 4 && t.size() <= 6 && std::all_of(t.begin(), t.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
           });
}

bool is_chat_state(const Element& child) {
    return child.ns() == ns::chatstates;
}

bool is_forwarded(const Element& child) {
    const auto& ns = child.ns();
    if (ns == ns::client || ns.empty()) {
        return child.name() == "body" || child.name() == "thread";
    }
    if (is_chat_state(child)) {
        return true;
    }
    return std::find(std::begin(content_ns), std::end(content_ns), ns) != std::end(content_ns);
}

void copy_payload(const Element& from, Element& to, const std::vector<std::string>& hide) {
    if (auto lang = from.attr("xml:lang"); !lang.empty()) {
        to.attr("xml:lang", std::string(lang));
    }
    for (const auto* child : from.children()) {
        if (!is_forwarded(*child)) {
            continue;
        }
        // The body is what the supporter chose to write; anything else naming them goes.
        if (child->name() != "body" && !hide.empty() && mentions(*child, hide)) {
            continue;
        }
        to.add(*child);
    }
}

Element chat_message(const std::string& from, const std::string& to) {
    Element m("message", std::string(ns::client));
    m.attr("from", from).attr("to", to).attr("type", "chat").attr("id", random_id());
    return m;
}

Element text_message(const std::string& from, const std::string& to, std::string_view lang,
                     std::string_view body, std::string_view nick_name) {
    auto m = chat_message(from, to);
    m.attr("xml:lang", std::string(lang));
    if (!nick_name.empty()) {
        m.add(nick(std::string(nick_name)));
    }
    m.add(Element("body", std::string(ns::client))).text(body);
    return m;
}

Element presence(std::string_view type, const std::string& from, const std::string& to) {
    Element p("presence", std::string(ns::client));
    if (!type.empty()) {
        p.attr("type", std::string(type));
    }
    p.attr("from", from).attr("to", to);
    return p;
}

Element nick(const std::string& name) {
    Element n("nick", std::string(ns::nick));
    n.text(name);
    return n;
}

std::optional<Element> parse_stored(std::string_view text) {
    struct Capture : xml::StreamHandler {
        std::optional<Element> element;
        void on_stream_open(xml::StreamHeader&&) override {}
        bool on_stanza(Element&& e) override {
            element = std::move(e);
            return false;
        }
        void on_stream_close() override {}
    } capture;
    xml::StreamParser parser(capture, xml::ParserLimits{});
    std::string doc =
        "<stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>";
    doc += text;
    if (parser.feed(doc) != xml::ParseError::None) {
        return std::nullopt;
    }
    return std::move(capture.element);
}

}  // namespace haven::functional_addresses
