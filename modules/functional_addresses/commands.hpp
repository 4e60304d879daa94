// Staff commands on inquiries: handover and close, as chat commands in the inquiry's chat and as
// XEP-0050 ad-hoc commands on the server JID (README.md §4.6–4.9).
#pragma once

#include <string>
#include <string_view>

#include "modules/functional_addresses/shared.hpp"
#include "server/core/router.hpp"
#include "xeps/xep0050_commands.hpp"

namespace haven::functional_addresses {

class Commands {
public:
    // Registers the ad-hoc commands (if the commands module is loaded); the destructor removes
    // them. The registered callbacks point at this object, so it never moves.
    explicit Commands(Shared& shared);
    ~Commands();
    Commands(const Commands&) = delete;
    Commands& operator=(const Commands&) = delete;

    // A staff member's message in an inquiry's chat: true when it was a command ("/close",
    // "!handover kim", ...), which is then answered and never forwarded to the sender.
    bool handle_text(StanzaEvent& e, const AddressConfig& a, const Inquiry& i,
                     const std::string& staff);

private:
    // What the result of a handover or close was, for the chat command and the ad-hoc command.
    struct Outcome {
        bool ok = false;
        std::string text;
    };

    void text_command(StanzaEvent& e, const AddressConfig& a, const Inquiry& i,
                      const std::string& staff, const std::string& body);
    bool may_manage(const Inquiry& i, const std::string& staff) const;
    Outcome refuse_managing(const Inquiry& i, std::string_view lang) const;
    Outcome close_inquiry(const AddressConfig& a, const Inquiry& i, const std::string& staff,
                          std::string_view lang);
    Outcome hand_over(const AddressConfig& a, const Inquiry& i, const std::string& staff,
                      const std::string& who, std::string_view lang);
    void register_commands();
    xeps::CommandStep run_command(const Jid& who, const Element* form, std::string_view lang,
                                  bool handover);

    Shared& s_;
};

}  // namespace haven::functional_addresses
