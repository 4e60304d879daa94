// XEP-0050 Ad-Hoc Commands on the server JID: discovery, execution, cancel.
#include "xeps/xep0050_commands.hpp"

#include <map>
#include <memory>

#include <sodium.h>

#include "server/core/module.hpp"
#include "server/core/random_id.hpp"
#include "server/core/router.hpp"
#include "server/core/server.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {

namespace {

class Commands final : public CommandRegistry {
public:
    explicit Commands(ModuleContext& m) : server_(m.server()) {
        m.add_feature(std::string(ns::commands));
        m.hook_iq(IqType::Get, Target::Host, ns::disco_items,
                  [this](StanzaEvent& e) { return list(e); }, prio::normal + 10);
        m.hook_iq(IqType::Get, Target::Host, ns::disco_info,
                  [this](StanzaEvent& e) { return info(e); }, prio::normal + 10);
        // Commands write (grants, functional addresses): a locked database answers type wait
        // (the router's guard).
        m.hook_iq(IqType::Set, Target::Host, ns::commands,
                  [this](StanzaEvent& e) { return execute(e); });
        server_.provide<CommandRegistry>(this);
    }
    ~Commands() override { server_.withdraw<CommandRegistry>(); }

    void add(AdHocCommand command) override {
        auto node = command.node;
        commands_[node] = std::move(command);
    }
    void remove(std::string_view node) override { commands_.erase(std::string(node)); }

    Flow serve(StanzaEvent& e) override {
        const auto* payload = e.stanza.first_child();
        if (!payload) {
            return Flow::Continue;
        }
        if (payload->ns() == ns::commands && e.type() == "set") {
            return execute(e);
        }
        if (e.type() != "get") {
            return Flow::Continue;
        }
        if (payload->ns() == ns::disco_items) {
            return list(e);
        }
        if (payload->ns() == ns::disco_info) {
            return info(e);
        }
        return Flow::Continue;
    }

private:
    // Whether the command lives on the JID the IQ was addressed to.
    bool offered_at(const AdHocCommand& cmd, const Jid& entity) const {
        return cmd.at ? cmd.at(entity) : entity.str() == server_.domain();
    }
    bool usable(const AdHocCommand& cmd, const StanzaEvent& e) const {
        return offered_at(cmd, e.to) && cmd.allowed(e.from, e.to);
    }

    // XEP-0050 §4.4: the actions a requester may name (none means execute).
    static bool known_action(std::string_view action) {
        return action.empty() || action == "execute" || action == "cancel" || action == "next" ||
               action == "prev" || action == "complete";
    }

    // XEP-0050 §4.6: bad-request with the <malformed-action/> application condition.
    static void malformed_action(StanzaEvent& e) {
        auto err = make_error(e.stanza, "bad-request");
        err.attr("to", e.from.str());
        err.attr("from", e.to.str());
        if (auto* error = err.child("error")) {
            error->add(Element("malformed-action", std::string(ns::commands)));
        }
        e.reply(std::move(err));
    }

    // disco#items with node=commands lists what this requester may run (XEP-0050 §2.2).
    Flow list(StanzaEvent& e) {
        const auto* q = e.stanza.child("query", ns::disco_items);
        if (!q || q->attr("node") != ns::commands) {
            return Flow::Continue;
        }
        auto result = make_result(e.stanza);
        auto& query = result.add(Element("query", std::string(ns::disco_items)));
        query.attr("node", std::string(ns::commands));
        for (const auto& [node, cmd] : commands_) {
            if (usable(cmd, e)) {
                query.add(Element("item", std::string(ns::disco_items)))
                    .attr("jid", e.to.str())
                    .attr("node", node)
                    .attr("name", cmd.name);
            }
        }
        e.reply(std::move(result));
        return Flow::Stop;
    }

    // disco#info on a command node (XEP-0050 §2.3).
    Flow info(StanzaEvent& e) {
        const auto* q = e.stanza.child("query", ns::disco_info);
        if (!q) {
            return Flow::Continue;
        }
        auto it = commands_.find(std::string(q->attr("node")));
        if (it == commands_.end() || !offered_at(it->second, e.to)) {
            return Flow::Continue;
        }
        if (!it->second.allowed(e.from, e.to)) {
            e.reply_error("item-not-found");
            return Flow::Stop;
        }
        auto result = make_result(e.stanza);
        auto& query = result.add(Element("query", std::string(ns::disco_info)));
        query.attr("node", it->first);
        query.add(Element("identity", std::string(ns::disco_info)))
            .attr("category", "automation")
            .attr("type", "command-node")
            .attr("name", it->second.name);
        query.add(Element("feature", std::string(ns::disco_info)))
            .attr("var", std::string(ns::commands));
        query.add(Element("feature", std::string(ns::disco_info)))
            .attr("var", std::string(ns::data_forms));
        e.reply(std::move(result));
        return Flow::Stop;
    }

    Flow execute(StanzaEvent& e) {
        // The hook is keyed by the payload's namespace only: <x xmlns='...commands'/> lands
        // here too. RFC 6120 §8.3.3.1: a request we cannot make sense of is bad-request.
        const auto* cmd = e.stanza.child("command", ns::commands);
        if (!cmd) {
            e.reply_error("bad-request",
                          "expected <command xmlns='" + std::string(ns::commands) + "'/>");
            return Flow::Stop;
        }
        auto action = cmd->attr("action");
        if (!known_action(action)) {
            malformed_action(e);
            return Flow::Stop;
        }
        auto it = commands_.find(std::string(cmd->attr("node")));
        if (it == commands_.end() || !usable(it->second, e)) {
            // Same answer for "no such command" and "not yours": don't reveal admin commands.
            e.reply_error("item-not-found");
            return Flow::Stop;
        }
        std::string sessionid(cmd->attr("sessionid"));
        auto result = make_result(e.stanza);
        auto& out = result.add(Element("command", std::string(ns::commands)));
        out.attr("node", it->first);
        if (sessionid.empty()) {
            sessionid = random_hex(8);
        }
        out.attr("sessionid", sessionid);
        if (action == "cancel") {
            out.attr("status", "canceled");
            e.reply(std::move(result));
            return Flow::Stop;
        }
        const Element* submitted = cmd->child("x", ns::data_forms);
        if (submitted && submitted->attr("type") != "submit") {
            submitted = nullptr;
        }
        auto step = it->second.run(e.from, e.to, submitted, e.lang());
        if (step.form) {
            out.attr("status", "executing");
            auto& actions = out.add(Element("actions", std::string(ns::commands)));
            actions.attr("execute", "complete");
            actions.add(Element("complete", std::string(ns::commands)));
            out.add(std::move(*step.form));
        } else {
            out.attr("status", "completed");
            if (!step.note.empty()) {
                out.add(Element("note", std::string(ns::commands)))
                    .attr("type", step.error ? "error" : "info")
                    .text(step.note);
            }
        }
        e.reply(std::move(result));
        return Flow::Stop;
    }

    Server& server_;
    std::map<std::string, AdHocCommand> commands_;
};

std::unique_ptr<Commands> load(ModuleContext& m) { return std::make_unique<Commands>(m); }

}  // namespace
}  // namespace haven::xeps

HAVEN_MODULE(commands, haven::xeps::load)
