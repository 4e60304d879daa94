// Stanza helpers: kinds, types, results and errors per RFC 6120 §8.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/xml/element.hpp"

namespace haven {

using xml::Element;

enum class StanzaKind { Message, Presence, Iq, Other };

StanzaKind kind_of(const Element& stanza);
std::string_view kind_name(StanzaKind kind);

// RFC 6120 §8.3.2: the error type follows from the condition unless a caller overrides it.
std::string_view default_error_type(std::string_view condition);

// True for stanzas that must never be answered with an error (errors themselves and IQ
// results), RFC 6120 §8.3.1.
bool is_error_or_result(const Element& stanza);

// Builds the error reply to `stanza`: addresses swapped, id kept, type="error" and an
// <error/> child with the defined condition and an optional human-readable text.
Element make_error(const Element& stanza, std::string_view condition, std::string_view text = {},
                   std::string_view lang = {}, std::string_view type = {});

// Builds <iq type='result'/> for an IQ get/set, addresses swapped, id kept.
Element make_result(const Element& iq);

// <stream:error> with a defined condition (RFC 6120 §4.9.3).
Element make_stream_error(std::string_view condition, std::string_view text = {});

// A UTC timestamp in XEP-0082 format (2026-11-23T05:25:50Z).
std::string xep82_datetime(long long unix_seconds);
// Parses a XEP-0082 DateTime ("Z" or a ±hh:mm offset; fractions of seconds ignored) to unix
// seconds; nullopt if it is not one.
std::optional<long long> parse_xep82_datetime(std::string_view text);

}  // namespace haven
