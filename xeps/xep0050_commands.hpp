// XEP-0050 Ad-Hoc Commands: a small registry other modules add commands to.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

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
    // Who may see and run it (disco items are filtered by this too).
    std::function<bool(const Jid& requester)> allowed;
    // Called with no form on the first execute, with the submitted form afterwards.
    // `lang` is the requester's xml:lang for the texts it returns.
    std::function<CommandStep(const Jid& requester, const Element* submitted,
                              std::string_view lang)>
        run;
};

class CommandRegistry {
public:
    virtual ~CommandRegistry() = default;
    virtual void add(AdHocCommand command) = 0;
    virtual void remove(std::string_view node) = 0;
};

}  // namespace haven::xeps
