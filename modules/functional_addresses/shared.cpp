// The functional addresses module's shared state and its naming and delivery helpers.
#include "modules/functional_addresses/shared.hpp"

#include <algorithm>
#include <chrono>
#include <exception>

#include "modules/functional_addresses/stanzas.hpp"
#include "modules/functional_addresses/texts.hpp"
#include "modules/peersupport/peersupport.hpp"
#include "server/core/router.hpp"
#include "server/storage/kv_store.hpp"
#include "server/storage/offline_store.hpp"

namespace haven::functional_addresses {

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Shared::Shared(ModuleContext& ctx) : m(ctx), server(ctx.server()), store(server.db(), server.secret_box()) {
    if (const auto* node = server.config().get_node("functional_addresses", "addresses")) {
        addresses = parse_addresses(*node);
    }
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        const auto& a = addresses[i];
        // Only now is the server's domain known; the config check cannot test this.
        if (a.domain != server.domain()) {
            throw config::ConfigError("[functional_addresses] addresses: '" + a.jid() +
                                      "' is not an address of this server (" + server.domain() +
                                      ")");
        }
        by_local_.emplace(a.local, i);
    }
    register_texts(server.texts(), addresses);
}

// ---- addressing ----

Target Shared::resolve(const std::string& local) const {
    if (auto it = by_local_.find(local); it != by_local_.end()) {
        return {&addresses[it->second], {}};
    }
    auto plus = local.find('+');
    if (plus == std::string::npos) {
        return {};
    }
    auto it = by_local_.find(local.substr(0, plus));
    auto token = local.substr(plus + 1);
    if (it == by_local_.end() || !is_token(token)) {
        return {};
    }
    return {&addresses[it->second], token};
}

std::string Shared::pseudo_jid(const AddressConfig& a, const std::string& token) const {
    return a.local + "+" + token + "@" + a.domain;
}

bool Shared::is_staff_of(const AddressConfig& a, const Jid& who) const {
    if (!server.is_local(who) || who.local().empty()) {
        return false;
    }
    auto bare = who.bare().str();
    return std::find(a.staff.begin(), a.staff.end(), bare) != a.staff.end();
}

bool Shared::is_admin(const std::string& staff_bare) const {
    auto* ps = server.service<peersupport::PeerSupport>();
    auto jid = Jid::parse(staff_bare);
    return ps && jid && ps->role_of(jid->local()) == peersupport::Role::Admin;
}

std::optional<Inquiry> Shared::staff_inquiry(const Target& t, const Jid& who) const {
    if (!t.address || t.token.empty() || !is_staff_of(*t.address, who)) {
        return std::nullopt;
    }
    auto inquiry = store.find(t.token);
    if (!inquiry || inquiry->address != t.address->local) {
        return std::nullopt;
    }
    return inquiry;
}

// ---- names and texts ----

std::string Shared::display_name(const std::string& staff_bare) const {
    auto jid = Jid::parse(staff_bare);
    if (!jid) {
        return {};
    }
    try {
        if (auto stored = server.kv().get(jid->local(), "vcard", "vcard")) {
            if (auto card = parse_stored(*stored)) {
                for (auto tag : {"NICKNAME", "FN"}) {
                    auto value = trim(card->child_text(tag));
                    if (!value.empty()) {
                        return value;
                    }
                }
            }
        }
    } catch (const std::exception&) {
        // An unreadable vCard (wrong key file) falls back to the account name.
    }
    return jid->local();
}

std::string Shared::staff_label(const std::string& staff_bare) const {
    return display_name(staff_bare) + " (" + staff_bare + ")";
}

std::string Shared::staff_lang(const std::string& staff_bare) const {
    if (auto jid = Jid::parse(staff_bare)) {
        for (const auto& s : server.sessions().of(jid->local())) {
            if (!s->lang().empty()) {
                return pick(s->lang());
            }
        }
    }
    return pick(m.opt_string("staff_language"));
}

std::string Shared::sender_label(const AddressConfig& a, const Inquiry& i,
                                 std::string_view lang) const {
    if (a.show_sender == ShowSender::Jid) {
        return i.sender;
    }
    return fill(text("fa-inquiry-label", lang), {{"{token}", i.token}});
}

std::string Shared::inquiry_title(const AddressConfig& a, const Inquiry& i,
                                  std::string_view lang) const {
    return a.name + ": " + sender_label(a, i, lang);
}

const std::string& Shared::text(std::string_view key, std::string_view lang) const {
    return server.texts().get(key, lang);
}

std::string Shared::pick(std::string_view lang) const {
    // Every fa-* text exists in the same languages, so any key answers for all of them.
    return server.texts().pick_lang("fa-taken", lang);
}

// ---- delivery to staff ----

// Inquiries must not be lost while no supporter is online (issue #5): a staff member who is
// offline gets the message queued in offline storage under this module's own limit
// ([functional_addresses] staff_queue_limit), not the per-user [offline] quota meant for
// personal chats, and is handed it with a delay stamp at the next login.
void Shared::deliver_to_staff(Element message) {
    auto to = Jid::parse(message.attr("to"));
    if (!to) {
        return;
    }
    if (!server.sessions().message_targets(to->local()).empty()) {
        server.router().route(std::move(message));
        return;
    }
    auto limit = static_cast<std::size_t>(m.opt_int("staff_queue_limit"));
    if (!storage::accepted(
            server.offline().push(to->local(), unix_now(), xml::serialize(message), limit))) {
        m.log().warn(
            "functional_addresses: a staff member's queue is full; an inquiry "
            "message could not be queued");
    }
}

void Shared::notify(const AddressConfig& a, const Inquiry& i, const std::string& staff,
                    std::string_view key,
                    std::initializer_list<std::pair<std::string_view, std::string_view>> vars) {
    auto lang = staff_lang(staff);
    deliver_to_staff(
        text_message(pseudo_jid(a, i.token), staff, lang, fill(text(key, lang), vars)));
}

}  // namespace haven::functional_addresses
