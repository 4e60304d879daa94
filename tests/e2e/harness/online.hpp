// OnlineClient: a logged-in, available client that gets roster pushes — the usual start of an
// end-to-end test — plus sync(), the way tests wait without sleeping.
#pragma once

#include <string>

#include "e2e/harness/client.hpp"
#include "e2e/harness/server.hpp"

namespace haven::test {

// Every stanza of one stream is handled in order: once the server has answered this ping it
// has processed everything the client sent before it, and queued for this client whatever that
// caused, ahead of the ping result.
void sync(TestClient& client, const TestServer& server);

struct OnlineClient {
    // Logs in with `password`, requests the roster (to get pushes), sends initial presence and
    // syncs. Unless `keep`, what arrived during that (own presence, roster) is dropped; keep it
    // when the test expects offline messages, which are delivered right then.
    OnlineClient(TestServer& server, const std::string& user, const std::string& password,
                 const std::string& resource = "r1", bool keep = false);

    void sync() { haven::test::sync(client, server); }
    // Sends a chat message with a fresh id; `extra` is appended inside, `attrs` to the tag.
    void say(const std::string& to, const std::string& body, const std::string& extra = {},
             const std::string& attrs = {});

    TestServer& server;
    TestClient client;
};

}  // namespace haven::test

namespace haven::test {
// The defined condition of a stanza error ("" when the stanza is not an error).
std::string error_condition(const Stanza& s);
}  // namespace haven::test
