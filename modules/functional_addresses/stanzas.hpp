// Stanza helpers of the functional addresses: what crosses an address, and the texts' fill-in.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/core/texts.hpp"
#include "server/xml/element.hpp"

namespace haven::functional_addresses {

using xml::Element;

// A fresh stanza id (16 hex digits from libsodium).
std::string random_id();

using haven::fill;  // server/core/texts.hpp

std::string trim(std::string_view s);

// An inquiry token: 4 to 6 characters of [a-z0-9].
bool is_token(std::string_view t);

bool is_chat_state(const Element& child);

// The payloads that cross a functional address (README.md §10.2): <body/>, <thread/>, chat
// states, end-to-end encrypted payloads and out-of-band data. Everything else (a client's
// <nick/>, extended addresses, receipts, markers, invitations, ...) stays behind.
bool is_forwarded(const Element& child);

// Copies the forwarded payloads of `from` (and its xml:lang) into `to`. A forwarded payload other
// than <body/> whose serialised form contains one of `hide` (the supporters' JIDs) is dropped.
void copy_payload(const Element& from, Element& to, const std::vector<std::string>& hide);

// <message type='chat'/> with a fresh id.
Element chat_message(const std::string& from, const std::string& to);
// A chat message the module writes itself (auto-reply, notice, command answer): xml:lang `lang`,
// then a XEP-0172 <nick/> when `nick_name` is given, then the body.
Element text_message(const std::string& from, const std::string& to, std::string_view lang,
                     std::string_view body, std::string_view nick_name = {});
Element presence(std::string_view type, const std::string& from, const std::string& to);
// XEP-0172 <nick/>.
Element nick(const std::string& name);

// Reads back an element stored with xml::serialize (a vCard in the key-value store).
std::optional<Element> parse_stored(std::string_view text);

}  // namespace haven::functional_addresses
