// muc#roomconfig and muc#roominfo forms (XEP-0045 §10.2, §15.5.3-§15.5.4).
#include "xeps/xep0045_muc/config_form.hpp"

#include <charconv>

#include "xeps/xep0004_data_forms.hpp"
#include "xeps/xep0045_muc/muc.hpp"

namespace haven::xeps::muc {
namespace {

constexpr std::string_view pfx = "muc#roomconfig_";

std::string var(std::string_view field) { return std::string(pfx) + std::string(field); }

std::vector<std::string> jid_strings(const std::vector<Jid>& jids) {
    std::vector<std::string> out;
    for (const auto& j : jids) {
        out.push_back(j.str());
    }
    return out;
}

void add_bool(Element& form, std::string_view field, std::string_view label, bool value) {
    add_field(form, var(field), "boolean", label, value ? "1" : "0");
}

bool parse_size(std::string_view s, std::size_t& out) {
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) {
        return false;
    }
    out = v;
    return true;
}

std::optional<std::vector<Jid>> jid_list(const Element& form, std::string_view field,
                                         std::string& error) {
    if (!has_field(form, var(field))) {
        return std::vector<Jid>{};
    }
    std::vector<Jid> out;
    for (const auto& v : form_values(form, var(field))) {
        auto j = Jid::parse(v);
        if (!j) {
            error = "not a JID: " + v.substr(0, 100);
            return std::nullopt;
        }
        out.push_back(j->bare());
    }
    return out;
}

}  // namespace

Element config_form(const Room& room, std::size_t history_max) {
    const auto& c = room.config();
    auto form = make_form("Configuration of " + room.jid().str(),
                          "Complete this form to configure the room.");
    add_field(form, "FORM_TYPE", "hidden", {}, ns::roomconfig);
    add_field(form, var("roomname"), "text-single", "Name", c.name);
    add_field(form, var("roomdesc"), "text-single", "Description", c.description);
    add_field(form, var("lang"), "text-single", "Language", c.lang);
    add_bool(form, "persistentroom", "Keep the room when the last occupant leaves", c.persistent);
    add_bool(form, "publicroom", "List the room in the directory", c.public_room);
    add_bool(form, "membersonly", "Only members may enter", c.members_only);
    add_bool(form, "moderatedroom", "Only participants with voice may speak", c.moderated);
    auto& whois = add_field(form, var("whois"), "list-single", "Who may see real addresses",
                            c.non_anonymous ? "anyone" : "moderators");
    add_option(whois, "Moderators only", "moderators");
    add_option(whois, "Anyone", "anyone");
    add_bool(form, "allowinvites", "Occupants may invite others", c.allow_invites);
    add_bool(form, "changesubject", "Participants may change the subject", c.change_subject);
    auto& pm = add_field(form, var("allowpm"), "list-single", "Who may send private messages",
                         name(c.allow_pm));
    for (auto p : {PmPolicy::Anyone, PmPolicy::Participants, PmPolicy::Moderators,
                   PmPolicy::None}) {
        add_option(pm, name(p), name(p));
    }
    add_bool(form, "passwordprotectedroom", "A password is needed to enter", !c.password.empty());
    add_field(form, var("roomsecret"), "text-private", "Password", c.password);
    add_field(form, var("maxusers"), "text-single", "Maximum occupants (0: the service limit)",
              std::to_string(c.max_users));
    add_field(form, "muc#maxhistoryfetch", "text-single",
              "Messages shown on entering (at most " + std::to_string(history_max) + ")",
              std::to_string(c.history_length));
    add_bool(form, "enablelogging", "Public logs (not offered)", false);
    add_field_values(form, var("roomadmins"), "jid-multi", "Admins",
                     jid_strings(room.with_affiliation(Affiliation::Admin)));
    add_field_values(form, var("roomowners"), "jid-multi", "Owners",
                     jid_strings(room.with_affiliation(Affiliation::Owner)));
    return form;
}

