// muc#roomconfig (XEP-0045 §10.2, §15.5.3) and muc#roominfo (§15.5.4) forms.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "xeps/xep0045_muc/room.hpp"

namespace haven::xeps::muc {

// The configuration form an owner gets (type form, current values filled in).
Element config_form(const Room& room, std::size_t history_max);

// A submitted configuration, checked before anything changes.
struct ConfigChange {
    RoomConfig config;
    std::optional<std::vector<Jid>> owners;  // muc#roomconfig_roomowners, when submitted
    std::optional<std::vector<Jid>> admins;  // muc#roomconfig_roomadmins, when submitted
};
// Fields that are absent keep their value (XEP-0045 §10.2: an owner may submit a subset).
// nullopt and `error` set (the text for a not-acceptable answer) on a bad value.
std::optional<ConfigChange> parse_config(const Room& room, const Element& submitted,
                                         std::size_t history_max, std::string& error);

// The XEP-0128 extended disco#info of a room; the subject and the number of occupants only
// when `insider`.
Element room_info_form(const Room& room, bool insider);

}  // namespace haven::xeps::muc
