// XEP-0050 Ad-Hoc Commands: a small registry other modules add commands to.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "server/core/router.hpp"
#include "server/xml/element.hpp"
#include "server/xmpp/jid.hpp"
// The data-form helpers commands build their forms with.
#include "xeps/xep0004_data_forms.hpp"

namespace haven::xeps {

using xml::Element;

// One step of a command: either a form to fill in (status executing) or a final note.
struct CommandStep {
    std::optional<Element> form;  // jabber:x:data form of type "form"
    std::string note;             // shown to the user when completed (or on error)
    bool error = false;           // the note describes a failure (note type='error')
};

struct AdHocCommand {
    std::string node;
    std::string name;
    // The entities that offer it: null for the server's own JID; set for commands that live
    // on other JIDs (a group room), which serve() then answers for.
    std::function<bool(const Jid& entity)> at;
    // Who may see and run it on `entity` (disco items are filtered by this too).
    std::function<bool(const Jid& requester, const Jid& entity)> allowed;
    // Called with no form on the first execute, with the submitted form afterwards.
    // `lang` is the requester's xml:lang for the texts it returns.
    std::function<CommandStep(const Jid& requester, const Jid& entity, const Element* submitted,
                              std::string_view lang)>
        run;
};

class CommandRegistry {
public:
    virtual ~CommandRegistry() = default;
    virtual void add(AdHocCommand command) = 0;
    virtual void remove(std::string_view node) = 0;
    // Answers disco#items (node=commands), disco#info on a command node and command execution
    // addressed to another entity than the server, for the module that serves that entity
    // (the MUC service for rooms). Flow::Continue when the IQ is none of these.
    virtual Flow serve(StanzaEvent& e) = 0;
};

}  // namespace haven::xeps
