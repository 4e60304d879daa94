// Incremental XMPP stream parser on Expat: RFC 6120 §11 restricted XML, size and depth caps.
#include "server/xml/stream_parser.hpp"

#include <expat.h>

#include <algorithm>
#include <new>
#include <utility>

namespace expat_compat {
// Chosen only when expat.h lacks XML_SetReparseDeferralEnabled (Expat < 2.6 without a distro
// backport): a non-template declaration from expat.h always wins overload resolution.
template <typename Parser>
XML_Bool XML_SetReparseDeferralEnabled(Parser, XML_Bool) {
    return XML_FALSE;
}
}  // namespace expat_compat

namespace haven::xml {

namespace {

// Expat joins namespace URI and local name with this. U+0001 is not allowed anywhere in an
// XML 1.0 document, so it can never be confused with a character of either part.
constexpr char separator = '\x01';

// Expat is fed at most this much per call: the size cap is checked between slices, so a
// never-closing stanza is caught after at most one slice, and lengths always fit Expat's int.
constexpr std::size_t slice_bytes = 65536;

struct ExpandedName {
    std::string_view ns;
    std::string_view local;
};

ExpandedName split_name(const XML_Char* name) {
    const std::string_view s(name);
    const auto pos = s.find(separator);
    if (pos == std::string_view::npos) {
        return {{}, s};
    }
    return {s.substr(0, pos), s.substr(pos + 1)};
}

// The key an attribute is stored under: "local", "xml:local", or "{uri}local".
std::string attribute_key(const XML_Char* expat_name) {
    const auto [ns, local] = split_name(expat_name);
    std::string key;
    if (ns.empty()) {
        key.assign(local);
    } else if (ns == ns_xml) {
        key.reserve(4 + local.size());
        key += "xml:";
        key += local;
    } else {
        key.reserve(ns.size() + local.size() + 2);
        key += '{';
        key += ns;
        key += '}';
        key += local;
    }
    return key;
}

std::size_t count_attributes(const XML_Char** atts) {
    std::size_t n = 0;
    while (atts[2 * n] != nullptr) {
        ++n;
    }
    return n;
}

bool is_xml_whitespace(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

bool iequals_ascii(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c + 32) : c; };
               return lower(x) == lower(y);
           });
}

// Frees a container's heap storage: clear() and move-assigning an empty value may keep it.
template <typename T>
void release(T& value) {
    T empty;
    std::swap(value, empty);
}

ParseError map_expat_error(XML_Error code) {
    switch (code) {
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
        return ParseError::UnsupportedEncoding;
    case XML_ERROR_NO_MEMORY:
    case XML_ERROR_AMPLIFICATION_LIMIT_BREACH:
        return ParseError::PolicyViolation;
    default:
        return ParseError::NotWellFormed;
    }
}

}  // namespace

std::string_view StreamHeader::attr(std::string_view key) const {
    for (const auto& [k, v] : attrs) {
        if (k == key) {
            return v;
        }
    }
    return {};
}

// Static Expat callbacks. Each one ignores events once the parser was told to stop (Expat may
// still deliver a few, e.g. the end of an empty element), and no exception ever unwinds through
// Expat's C frames: it is parked and rethrown by feed().
struct StreamParser::Callbacks {
    static StreamParser& self(void* user_data) { return *static_cast<StreamParser*>(user_data); }

    static std::uint64_t event_end(XML_Parser p) {
        return static_cast<std::uint64_t>(XML_GetCurrentByteIndex(p)) +
               static_cast<std::uint64_t>(XML_GetCurrentByteCount(p));
    }

    template <typename Fn>
    static void guarded(StreamParser& sp, Fn&& fn) {
        if (sp.halted_) {
            return;
        }
        try {
            fn();
        } catch (...) {
            sp.exception_ = std::current_exception();
            sp.halt();
        }
    }

