// Incremental XMPP stream parser on Expat: RFC 6120 restricted XML, stanza size and depth caps.
#pragma once

#include <optional>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/xml/element.hpp"

struct XML_ParserStruct;  // expat.h's XML_Parser points at this; keeps Expat out of the header

namespace haven::xml {

// Each value maps onto one RFC 6120 §4.9.3 stream error condition.
enum class ParseError {
    None,
    NotWellFormed,        // <not-well-formed/>
    RestrictedXml,        // <restricted-xml/>: DTD, entity declaration, PI, comment (§11.1)
    PolicyViolation,      // <policy-violation/>: stanza too large or nested too deep
    InvalidNamespace,     // <invalid-namespace/>: root is not <stream> in ns_streams
    UnsupportedEncoding,  // <unsupported-encoding/>: anything but UTF-8 (§11.6)
};

// The stream's opening tag.
struct StreamHeader {
    std::string name;        // local name ("stream")
    std::string ns;          // resolved namespace (ns_streams)
    std::string default_ns;  // content namespace declared with xmlns= (e.g. "jabber:client")
    // to, from, id, version, "xml:lang"; namespaced attributes as "{uri}local".
    std::vector<std::pair<std::string, std::string>> attrs;

    // The value, or an empty view when absent.
    std::string_view attr(std::string_view key) const;
};

// Receives parse events. Callbacks must not call feed() on the same parser; reset() is allowed
// and takes effect once the current feed() returns.
class StreamHandler {
public:
    virtual ~StreamHandler() = default;
    virtual void on_stream_open(StreamHeader&& header) = 0;
    // Return false to stop parsing right after this stanza (e.g. STARTTLS/SASL success: the
    // stream restarts and remaining bytes must be discarded).
    virtual bool on_stanza(Element&& stanza) = 0;
    virtual void on_stream_close() = 0;
};

struct ParserLimits {
    // Bytes from a stanza's start tag to the end of its end tag, counting bytes not yet parsed.
    // The same cap bounds the stream header and any run of bytes between stanzas.
    std::size_t max_stanza_bytes = 262144;
    // Element nesting inside a stanza; the stanza element itself is depth 1.
    std::size_t max_depth = 32;
    // Elements in one stanza (the stanza itself included). Each parsed element costs about
    // 200 bytes of heap however few bytes it took on the wire (<a/> is four), so this, not the
    // byte cap, bounds the memory a stanza of tiny elements can make the server spend.
    std::size_t max_elements = 4096;
};

class StreamParser {
public:
    StreamParser(StreamHandler& handler, ParserLimits limits);
    ~StreamParser();
    StreamParser(const StreamParser&) = delete;
    StreamParser& operator=(const StreamParser&) = delete;

    // Parses more of the stream, delivering events as they complete. Returns None on success,
    // including when on_stanza() returned false: the rest of `data` is then discarded and later
    // feeds are ignored until reset(). After an error no more callbacks happen and every later
    // feed returns the same error. An exception thrown by a callback propagates out of feed()
    // and leaves the parser stopped.
    ParseError feed(std::string_view data);

    // True once on_stanza() returned false (or a callback threw) and until reset().
    bool stopped() const { return stopped_; }
    ParseError error() const { return error_; }
    // Short human-readable reason for the error; never contains input data.
    const std::string& error_text() const { return error_text_; }

    // Starts over for a new stream (after STARTTLS / SASL success): fresh Expat parser, all
    // state cleared, not hibernated. Limits are kept.
    void reset();

    // Most connections sit idle between stanzas, and an Expat parser costs about 10 KiB of
    // heap each. When the stream is at rest (header received, no stanza or partial token
    // buffered, not closed, failed or stopped, not inside feed()), this frees the Expat parser
    // and the per-stanza buffers; the next feed() rebuilds them by replaying the stream's
    // opening tag to a fresh parser, invisibly to the handler. Returns true if the parser is
    // now hibernated, false (changing nothing) if it is not at rest or its root's prefix is
    // ambiguous (several declarations bind the streams namespace).
    bool hibernate();
    bool hibernated() const { return !parser_; }

    void set_limits(ParserLimits limits) { limits_ = limits; }
    const ParserLimits& limits() const { return limits_; }

private:
    struct Callbacks;  // Expat trampolines, defined in the .cpp
    friend struct Callbacks;
    struct ExpatDeleter {
        void operator()(XML_ParserStruct* p) const noexcept;
    };

    void create_parser();
    void reserve_buffers();
    bool at_rest() const;
    void record_root_decl(const char* prefix, std::string_view uri);
    void finish_replay();
    void wake();
    XML_ParserStruct* p() const;
    void fail(ParseError error, std::string_view why);
    void halt();
    bool over_size(std::uint64_t end_offset) const;
    SharedString intern(std::string_view ns);

    StreamHandler& handler_;
    ParserLimits limits_;
    std::unique_ptr<XML_ParserStruct, ExpatDeleter> parser_;

    ParseError error_ = ParseError::None;
    std::string error_text_;
    bool halted_ = false;   // Expat told to stop: swallow the callbacks it still delivers
    bool stopped_ = false;  // stopped by on_stanza() returning false (or an exception)
    bool in_feed_ = false;
    bool in_parse_ = false;  // inside XML_Parse, where XML_StopParser is allowed
    bool reset_pending_ = false;
    bool stream_open_ = false;
    bool stream_closed_ = false;
    std::exception_ptr exception_;

    StreamHeader header_;
    Element stanza_;
    std::vector<Element*> stack_;  // open elements of the current stanza, stanza_ first
    std::size_t elements_ = 0;     // elements of the current stanza so far
    // Bytes the current stanza costs beyond its wire size: attribute keys "{uri}local" carry a
    // copy of their namespace URI each, so they count against the size cap.
    std::uint64_t expanded_ = 0;
    // Namespace URIs interned for this stream: every element of a namespace shares one copy.
    // Keys view the strings the values own. Complete for the stanza being parsed (a hostile
    // stanza cannot make it forget and re-copy), trimmed between stanzas.
    // Created on first use and freed by hibernate(): most connections are idle.
    std::unique_ptr<std::unordered_map<std::string_view, SharedString>> namespaces_;

    // Both count from the start of what the current Expat parser has seen (after waking from
    // hibernation: from the start of the replayed opening tag).
    std::uint64_t fed_ = 0;         // bytes handed to Expat
    std::uint64_t unit_start_ = 0;  // where the unfinished stanza (or inter-stanza run) began

    // "<prefix:stream xmlns...='...'>": what a fresh Expat parser must see to continue the
    // stream after hibernation. Empty if the stream cannot hibernate. While the header is
    // parsed it collects the root's namespace declarations, and these two find its prefix.
    std::string replay_;
    std::string stream_prefix_;            // prefix bound to ns_streams ("" = default namespace)
    unsigned stream_ns_declarations_ = 0;  // how many declarations bind ns_streams
};

// "<?xml version='1.0'?><stream:stream xmlns='CONTENT_NS' xmlns:stream='...' k='v'...>", escaped.
std::string serialize_stream_open(std::string_view content_ns,
                                  const std::vector<std::pair<std::string, std::string>>& attrs);

inline constexpr std::string_view stream_close_tag = "</stream:stream>";

}  // namespace haven::xml

namespace haven::xml {
// Parses one element serialised earlier by this server (stored vCards, offline stanzas,
// pending subscriptions) back into an Element, under the same restricted-XML rules as the
// network. `content_ns` is the default namespace it was written in. nullopt if malformed.
std::optional<Element> parse_fragment(std::string_view text,
                                      std::string_view content_ns = "jabber:client");
}  // namespace haven::xml