std::optional<ConfigChange> parse_config(const Room& room, const Element& form,
                                         std::size_t history_max, std::string& error) {
    ConfigChange change;
    auto& c = change.config;
    c = room.config();
    if (auto t = form_value(form, "FORM_TYPE"); !t.empty() && t != ns::roomconfig) {
        error = "not a room configuration form";
        return std::nullopt;
    }
    auto text = [&](std::string_view field, std::string& into) {
        if (has_field(form, var(field))) {
            into = form_value(form, var(field));
        }
    };
    auto boolean = [&](std::string_view field, bool& into) {
        if (has_field(form, var(field))) {
            into = form_bool(form_value(form, var(field)));
        }
    };
    text("roomname", c.name);
    text("roomdesc", c.description);
    text("lang", c.lang);
    boolean("persistentroom", c.persistent);
    boolean("publicroom", c.public_room);
    boolean("membersonly", c.members_only);
    boolean("moderatedroom", c.moderated);
    boolean("allowinvites", c.allow_invites);
    boolean("changesubject", c.change_subject);
    if (form_bool(form_value(form, var("enablelogging")))) {
        error = "this service keeps no public logs";
        return std::nullopt;
    }
    if (has_field(form, var("whois"))) {
        auto w = form_value(form, var("whois"));
        if (w != "anyone" && w != "moderators") {
            error = "muc#roomconfig_whois must be moderators or anyone";
            return std::nullopt;
        }
        c.non_anonymous = w == "anyone";
    }
    if (has_field(form, var("allowpm"))) {
        auto p = parse_pm_policy(form_value(form, var("allowpm")));
        if (!p) {
            error = "muc#roomconfig_allowpm must be anyone, participants, moderators or none";
            return std::nullopt;
        }
        c.allow_pm = *p;
    }
    bool protect = !c.password.empty();
    boolean("passwordprotectedroom", protect);
    text("roomsecret", c.password);
    if (!protect) {
        c.password.clear();
    } else if (c.password.empty()) {
        error = "a password-protected room needs muc#roomconfig_roomsecret";
        return std::nullopt;
    }
    if (has_field(form, var("maxusers")) && !form_value(form, var("maxusers")).empty() &&
        !parse_size(form_value(form, var("maxusers")), c.max_users)) {
        error = "muc#roomconfig_maxusers must be a number";
        return std::nullopt;
    }
    for (auto field : {std::string("muc#maxhistoryfetch"), var("historylength")}) {
        if (has_field(form, field) && !form_value(form, field).empty()) {
            if (!parse_size(form_value(form, field), c.history_length)) {
                error = field + " must be a number";
                return std::nullopt;
            }
        }
    }
    if (c.history_length > history_max) {
        c.history_length = history_max;
    }
    if (has_field(form, var("roomowners"))) {
        auto owners = jid_list(form, "roomowners", error);
        if (!owners) {
            return std::nullopt;
        }
        if (owners->empty()) {
            error = "a room needs an owner";
            return std::nullopt;
        }
        change.owners = std::move(owners);
    }
    if (has_field(form, var("roomadmins"))) {
        auto admins = jid_list(form, "roomadmins", error);
        if (!admins) {
            return std::nullopt;
        }
        change.admins = std::move(admins);
    }
    return change;
}

Element room_info_form(const Room& room, bool insider) {
    const auto& c = room.config();
    auto form = make_typed_form("result", ns::roominfo);
    add_field(form, "muc#roominfo_description", {}, "Description", c.description);
    if (insider) {
        add_field(form, "muc#roominfo_occupants", {}, "Number of occupants",
                  std::to_string(room.occupant_count()));
        add_field(form, "muc#roominfo_subject", {}, "Subject", room.subject());
    }
    add_field(form, "muc#roominfo_subjectmod", {}, "Occupants may change the subject",
              c.change_subject ? "1" : "0");
    add_field(form, var("changesubject"), {}, "Occupants may change the subject",
              c.change_subject ? "1" : "0");
    if (!c.lang.empty()) {
        add_field(form, "muc#roominfo_lang", {}, "Language", c.lang);
    }
    add_field(form, "muc#maxhistoryfetch", {}, "Messages shown on entering",
              std::to_string(c.history_length));
    return form;
}

}  // namespace haven::xeps::muc