    static void XMLCALL start_element(void* ud, const XML_Char* name, const XML_Char** atts) {
        StreamParser& sp = self(ud);
        guarded(sp, [&] {
            if (!sp.stream_open_) {
                open_stream(sp, name, atts);
                return;
            }
            const auto [ns, local] = split_name(name);
            Element* e = nullptr;
            if (sp.stack_.empty()) {
                // A new stanza: its size is counted from its start tag.
                sp.unit_start_ = static_cast<std::uint64_t>(XML_GetCurrentByteIndex(sp.p()));
                sp.elements_ = 1;
                sp.expanded_ = 0;
                if (sp.namespaces_ && sp.namespaces_->size() > 32) {
                    sp.namespaces_->clear();  // only between stanzas, see namespaces_
                }
                sp.stanza_ = Element(std::string(local), sp.intern(ns));
                e = &sp.stanza_;
            } else {
                // The caps hold inside Expat's callbacks, not only between reads, so one read
                // can never build more than the limits allow.
                if (sp.stack_.size() >= sp.limits_.max_depth) {
                    sp.fail(ParseError::PolicyViolation, "stanza nested too deeply");
                    return;
                }
                if (++sp.elements_ > sp.limits_.max_elements) {
                    sp.fail(ParseError::PolicyViolation, "too many elements in a stanza");
                    return;
                }
                if (sp.over_size(event_end(sp.p()))) {
                    sp.fail(ParseError::PolicyViolation, "stanza too large");
                    return;
                }
                // Built in place in the parent: children live behind unique_ptr, so the
                // pointers on the stack stay valid while siblings are appended.
                Node node;
                node.element = std::make_unique<Element>(std::string(local), sp.intern(ns));
                e = node.element.get();
                sp.stack_.back()->nodes().push_back(std::move(node));
            }
            if (atts[0] != nullptr) {
                e->reserve_attrs(count_attributes(atts));
                for (std::size_t i = 0; atts[i] != nullptr; i += 2) {
                    std::string key = attribute_key(atts[i]);
                    if (key.front() == '{') {
                        sp.expanded_ += key.size();
                    }
                    e->append_attr(std::move(key), std::string(atts[i + 1]));
                }
                if (sp.expanded_ != 0 && sp.over_size(event_end(sp.p()))) {
                    sp.fail(ParseError::PolicyViolation, "stanza too large");
                    return;
                }
            }
            sp.stack_.push_back(e);
        });
    }

    static void open_stream(StreamParser& sp, const XML_Char* name, const XML_Char** atts) {
        const auto [ns, local] = split_name(name);
        // RFC 6120 §4.8.1: a wrong stream namespace (or root) is <invalid-namespace/>.
        if (ns != ns_streams || local != "stream") {
            sp.fail(ParseError::InvalidNamespace, "root element is not <stream> in the streams "
                                                  "namespace");
            return;
        }
        sp.header_.name.assign(local);
        sp.header_.ns.assign(ns);
        for (std::size_t i = 0; atts[i] != nullptr; i += 2) {
            sp.header_.attrs.emplace_back(attribute_key(atts[i]), atts[i + 1]);
        }
        sp.stream_open_ = true;
        sp.unit_start_ = event_end(sp.p());
        // Only the root's declarations matter (for the header and the hibernation replay);
        // stop paying for the callback.
        XML_SetStartNamespaceDeclHandler(sp.p(), nullptr);
        sp.finish_replay();
        sp.handler_.on_stream_open(std::move(sp.header_));
    }

    static void XMLCALL end_element(void* ud, const XML_Char*) {
        StreamParser& sp = self(ud);
        guarded(sp, [&] {
            if (sp.stack_.empty()) {
                // The root closed: </stream:stream>.
                sp.stream_closed_ = true;
                sp.unit_start_ = event_end(sp.p());
                sp.handler_.on_stream_close();
                return;
            }
            sp.stack_.pop_back();
            if (!sp.stack_.empty()) {
                return;
            }
            const std::uint64_t end = event_end(sp.p());
            if (sp.over_size(end)) {
                sp.fail(ParseError::PolicyViolation, "stanza too large");
                return;
            }
            sp.unit_start_ = end;
            sp.expanded_ = 0;
            if (!sp.handler_.on_stanza(std::move(sp.stanza_)) && !sp.halted_) {
                sp.stopped_ = true;
                sp.halt();
            }
        });
    }

