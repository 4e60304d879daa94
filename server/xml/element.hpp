// Element: the canonical in-memory form of a stanza (name, namespace, ordered attributes, children).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace haven::xml {

// RFC 6120 §4.8.1: the stream namespace; elements in it are written with the "stream:" prefix.
inline constexpr std::string_view ns_streams = "http://etherx.jabber.org/streams";
// The namespace bound to the reserved "xml" prefix (xml:lang, xml:id).
inline constexpr std::string_view ns_xml = "http://www.w3.org/XML/1998/namespace";

class Element;

// An immutable string shared by reference: a stanza's elements repeat the same few namespace
// URIs, and the parser hands every element of one namespace the same copy (interned per
// stream), so 30,000 elements in a 7,000-character namespace cost one copy of it, not 30,000.
// Copying is a reference-count increment; the empty string holds nothing.
class SharedString {
public:
    SharedString() = default;
    explicit SharedString(std::string s) : s_(s.empty() ? nullptr : share(std::move(s))) {}
    const std::string& str() const { return s_ ? *s_ : empty_string(); }
    bool empty() const { return !s_; }

private:
    // The process-wide copy of a namespace nearly every stanza carries (jabber:client, the
    // stanza-error namespace, ...), else a new one: building <error/> or storing a session's
    // last presence allocates nothing for its namespace.
    static std::shared_ptr<const std::string> share(std::string s);
    static const std::string& empty_string() {
        static const std::string empty;
        return empty;
    }
    std::shared_ptr<const std::string> s_;
};

// A child node is either an element or a run of character data. Text nodes keep their
// position so that mixed content (e.g. XHTML-IM) round-trips unchanged.
struct Node {
    std::unique_ptr<Element> element;  // set for element nodes
    std::string text;                  // used when element is null

    bool is_text() const { return !element; }
};

// Attributes are stored by their qualified name as they should be serialised. The only
// prefixed attribute names a stanza normally carries are "xml:lang" and "xml:id"; other
// namespaced attributes are stored as "{namespace-uri}local" and the serializer declares a
// prefix for them.
class Element {
public:
    Element() = default;
    explicit Element(std::string name, std::string ns = {});
    // With an interned namespace (the parser's way): no copy of the URI.
    Element(std::string name, SharedString ns) : name_(std::move(name)), ns_(std::move(ns)) {}
    Element(const Element& other);
    Element& operator=(const Element& other);
    Element(Element&&) noexcept = default;
    Element& operator=(Element&&) noexcept = default;
    ~Element() = default;

    const std::string& name() const { return name_; }
    const std::string& ns() const { return ns_.str(); }
    const SharedString& shared_ns() const { return ns_; }
    void set_name(std::string name) { name_ = std::move(name); }
    void set_ns(std::string ns) { ns_ = SharedString(std::move(ns)); }
    void set_ns(SharedString ns) { ns_ = std::move(ns); }

    // --- attributes ---
    // Returns the value, or an empty view when absent.
    std::string_view attr(std::string_view key) const;
    const std::string* find_attr(std::string_view key) const;
    bool has_attr(std::string_view key) const { return find_attr(key) != nullptr; }
    // Sets (replacing an existing value); returns *this for chaining.
    Element& attr(std::string_view key, std::string value);
    // Appends without looking for an existing key: for the parser, where Expat has already
    // rejected duplicate attributes.
    void append_attr(std::string key, std::string value) {
        attrs_.emplace_back(std::move(key), std::move(value));
    }
    void reserve_attrs(std::size_t n) { attrs_.reserve(n); }
    void remove_attr(std::string_view key);
    const std::vector<std::pair<std::string, std::string>>& attrs() const { return attrs_; }

    // --- children ---
    // Appends a child element and returns a reference to the stored copy.
    Element& add(Element child);
    // Appends character data (merged with a preceding text node).
    Element& text(std::string_view text);
    // Builder form: appends a child and returns *this.
    Element& with(Element child) {
        add(std::move(child));
        return *this;
    }

    // First child element with this name and namespace; an empty ns matches any namespace.
    Element* child(std::string_view name, std::string_view ns = {});
    const Element* child(std::string_view name, std::string_view ns = {}) const;
    // First child element in a namespace, whatever its name (e.g. the payload of an IQ).
    const Element* child_ns(std::string_view ns) const;
    // First child element of any name/namespace.
    const Element* first_child() const;
    Element* first_child();
    // Text of the first matching child, or empty.
    std::string child_text(std::string_view name, std::string_view ns = {}) const;
    // All matching child elements (empty name matches any name, empty ns any namespace).
    std::vector<const Element*> children(std::string_view name = {}, std::string_view ns = {}) const;
    std::vector<Element*> children(std::string_view name = {}, std::string_view ns = {});
    // Removes all matching child elements; returns how many were removed.
    std::size_t remove_children(std::string_view name, std::string_view ns = {});
    void clear_children() { nodes_.clear(); }

    // Concatenated direct character data.
    std::string text() const;
    const std::vector<Node>& nodes() const { return nodes_; }
    std::vector<Node>& nodes() { return nodes_; }

private:
    std::string name_;
    SharedString ns_;
    std::vector<std::pair<std::string, std::string>> attrs_;
    std::vector<Node> nodes_;
};

// Serialises an element. `parent_ns` is the default namespace in scope where the element is
// written: an element whose namespace equals it gets no xmlns attribute (so stanzas written
// inside a jabber:client stream come out as plain <message>). An element with an empty
// namespace also gets none, i.e. it inherits its parent's, so builders can write
// Element("body") inside a message. Elements in ns_streams are written as <stream:name> with
// no declaration (the stream header binds the prefix). All escaping happens here; C0 control
// characters that XML 1.0 cannot represent are dropped rather than producing broken XML.
std::string serialize(const Element& e, std::string_view parent_ns = {});
void serialize_to(std::string& out, const Element& e, std::string_view parent_ns = {});

// Escapes character data / attribute values per XML 1.0 (& < > " ', plus tab/CR/LF as
// character references so attribute values survive attribute-value normalisation).
void append_escaped(std::string& out, std::string_view text);

}  // namespace haven::xml
