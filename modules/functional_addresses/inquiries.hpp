// Inquiry routing between a sender and the staff: new inquiries, fan-out to the staff, the
// first-reply claim and the forwarding in both directions (README.md §4.1–4.5).
#pragma once

#include <string>

#include "modules/functional_addresses/commands.hpp"
#include "modules/functional_addresses/shared.hpp"
#include "server/core/router.hpp"

namespace haven::functional_addresses {

class Inquiries {
public:
    Inquiries(Shared& shared, Commands& commands) : s_(shared), commands_(commands) {}

    // A message to the functional address itself, from anyone.
    void from_sender(StanzaEvent& e, const AddressConfig& a);
    // A message to inquiry `i`'s JID from a staff member of its address.
    void from_staff(StanzaEvent& e, const AddressConfig& a, Inquiry& i);

private:
    void auto_reply(StanzaEvent& e, const AddressConfig& a, const std::string& sender);
    Element to_staff(const Element& original, const AddressConfig& a, const Inquiry& i,
                     const std::string& staff);
    Element to_sender(const Element& original, const AddressConfig& a, const Inquiry& i,
                      const std::string& staff);
    void forward_chat_state(const Element& original, const std::string& from,
                            const std::string& to);

    Shared& s_;
    Commands& commands_;
};

}  // namespace haven::functional_addresses