    static void XMLCALL character_data(void* ud, const XML_Char* s, int len) {
        StreamParser& sp = self(ud);
        guarded(sp, [&] {
            const std::string_view text(s, static_cast<std::size_t>(len));
            if (!sp.stack_.empty()) {
                if (sp.over_size(event_end(sp.p()))) {
                    sp.fail(ParseError::PolicyViolation, "stanza too large");
                    return;
                }
                sp.stack_.back()->text(text);
                return;
            }
            // Between stanzas only whitespace keepalives (RFC 6120 §4.6.1) are allowed.
            if (!is_xml_whitespace(text)) {
                sp.fail(ParseError::NotWellFormed, "character data between stanzas");
                return;
            }
            sp.unit_start_ = event_end(sp.p());
        });
    }

    static void XMLCALL namespace_decl(void* ud, const XML_Char* prefix, const XML_Char* uri) {
        StreamParser& sp = self(ud);
        guarded(sp, [&] {
            if (sp.stream_open_) {
                return;
            }
            // Expat passes a null URI for xmlns='' (undeclaring the default namespace).
            const std::string_view value = uri != nullptr ? uri : "";
            if (prefix == nullptr) {
                sp.header_.default_ns.assign(value);
            }
            sp.record_root_decl(prefix, value);
        });
    }

    static void XMLCALL xml_decl(void* ud, const XML_Char*, const XML_Char* encoding, int) {
        StreamParser& sp = self(ud);
        guarded(sp, [&] {
            // RFC 6120 §11.6: UTF-8 only. The parser is forced to UTF-8 anyway; a different
            // declaration means the peer would be sending something we would misread.
            if (encoding != nullptr && !iequals_ascii(encoding, "UTF-8")) {
                sp.fail(ParseError::UnsupportedEncoding, "encoding other than UTF-8 declared");
            }
        });
    }

    // RFC 6120 §11.1: no DTDs, entity declarations, processing instructions or comments.
    static void XMLCALL doctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
        self(ud).fail(ParseError::RestrictedXml, "document type declaration");
    }

    static void XMLCALL entity_decl(void* ud, const XML_Char*, int, const XML_Char*, int,
                                    const XML_Char*, const XML_Char*, const XML_Char*,
                                    const XML_Char*) {
        self(ud).fail(ParseError::RestrictedXml, "entity declaration");
    }

    static void XMLCALL processing_instruction(void* ud, const XML_Char*, const XML_Char*) {
        self(ud).fail(ParseError::RestrictedXml, "processing instruction");
    }

    static void XMLCALL comment(void* ud, const XML_Char*) {
        self(ud).fail(ParseError::RestrictedXml, "comment");
    }

    static void XMLCALL skipped_entity(void* ud, const XML_Char*, int) {
        self(ud).fail(ParseError::NotWellFormed, "reference to an undefined entity");
    }
};

void StreamParser::ExpatDeleter::operator()(XML_ParserStruct* p) const noexcept {
    XML_ParserFree(p);
}

StreamParser::StreamParser(StreamHandler& handler, ParserLimits limits)
    : handler_(handler), limits_(limits) {
    reserve_buffers();
    create_parser();
}

StreamParser::~StreamParser() = default;

XML_Parser StreamParser::p() const {
    return parser_.get();
}

void StreamParser::create_parser() {
    // The encoding argument overrides any declaration in the document (RFC 6120 §11.6).
    XML_Parser p = XML_ParserCreateNS("UTF-8", separator);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    parser_.reset(p);
    XML_SetUserData(p, this);
    XML_SetElementHandler(p, &Callbacks::start_element, &Callbacks::end_element);
    XML_SetCharacterDataHandler(p, &Callbacks::character_data);
    XML_SetStartNamespaceDeclHandler(p, &Callbacks::namespace_decl);
    XML_SetXmlDeclHandler(p, &Callbacks::xml_decl);
    XML_SetStartDoctypeDeclHandler(p, &Callbacks::doctype);
    XML_SetEntityDeclHandler(p, &Callbacks::entity_decl);
    XML_SetProcessingInstructionHandler(p, &Callbacks::processing_instruction);
    XML_SetCommentHandler(p, &Callbacks::comment);
    XML_SetSkippedEntityHandler(p, &Callbacks::skipped_entity);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
    // Reparse deferral (Expat 2.6, backported by some distros) holds back a large partial token
    // until about as many bytes again arrive, which would stall a complete stanza on an
    // interactive stream. The quadratic reparsing it guards against is bounded here by the
    // stanza size cap and the slice size.
    using namespace ::expat_compat;
    XML_SetReparseDeferralEnabled(p, XML_FALSE);
}

