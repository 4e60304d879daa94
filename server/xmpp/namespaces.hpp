// XML namespaces used across the server, named once (ns::client, ns::sasl, ...).
#pragma once

#include <string_view>

namespace haven::ns {
inline constexpr std::string_view client = "jabber:client";
inline constexpr std::string_view server = "jabber:server";
inline constexpr std::string_view streams = "http://etherx.jabber.org/streams";
inline constexpr std::string_view stream_errors = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr std::string_view stanza_errors = "urn:ietf:params:xml:ns:xmpp-stanzas";
inline constexpr std::string_view tls = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr std::string_view sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr std::string_view bind = "urn:ietf:params:xml:ns:xmpp-bind";
inline constexpr std::string_view session = "urn:ietf:params:xml:ns:xmpp-session";
inline constexpr std::string_view sasl_cb = "urn:xmpp:sasl-cb:0";
inline constexpr std::string_view xml = "http://www.w3.org/XML/1998/namespace";
inline constexpr std::string_view roster = "jabber:iq:roster";
inline constexpr std::string_view roster_ver = "urn:xmpp:features:rosterver";
inline constexpr std::string_view presence_pre_approval = "urn:xmpp:features:pre-approval";
inline constexpr std::string_view disco_info = "http://jabber.org/protocol/disco#info";
inline constexpr std::string_view disco_items = "http://jabber.org/protocol/disco#items";
inline constexpr std::string_view ping = "urn:xmpp:ping";
inline constexpr std::string_view version = "jabber:iq:version";
inline constexpr std::string_view vcard = "vcard-temp";
inline constexpr std::string_view private_xml = "jabber:iq:private";
inline constexpr std::string_view blocking = "urn:xmpp:blocking";
inline constexpr std::string_view blocking_errors = "urn:xmpp:blocking:errors";
inline constexpr std::string_view offline = "msgoffline";
inline constexpr std::string_view delay = "urn:xmpp:delay";
inline constexpr std::string_view register_ = "jabber:iq:register";
inline constexpr std::string_view register_feature = "http://jabber.org/features/iq-register";
inline constexpr std::string_view data_forms = "jabber:x:data";
inline constexpr std::string_view commands = "http://jabber.org/protocol/commands";
inline constexpr std::string_view nick = "http://jabber.org/protocol/nick";
inline constexpr std::string_view chatstates = "http://jabber.org/protocol/chatstates";
}  // namespace haven::ns
