// Element DOM and the one XML serializer: every byte of outgoing XML is escaped here.
#include "server/xml/element.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>

namespace haven::xml {

namespace {

// Per-byte escape tables: nullptr copies the byte, "" drops it, anything else replaces it.
using EscapeTable = std::array<const char*, 256>;

constexpr EscapeTable make_table(bool attribute) {
    EscapeTable t{};
    // XML 1.0 §2.2: C0 controls other than tab, LF and CR cannot appear in a document at all,
    // not even as character references, so dropping them is the only way to stay well-formed.
    for (int c = 0; c < 0x20; ++c) {
        t[c] = "";
    }
    t['&'] = "&amp;";
    t['<'] = "&lt;";
    t['>'] = "&gt;";  // keeps "]]>" from ever appearing in text
    t['\t'] = nullptr;
    t['\n'] = nullptr;
    // XML 1.0 §2.11: a literal CR would be turned into LF by the receiver's parser.
    t['\r'] = "&#13;";
    if (attribute) {
        t['"'] = "&quot;";
        t['\''] = "&apos;";
        // XML 1.0 §3.3.3: literal whitespace in attribute values is normalised to spaces.
        t['\t'] = "&#9;";
        t['\n'] = "&#10;";
    }
    return t;
}

constexpr EscapeTable attribute_table = make_table(true);
constexpr EscapeTable text_table = make_table(false);

void append_with(std::string& out, std::string_view in, const EscapeTable& table) {
    const char* p = in.data();
    const char* const end = p + in.size();
    const char* run = p;
    for (; p != end; ++p) {
        const char* rep = table[static_cast<unsigned char>(*p)];
        if (rep != nullptr) {
            out.append(run, p);
            out.append(rep);
            run = p + 1;
        }
    }
    out.append(run, end);
}

void append_text(std::string& out, std::string_view text) {
    append_with(out, text, text_table);
}

// "{uri}local" keys: returns true and splits them.
bool split_clark(std::string_view key, std::string_view& uri, std::string_view& local) {
    if (key.size() < 3 || key.front() != '{') {
        return false;
    }
    const auto close = key.find('}', 1);
    if (close == std::string_view::npos) {
        return false;
    }
    uri = key.substr(1, close - 1);
    local = key.substr(close + 1);
    return true;
}

// Number (1-based) of the generated prefix for the namespaced attribute at `index`: prefixes are
// numbered by the first occurrence of each distinct URI on this element. Namespaced attributes
// are rare and few, so a rescan beats allocating a map per element.
std::size_t prefix_number(const std::vector<std::pair<std::string, std::string>>& attrs,
                          std::size_t index, std::string_view uri, bool& first) {
    std::size_t number = 0;
    for (std::size_t i = 0; i <= index; ++i) {
        std::string_view u;
        std::string_view l;
        if (!split_clark(attrs[i].first, u, l) || u.empty() || u == ns_xml) {
            continue;
        }
        bool seen_before = false;
        for (std::size_t j = 0; j < i && !seen_before; ++j) {
            std::string_view u2;
            std::string_view l2;
            seen_before = split_clark(attrs[j].first, u2, l2) && u2 == u;
        }
        if (seen_before) {
            continue;
        }
        ++number;
        if (u == uri) {
            first = (i == index);
            return number;
        }
    }
    first = true;
    return number;
}

void append_attribute(std::string& out, std::string_view key, std::string_view value) {
    out += ' ';
    out.append(key);
    out += "='";
    append_escaped(out, value);
    out += '\'';
}

void append_attributes(std::string& out, const Element& e) {
    const auto& attrs = e.attrs();
    for (std::size_t i = 0; i < attrs.size(); ++i) {
        const auto& [key, value] = attrs[i];
        std::string_view uri;
        std::string_view local;
        if (!split_clark(key, uri, local)) {
            // The serializer owns namespace declarations; a stray xmlns attribute would
            // duplicate or contradict the one written from ns().
            if (key == "xmlns" || key.starts_with("xmlns:")) {
                continue;
            }
            append_attribute(out, key, value);
            continue;
        }
        if (uri == ns_xml) {
            out += " xml:";
            out.append(local);
            out += "='";
            append_escaped(out, value);
            out += '\'';
            continue;
        }
        if (uri.empty()) {
            // "{}local" is simply an attribute in no namespace.
            append_attribute(out, local, value);
            continue;
        }
        bool first = false;
        const std::size_t n = prefix_number(attrs, i, uri, first);
        char digits[24];
        const auto [digits_end, ec] = std::to_chars(std::begin(digits), std::end(digits), n);
        const std::string_view number(digits, static_cast<std::size_t>(digits_end - digits));
        if (first) {
            out += " xmlns:ns";
            out += number;
            out += "='";
            append_escaped(out, uri);
            out += '\'';
        }
        out += " ns";
        out += number;
        out += ':';
        out.append(local);
        out += "='";
        append_escaped(out, value);
        out += '\'';
    }
}

template <typename Elem, typename Pred>
Elem* find_child(const std::vector<Node>& nodes, Pred pred) {
    for (const auto& n : nodes) {
        if (n.element && pred(*n.element)) {
            return n.element.get();
        }
    }
    return nullptr;
}

bool matches(const Element& e, std::string_view name, std::string_view ns) {
    return (name.empty() || e.name() == name) && (ns.empty() || e.ns() == ns);
}

}  // namespace

Element::Element(std::string name, std::string ns) : name_(std::move(name)), ns_(std::move(ns)) {}

Element::Element(const Element& other)
    : name_(other.name_), ns_(other.ns_), attrs_(other.attrs_) {
    nodes_.reserve(other.nodes_.size());
    for (const auto& n : other.nodes_) {
        Node copy;
        if (n.element) {
            copy.element = std::make_unique<Element>(*n.element);
        } else {
            copy.text = n.text;
        }
        nodes_.push_back(std::move(copy));
    }
}

Element& Element::operator=(const Element& other) {
    if (this != &other) {
        Element copy(other);
        *this = std::move(copy);
    }
    return *this;
}

const std::string* Element::find_attr(std::string_view key) const {
    for (const auto& [k, v] : attrs_) {
        if (k == key) {
            return &v;
        }
    }
    return nullptr;
}

std::string_view Element::attr(std::string_view key) const {
    const std::string* v = find_attr(key);
    return v ? std::string_view(*v) : std::string_view();
}

Element& Element::attr(std::string_view key, std::string value) {
    for (auto& [k, v] : attrs_) {
        if (k == key) {
            v = std::move(value);
            return *this;
        }
    }
    attrs_.emplace_back(std::string(key), std::move(value));
    return *this;
}

void Element::remove_attr(std::string_view key) {
    std::erase_if(attrs_, [&](const auto& kv) { return kv.first == key; });
}

Element& Element::add(Element child) {
    Node n;
    n.element = std::make_unique<Element>(std::move(child));
    nodes_.push_back(std::move(n));
    return *nodes_.back().element;
}

Element& Element::text(std::string_view text) {
    if (text.empty()) {
        return *this;
    }
    if (!nodes_.empty() && nodes_.back().is_text()) {
        nodes_.back().text.append(text);
    } else {
        Node n;
        n.text.assign(text);
        nodes_.push_back(std::move(n));
    }
    return *this;
}

Element* Element::child(std::string_view name, std::string_view ns) {
    return find_child<Element>(nodes_, [&](const Element& e) {
        return e.name() == name && (ns.empty() || e.ns() == ns);
    });
}

const Element* Element::child(std::string_view name, std::string_view ns) const {
    return find_child<const Element>(nodes_, [&](const Element& e) {
        return e.name() == name && (ns.empty() || e.ns() == ns);
    });
}

const Element* Element::child_ns(std::string_view ns) const {
    return find_child<const Element>(nodes_, [&](const Element& e) { return e.ns() == ns; });
}

const Element* Element::first_child() const {
    return find_child<const Element>(nodes_, [](const Element&) { return true; });
}

Element* Element::first_child() {
    return find_child<Element>(nodes_, [](const Element&) { return true; });
}

std::string Element::child_text(std::string_view name, std::string_view ns) const {
    const Element* c = child(name, ns);
    return c ? c->text() : std::string();
}

std::vector<const Element*> Element::children(std::string_view name, std::string_view ns) const {
    std::vector<const Element*> out;
    for (const auto& n : nodes_) {
        if (n.element && matches(*n.element, name, ns)) {
            out.push_back(n.element.get());
        }
    }
    return out;
}

std::vector<Element*> Element::children(std::string_view name, std::string_view ns) {
    std::vector<Element*> out;
    for (auto& n : nodes_) {
        if (n.element && matches(*n.element, name, ns)) {
            out.push_back(n.element.get());
        }
    }
    return out;
}

std::size_t Element::remove_children(std::string_view name, std::string_view ns) {
    return std::erase_if(
        nodes_, [&](const Node& n) { return n.element && matches(*n.element, name, ns); });
}

std::string Element::text() const {
    std::string out;
    for (const auto& n : nodes_) {
        if (n.is_text()) {
            out += n.text;
        }
    }
    return out;
}

void append_escaped(std::string& out, std::string_view text) {
    append_with(out, text, attribute_table);
}

void serialize_to(std::string& out, const Element& e, std::string_view parent_ns) {
    // Children inherit whatever default namespace is in scope for this element: its own when it
    // declares one, the parent's when it is prefixed (stream:) or has no namespace of its own.
    std::string_view scope = parent_ns;
    const bool stream_prefixed = e.ns() == ns_streams;
    out += '<';
    if (stream_prefixed) {
        out += "stream:";
        out += e.name();
    } else {
        out += e.name();
        if (!e.ns().empty() && e.ns() != parent_ns) {
            out += " xmlns='";
            append_escaped(out, e.ns());
            out += '\'';
        }
        if (!e.ns().empty()) {
            scope = e.ns();
        }
    }
    append_attributes(out, e);
    if (e.nodes().empty()) {
        out += "/>";
        return;
    }
    out += '>';
    for (const auto& n : e.nodes()) {
        if (n.element) {
            serialize_to(out, *n.element, scope);
        } else {
            append_text(out, n.text);
        }
    }
    out += "</";
    if (stream_prefixed) {
        out += "stream:";
    }
    out += e.name();
    out += '>';
}

std::string serialize(const Element& e, std::string_view parent_ns) {
    std::string out;
    out.reserve(256);
    serialize_to(out, e, parent_ns);
    return out;
}

}  // namespace haven::xml
