// Fuzz harness: bytes -> xml::StreamParser, split at points derived from the input, with a
// handler that serialises every stanza and parses it back (xml::serialize / parse_fragment), so
// serializer and escaping bugs show up as well as parser ones.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>

#include "server/xml/stream_parser.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace {

using haven::xml::Element;

class RoundTrip final : public haven::xml::StreamHandler {
public:
    explicit RoundTrip(bool stop_after_stanzas) : stop_(stop_after_stanzas) {}

    void on_stream_open(haven::xml::StreamHeader&& header) override {
        // Touch what a session reads from the header.
        std::string opened = haven::xml::serialize_stream_open(header.default_ns, header.attrs);
        sink_ += opened.size() + header.attr("to").size();
    }

    bool on_stanza(Element&& stanza) override {
        // What the server would write: the stanza inside a jabber:client stream.
        const std::string once = haven::xml::serialize(stanza, "jabber:client");
        auto again = haven::xml::parse_fragment(once, "jabber:client");
        if (!again) {
            std::fprintf(stderr, "fuzz_stream: serialised stanza does not parse back:\n%s\n",
                         once.c_str());
            std::abort();
        }
        // Serialising is a function of the element: the reparsed copy must come out the same.
        const std::string twice = haven::xml::serialize(*again, "jabber:client");
        if (twice != once) {
            std::fprintf(stderr, "fuzz_stream: serialisation is not stable:\n%s\n%s\n",
                         once.c_str(), twice.c_str());
            std::abort();
        }
        Element copy = stanza;  // the copy constructor walks the tree too
        sink_ += copy.attrs().size() + copy.nodes().size();
        ++stanzas_;
        return !stop_;
    }

    void on_stream_close() override { ++closes_; }

    std::size_t stanzas_ = 0;
    std::size_t closes_ = 0;
    std::size_t sink_ = 0;

private:
    bool stop_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    haven::fuzz::Splitter split(input);
    const std::uint64_t flags = split.next();
    // Small caps so that inputs of a few KiB reach the size and depth limits.
    haven::xml::ParserLimits limits;
    limits.max_stanza_bytes = 512 + (flags & 0xfff);
    limits.max_depth = 4 + ((flags >> 12) % 29);
    const bool hibernate = (flags >> 20) & 1;
    const bool restart = (flags >> 21) & 1;  // like STARTTLS / SASL success: stop, reset, go on

    RoundTrip handler(restart);
    haven::xml::StreamParser parser(handler, limits);
    std::size_t at = 0;
    while (at < input.size()) {
        const std::size_t n = split.chunk(input.size() - at);
        const auto err = parser.feed(input.substr(at, n));
        at += n;
        if (err != haven::xml::ParseError::None) {
            break;
        }
        if (parser.stopped()) {
            parser.reset();
        } else if (hibernate) {
            parser.hibernate();
        }
    }
    return 0;
}
