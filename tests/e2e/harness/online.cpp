// OnlineClient: a logged-in, available client for end-to-end tests.
#include "e2e/harness/online.hpp"

#include <doctest/doctest.h>

namespace haven::test {

void sync(TestClient& client, const TestServer& server) {
    auto pong = client.iq_roundtrip("<iq type='get' to='" + server.domain() +
                                    "'><ping xmlns='urn:xmpp:ping'/></iq>");
    REQUIRE_MESSAGE(pong, "no answer to a ping; server log:\n" << server.log_tail());
    REQUIRE(pong->type() == "result");
}

OnlineClient::OnlineClient(TestServer& s, const std::string& user, const std::string& password,
                           const std::string& resource, bool keep)
    : server(s), client(s, {.resource = resource}) {
    REQUIRE_MESSAGE(client.connect(server.jid(user), password), client.failure());
    REQUIRE(client.iq_roundtrip("<iq type='get' id='" + client.next_id() +
                                "'><query xmlns='jabber:iq:roster'/></iq>"));
    REQUIRE(client.send("<presence/>"));
    sync();
    if (!keep) {
        client.clear_received();
    }
}

void OnlineClient::say(const std::string& to, const std::string& body, const std::string& extra,
                       const std::string& attrs) {
    REQUIRE(client.send("<message to='" + to + "' type='chat' id='" + client.next_id() + "'" +
                        attrs + "><body>" + body + "</body>" + extra + "</message>"));
}

}  // namespace haven::test

namespace haven::test {
std::string error_condition(const Stanza& s) {
    if (s.type() != "error") {
        return {};
    }
    auto err = s.child("error");
    if (!err) {
        return {};
    }
    // Only RFC 6120 §8.3.3 conditions count: application-specific children (e.g. XEP-0191's
    // <blocked/>) live in other namespaces.
    for (const auto& c : err->children()) {
        if (c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text") {
            return c.name();
        }
    }
    return {};
}
}  // namespace haven::test
