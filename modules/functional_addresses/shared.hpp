// The functional addresses module's shared state (addresses, inquiry store) and the naming and
// delivery helpers that the routing, the staff commands and the address identity all use.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "modules/functional_addresses/address_config.hpp"
#include "modules/functional_addresses/inquiry_store.hpp"
#include "server/core/module.hpp"
#include "server/core/server.hpp"

namespace haven::functional_addresses {

std::int64_t unix_now();

// What a localpart on this domain names: a functional address, or one of its inquiries.
struct Target {
    const AddressConfig* address = nullptr;  // null: neither
    std::string token;                       // empty: the functional address itself
};

// Owned by the module, one per load; the other parts hold a reference. All of it runs on the
// core executor, so nothing here needs a lock (DESIGN.md).
class Shared {
public:
    // Opens the store (migrations), reads the addresses and registers the texts; throws
    // config::ConfigError for an address on another domain.
    explicit Shared(ModuleContext& m);

    ModuleContext& m;
    Server& server;
    InquiryStore store;
    std::vector<AddressConfig> addresses;

    // ---- addressing ----
    Target resolve(const std::string& local) const;
    std::string pseudo_jid(const AddressConfig& a, const std::string& token) const;
    bool is_staff_of(const AddressConfig& a, const Jid& who) const;
    bool is_admin(const std::string& staff_bare) const;
    // The inquiry behind `t` if it belongs to t's address and `who` is on that address's staff:
    // for anyone else an inquiry JID must look like a non-existent account (README.md §8).
    std::optional<Inquiry> staff_inquiry(const Target& t, const Jid& who) const;

    // ---- names and texts ----
    // A supporter as the sender may see them: vCard nickname, else full name, else the
    // account name. Never the JID (README.md §8).
    std::string display_name(const std::string& staff_bare) const;
    // A supporter as other staff see them: "Sam (sam@example.org)".
    std::string staff_label(const std::string& staff_bare) const;
    // The language of a staff member's notices: their client's stream language, if online.
    std::string staff_lang(const std::string& staff_bare) const;
    // How the staff see the sender: the bare JID, or "Inquiry 7f3k" (show_sender).
    std::string sender_label(const AddressConfig& a, const Inquiry& i, std::string_view lang) const;
    // "Beratung: alice@example.org": the inquiry's name in disco, vCard and command forms.
    std::string inquiry_title(const AddressConfig& a, const Inquiry& i,
                              std::string_view lang) const;
    const std::string& text(std::string_view key, std::string_view lang) const;
    // The language (en or de) the module's texts are given in for a requested `lang`.
    std::string pick(std::string_view lang) const;

    // ---- delivery to staff ----
    // Routes to an online staff member, else queues in offline storage under the module's own
    // staff_queue_limit.
    void deliver_to_staff(Element message);
    // A notice in the inquiry's chat of one staff member, in their language.
    void notify(const AddressConfig& a, const Inquiry& i, const std::string& staff,
                std::string_view key,
                std::initializer_list<std::pair<std::string_view, std::string_view>> vars);

private:
    std::unordered_map<std::string, std::size_t> by_local_;  // address localpart → index
};

}  // namespace haven::functional_addresses
