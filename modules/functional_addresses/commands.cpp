// Staff commands on inquiries: handover and close, in the inquiry's chat and as XEP-0050 ad-hoc
// commands (README.md §4.6–4.9).
#include "modules/functional_addresses/commands.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "modules/functional_addresses/stanzas.hpp"
#include "server/xmpp/namespaces.hpp"

namespace haven::functional_addresses {
namespace {

constexpr std::string_view handover_node = "urn:haven:functional-addresses:handover";
constexpr std::string_view close_node = "urn:haven:functional-addresses:close";

}  // namespace

Commands::Commands(Shared& shared) : s_(shared) {
    register_commands();
}

Commands::~Commands() {
    if (auto* commands = s_.server.service<xeps::CommandRegistry>()) {
        commands->remove(handover_node);
        commands->remove(close_node);
    }
}

// ---- chat commands ----

bool Commands::handle_text(StanzaEvent& e, const AddressConfig& a, const Inquiry& i,
                           const std::string& staff) {
    auto body = trim(e.stanza.child_text("body", ns::client));
    // Clients such as profanity and Gajim run "/close" themselves and never send it, so the
    // commands also work with "!" ("!close"); an unknown "!word" is just a message.
    if (body.starts_with('!')) {
        auto word = body.substr(1, body.find_first_of(" \t\r\n") - 1);
        if (word == "help" || word == "close" || word == "handover") {
            body[0] = '/';
        }
    }
    // "/me ..." is an action (XEP-0245), i.e. a normal reply.
    if (!body.starts_with('/') || body.starts_with("/me ")) {
        return false;
    }
    text_command(e, a, i, staff, body);
    return true;
}

void Commands::text_command(StanzaEvent& e, const AddressConfig& a, const Inquiry& i,
                            const std::string& staff, const std::string& body) {
    auto lang = e.lang();
    auto space = body.find_first_of(" \t\r\n");
    auto command = body.substr(0, space);
    auto argument = space == std::string::npos ? std::string{} : trim(body.substr(space));
    std::string answer;
    if (command == "/help") {
        answer = fill(s_.text("fa-help", lang), {{"{address}", a.name}});
    } else if (command == "/close") {
        answer = close_inquiry(a, i, staff, lang).text;
    } else if (command == "/handover") {
        answer = argument.empty() ? s_.text("fa-handover-usage", lang)
                                  : hand_over(a, i, staff, argument, lang).text;
    } else {
        answer = fill(s_.text("fa-unknown-command", lang), {{"{command}", command}});
    }
    // To the resource that sent the command only: it is no message of the inquiry.
    s_.server.router().route(
        text_message(s_.pseudo_jid(a, i.token), e.from.str(), s_.pick(lang), answer));
}

// ---- handover and close (chat commands and ad-hoc commands) ----

// Whoever holds the inquiry may pass it on or close it; an unclaimed one any of its staff;
// admins any.
bool Commands::may_manage(const Inquiry& i, const std::string& staff) const {
    return i.state == State::Open || i.claimed_by == staff || s_.is_admin(staff);
}

Commands::Outcome Commands::refuse_managing(const Inquiry& i, std::string_view lang) const {
    if (i.state == State::Closed) {
        return {false, s_.text("fa-closed", lang)};
    }
    return {false,
            fill(s_.text("fa-already-taken", lang), {{"{staff}", s_.staff_label(i.claimed_by)}})};
}

Commands::Outcome Commands::close_inquiry(const AddressConfig& a, const Inquiry& i,
                                          const std::string& staff, std::string_view lang) {
    if (i.state == State::Closed || !may_manage(i, staff)) {
        return refuse_managing(i, lang);
    }
    if (!s_.store.close(i.token, unix_now())) {
        return {false, s_.text("fa-closed", lang)};
    }
    s_.m.log().info("functional_addresses: inquiry at ", a.jid(), " closed");
    for (const auto& other : a.staff) {
        bool told =
            i.state == State::Open ? other != staff : (other == i.claimed_by && other != staff);
        if (told) {
            s_.notify(a, i, other, "fa-closed-by", {{"{staff}", s_.staff_label(staff)}});
        }
    }
    return {true, s_.text("fa-close-done", lang)};
}

Commands::Outcome Commands::hand_over(const AddressConfig& a, const Inquiry& i,
                                      const std::string& staff, const std::string& who,
                                      std::string_view lang) {
    if (i.state == State::Closed || !may_manage(i, staff)) {
        return refuse_managing(i, lang);
    }
    // "kim" is short for kim@<domain>: staff are always accounts on this server.
    auto target =
        who.find('@') == std::string::npos ? Jid::make(who, s_.server.domain()) : Jid::parse(who);
    if (!target || !s_.is_staff_of(a, *target)) {
        return {false, fill(s_.text("fa-handover-not-staff", lang),
                            {{"{who}", who}, {"{address}", a.name}})};
    }
    auto to = target->bare().str();
    if (i.state == State::Claimed && i.claimed_by == to) {
        return {false, fill(s_.text("fa-handover-same", lang), {{"{staff}", s_.staff_label(to)}})};
    }
    auto from = i.state == State::Claimed ? i.claimed_by : std::string{};
    if (!s_.store.reassign(i.token, from, to, unix_now())) {
        return {false, s_.text("fa-closed", lang)};
    }
    s_.m.log().info("functional_addresses: inquiry at ", a.jid(), " handed over");
    if (to != staff) {
        s_.notify(a, i, to, "fa-handed-to-you", {{"{staff}", s_.staff_label(staff)}});
    }
    for (const auto& other : a.staff) {
        if (other == staff || other == to) {
            continue;
        }
        if (other == i.claimed_by) {
            // An admin moved someone else's inquiry: its holder learns it.
            s_.notify(a, i, other, "fa-handed-over",
                      {{"{from}", s_.staff_label(staff)}, {"{to}", s_.staff_label(to)}});
        } else if (i.state == State::Open) {
            s_.notify(a, i, other, "fa-taken", {{"{staff}", s_.staff_label(to)}});
        }
    }
    return {true, fill(s_.text("fa-handover-done", lang), {{"{staff}", s_.staff_label(to)}})};
}

// ---- ad-hoc commands (XEP-0050) ----

void Commands::register_commands() {
    auto* commands = s_.server.service<xeps::CommandRegistry>();
    if (!commands) {
        s_.m.log().warn("functional_addresses: ad-hoc commands module not loaded");
        return;
    }
    // Listed only for accounts on the staff of some address (README.md §4.9).
    auto allowed = [this](const Jid& who) {
        return std::any_of(s_.addresses.begin(), s_.addresses.end(),
                           [&](const AddressConfig& a) { return s_.is_staff_of(a, who); });
    };
    struct Spec {
        std::string_view node;
        const char* name;
        bool handover;
    };
    for (const auto& spec : {Spec{handover_node, "Hand over an inquiry", true},
                             Spec{close_node, "Close an inquiry", false}}) {
        xeps::AdHocCommand command;
        command.node = std::string(spec.node);
        command.name = spec.name;
        command.allowed = [allowed](const Jid& who, const Jid&) { return allowed(who); };
        command.run = [this, handover = spec.handover](const Jid& who, const Jid&,
                                                       const Element* form, std::string_view lang) {
            return run_command(who, form, lang, handover);
        };
        commands->add(std::move(command));
    }
}

// Without a form: the first step, a form listing what `who` may manage. With one: the
// submitted handover or close.
xeps::CommandStep Commands::run_command(const Jid& who, const Element* form, std::string_view lang,
                                        bool handover) {
    const auto staff = who.bare().str();
    xeps::CommandStep step;
    if (form) {
        auto jid = Jid::parse(xeps::form_value(*form, "inquiry"));
        std::optional<Inquiry> i;
        Target target;
        if (jid && s_.server.is_local(*jid) && !jid->local().empty()) {
            target = s_.resolve(jid->local());
            i = s_.staff_inquiry(target, who);
        }
        if (!i) {
            step.error = true;
            step.note = s_.text("fa-cmd-unknown", lang);
            return step;
        }
        auto outcome = handover ? hand_over(*target.address, *i, staff,
                                            trim(xeps::form_value(*form, "to")), lang)
                                : close_inquiry(*target.address, *i, staff, lang);
        step.error = !outcome.ok;
        step.note = outcome.text;
        return step;
    }
    auto x = xeps::make_form(
        s_.text(handover ? "fa-cmd-handover-title" : "fa-cmd-close-title", lang),
        s_.text(handover ? "fa-cmd-handover-instructions" : "fa-cmd-close-instructions", lang));
    auto& field =
        xeps::add_field(x, "inquiry", "list-single", s_.text("fa-cmd-field-inquiry", lang));
    std::vector<std::string> team;
    bool any = false;
    for (const auto& i : s_.store.list_active()) {
        auto t = s_.resolve(i.address);
        if (!t.address || !s_.is_staff_of(*t.address, who) || !may_manage(i, staff)) {
            continue;
        }
        any = true;
        auto state =
            i.state == State::Open ? s_.text("fa-state-open", lang) : s_.staff_label(i.claimed_by);
        xeps::add_option(field, s_.inquiry_title(*t.address, i, lang) + " (" + state + ")",
                         s_.pseudo_jid(*t.address, i.token));
        for (const auto& member : t.address->staff) {
            if (std::find(team.begin(), team.end(), member) == team.end()) {
                team.push_back(member);
            }
        }
    }
    if (!any) {
        step.note = s_.text("fa-cmd-none", lang);
        return step;
    }
    if (handover) {
        auto& to = xeps::add_field(x, "to", "list-single", s_.text("fa-cmd-field-to", lang));
        for (const auto& member : team) {
            xeps::add_option(to, s_.staff_label(member), member);
        }
    }
    step.form = std::move(x);
    return step;
}

}  // namespace haven::functional_addresses
