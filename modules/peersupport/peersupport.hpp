// The peer-support service other modules use (functional addresses, later group rooms).
#pragma once

#include <string_view>

#include "modules/peersupport/policy.hpp"

namespace haven::peersupport {

class PeerSupport {
public:
    virtual ~PeerSupport() = default;
    virtual Role role_of(std::string_view localpart) const = 0;
    virtual bool has_grant(std::string_view supporter, std::string_view member) const = 0;
    // Opens (or refreshes) a grant with its roster items and presence exchange.
    virtual void open_grant(std::string_view supporter, std::string_view member) = 0;
    // Ends a grant: roster items removed with pushes, unavailable presence exchanged.
    virtual bool end_grant(std::string_view supporter, std::string_view member) = 0;
    // Answers a refused stanza exactly as a non-existent account would, with the rule's text.
    virtual void refuse(StanzaEvent& e) const = 0;
};

}  // namespace haven::peersupport