void StreamParser::reserve_buffers() {
    stack_.reserve(limits_.max_depth + 1);
    // Reasons are short static strings; with room reserved, fail() never allocates inside an
    // Expat callback, where an exception must not escape.
    error_text_.reserve(128);
}

void StreamParser::record_root_decl(const char* prefix, std::string_view uri) {
    replay_ += prefix != nullptr ? " xmlns:" : " xmlns";
    if (prefix != nullptr) {
        replay_ += prefix;
    }
    replay_ += "='";
    append_escaped(replay_, uri);
    replay_ += '\'';
    if (uri == ns_streams) {
        ++stream_ns_declarations_;
        stream_prefix_.assign(prefix != nullptr ? prefix : "");
    }
}

bool StreamParser::over_size(std::uint64_t end_offset) const {
    return end_offset - unit_start_ + expanded_ > limits_.max_stanza_bytes;
}

SharedString StreamParser::intern(std::string_view ns) {
    if (ns.empty()) {
        return {};
    }
    if (!namespaces_) {
        namespaces_ = std::make_unique<std::unordered_map<std::string_view, SharedString>>();
    }
    if (auto it = namespaces_->find(ns); it != namespaces_->end()) {
        return it->second;
    }
    SharedString s{std::string(ns)};
    namespaces_->emplace(std::string_view(s.str()), s);
    return s;
}

void StreamParser::finish_replay() {
    // XML_ParserCreateNS does not report the root's prefix, but the root is in ns_streams and
    // nothing encloses it, so a single declaration binding ns_streams must be the one it uses.
    // With several, guessing wrong would break </stream:stream>: such a stream never hibernates.
    if (stream_ns_declarations_ == 1) {
        std::string tag;
        tag.reserve(stream_prefix_.size() + replay_.size() + 9);
        tag += '<';
        if (!stream_prefix_.empty()) {
            tag += stream_prefix_;
            tag += ':';
        }
        tag += "stream";
        tag += replay_;
        tag += '>';
        replay_ = std::move(tag);
    } else {
        release(replay_);
    }
    release(stream_prefix_);
    stream_ns_declarations_ = 0;
}

bool StreamParser::at_rest() const {
    // The callbacks move unit_start_ to the end of every completed stanza and whitespace run,
    // so fed_ == unit_start_ means Expat consumed every byte: no partial token (not even a
    // trailing CR it keeps to see whether LF follows) is waiting in its buffer.
    return stream_open_ && !stream_closed_ && error_ == ParseError::None && !stopped_ && !halted_ &&
           !in_feed_ && !reset_pending_ && stack_.empty() && fed_ == unit_start_ &&
           !replay_.empty();
}

bool StreamParser::hibernate() {
    if (hibernated()) {
        return true;
    }
    if (!at_rest()) {
        return false;
    }
    parser_.reset();
    // Rebuilt (or reserved again) by wake() before Expat runs.
    release(stack_);
    release(error_text_);
    release(stanza_);
    release(header_);
    namespaces_.reset();
    return true;
}

void StreamParser::wake() {
    reserve_buffers();
    create_parser();
    // Replaying the opening tag gives the fresh parser the same namespace context and the same
    // open root, so what follows parses (and fails) exactly as before. The handler saw this tag
    // already: no callback may see it again.
    XML_SetStartNamespaceDeclHandler(p(), nullptr);
    XML_SetStartElementHandler(p(), nullptr);
    const XML_Status status =
        XML_Parse(p(), replay_.data(), static_cast<int>(replay_.size()), XML_FALSE);
    XML_SetStartElementHandler(p(), &Callbacks::start_element);
    if (status == XML_STATUS_ERROR) {
        // Only out of memory can get here: the tag was built from what Expat accepted.
        const XML_Error code = XML_GetErrorCode(p());
        fail(map_expat_error(code), XML_ErrorString(code));
    }
    // Offsets restart with this parser; the replayed bytes are not part of any stanza.
    fed_ = replay_.size();
    unit_start_ = fed_;
}

void StreamParser::halt() {
    if (halted_) {
        return;
    }
    halted_ = true;
    // XML_StopParser is only valid from inside a callback; outside, not calling Expat again is
    // enough.
    if (in_parse_) {
        XML_StopParser(parser_.get(), XML_FALSE);
    }
}

