// Scanner: a tiny incremental XMPP stream splitter for the load generator (not a validating parser).
//
// It finds the stream header, complete top-level stanzas and the stream close in a byte stream
// that arrives in arbitrary pieces (partial reads, TLS record boundaries). It understands just
// enough XML for well-formed server output: tags, quoted attribute values (which may contain '>'),
// processing instructions, comments and CDATA. Servers are trusted here: this is a bench tool.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace bench {

struct ScanEvent {
    enum class Kind { StreamOpen, Element, StreamClose };
    Kind kind = Kind::Element;
    std::string_view xml;   // the whole element (or the stream header tag)
    std::string_view name;  // local name, prefix stripped ("features" for <stream:features>)
};

class Scanner {
public:
    // Appends bytes; then call next() until it returns false, then compact().
    void append(std::string_view data) { buf_.append(data); }
    // The next complete event; views stay valid until append()/compact()/clear().
    bool next(ScanEvent& ev);
    // A stream restart (after STARTTLS or SASL success): depth 0, unread bytes kept.
    void restart() {
        depth_ = 0;
        in_element_ = false;
    }
    // Drops everything (plaintext after <proceed/> must never be used).
    void clear() {
        buf_.clear();
        pos_ = 0;
        start_ = 0;
        restart();
    }
    // Releases consumed bytes; shrinks a buffer that grew for a burst.
    void compact();
    std::size_t buffered() const { return buf_.size(); }

private:
    std::string buf_;
    std::size_t pos_ = 0;    // next byte to scan
    std::size_t start_ = 0;  // start of the top-level element being collected
    int depth_ = 0;          // 0 before the header, 1 inside the stream, 2+ inside a stanza
    bool in_element_ = false;
};

// Helpers over one complete element's text.
// The value of attribute `name` on the element's opening tag ("" if absent).
std::string_view tag_attr(std::string_view xml, std::string_view name);
// The text of the first descendant <name ...>text</name> ("" if absent or empty).
std::string_view child_text(std::string_view xml, std::string_view name);
// Whether a descendant element <name ...> exists.
bool has_child(std::string_view xml, std::string_view name);
// The element's own text content between its opening tag and the first '<' after it.
std::string_view own_text(std::string_view xml);

}  // namespace bench
