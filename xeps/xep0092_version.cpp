// XEP-0092: Software Version — the server's name and version; the OS only when the admin opts in.
#include <sys/utsname.h>

#include <string>

#include "server/core/module.hpp"
#include "server/core/router.hpp"
#include "server/xmpp/namespaces.hpp"

#ifndef HAVEN_VERSION
#define HAVEN_VERSION "0.1.0"  // keep in step with project(haven VERSION ...) in CMakeLists.txt
#endif

namespace haven::xeps {
namespace {

// XEP-0092 §2 and §5: the OS tells an attacker which exploits to try, so it is off by default.
std::string os_name() {
    struct utsname u {};
    if (::uname(&u) != 0) {
        return {};
    }
    return std::string(u.sysname) + " " + u.release;
}

void load(ModuleContext& m) {
    std::string os = m.opt_bool("show_os") ? os_name() : std::string();
    m.add_feature(std::string(ns::version));
    m.hook_iq(IqType::Get, Target::Host, ns::version, [os](StanzaEvent& e) {
        // The hook is keyed by namespace: only <query/> asks for the version (XEP-0092 §2).
        if (!e.stanza.child("query", ns::version)) {
            e.reply_error("bad-request", "expected <query xmlns='jabber:iq:version'/>");
            return Flow::Stop;
        }
        auto result = make_result(e.stanza);
        auto& query = result.add(Element("query", std::string(ns::version)));
        query.add(Element("name", std::string(ns::version))).text("Haven");
        query.add(Element("version", std::string(ns::version))).text(HAVEN_VERSION);
        if (!os.empty()) {
            query.add(Element("os", std::string(ns::version))).text(os);
        }
        e.reply(std::move(result));
        return Flow::Stop;
    });
}

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(version, haven::xeps::load)