void StreamParser::fail(ParseError error, std::string_view why) {
    if (error_ != ParseError::None || halted_) {
        return;
    }
    error_ = error;
    error_text_.assign(why);
    halt();
}

ParseError StreamParser::feed(std::string_view data) {
    if (error_ != ParseError::None) {
        return error_;
    }
    if (stopped_) {
        return ParseError::None;
    }
    if (hibernated() && !data.empty()) {
        wake();
        if (error_ != ParseError::None) {
            return error_;
        }
    }
    in_feed_ = true;
    while (!data.empty() && !halted_) {
        const std::size_t n = std::min(data.size(), slice_bytes);
        in_parse_ = true;
        const XML_Status status = XML_Parse(parser_.get(), data.data(), static_cast<int>(n),
                                            XML_FALSE);
        in_parse_ = false;
        fed_ += n;
        data.remove_prefix(n);
        if (status == XML_STATUS_ERROR && !halted_) {
            // Expat's own error (ours arrive as XML_ERROR_ABORTED with halted_ set).
            const XML_Error code = XML_GetErrorCode(parser_.get());
            fail(map_expat_error(code), XML_ErrorString(code));
        }
        // Bytes not yet part of a finished stanza count against the cap even while Expat is
        // still buffering them, so a stanza that never closes is caught too.
        if (!halted_ && !stream_closed_ && over_size(fed_)) {
            fail(ParseError::PolicyViolation, stream_open_ ? "stanza too large"
                                                           : "stream header too large");
        }
    }
    in_feed_ = false;
    if (reset_pending_) {
        reset();
    }
    if (exception_) {
        if (halted_) {
            stopped_ = true;
        }
        std::rethrow_exception(std::exchange(exception_, nullptr));
    }
    return error_;
}

void StreamParser::reset() {
    if (in_feed_) {
        // Called from a callback: Expat is on the stack, so finish the swap when feed() returns.
        reset_pending_ = true;
        halt();
        return;
    }
    reserve_buffers();
    create_parser();
    error_ = ParseError::None;
    error_text_.clear();
    halted_ = false;
    stopped_ = false;
    reset_pending_ = false;
    stream_open_ = false;
    stream_closed_ = false;
    header_ = StreamHeader{};
    stanza_ = Element{};
    stack_.clear();
    elements_ = 0;
    expanded_ = 0;
    namespaces_.reset();
    fed_ = 0;
    unit_start_ = 0;
    release(replay_);
    release(stream_prefix_);
    stream_ns_declarations_ = 0;
}

std::string serialize_stream_open(std::string_view content_ns,
                                  const std::vector<std::pair<std::string, std::string>>& attrs) {
    std::string out;
    out.reserve(160 + content_ns.size());
    out += "<?xml version='1.0'?><stream:stream xmlns='";
    append_escaped(out, content_ns);
    out += "' xmlns:stream='";
    out += ns_streams;
    out += '\'';
    for (const auto& [key, value] : attrs) {
        out += ' ';
        out += key;
        out += "='";
        append_escaped(out, value);
        out += '\'';
    }
    out += '>';
    return out;
}

}  // namespace haven::xml

namespace haven::xml {

std::optional<Element> parse_fragment(std::string_view text, std::string_view content_ns) {
    struct One final : StreamHandler {
        std::optional<Element> out;
        void on_stream_open(StreamHeader&&) override {}
        bool on_stanza(Element&& e) override {
            out = std::move(e);
            return false;  // one element only
        }
        void on_stream_close() override {}
    } one;
    // Our own data: no tighter limits than the largest configurable ones it was accepted under.
    // Namespaced attribute keys expand beyond the text (see expanded_); the network caps that
    // bounded that expansion allow at most 16 MiB.
    StreamParser parser(one, {.max_stanza_bytes = text.size() + 16 * 1024 * 1024,
                              .max_depth = 256,
                              .max_elements = text.size() + 1});
    if (parser.feed(serialize_stream_open(content_ns, {})) != ParseError::None ||
        parser.feed(text) != ParseError::None) {
        return std::nullopt;
    }
    return std::move(one.out);
}

}  // namespace haven::xml
