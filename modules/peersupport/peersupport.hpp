// The peer-support service other modules use (functional addresses, later group rooms).
#pragma once

#include <cstdint>
#include <functional>
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
    // Whether staff may see the member's profile (vCard): a grant or another relation.
    virtual bool may_see_profile(std::string_view staff, std::string_view member) const = 0;
    // Answers a refused stanza exactly as a non-existent account would, with the rule's text.
    virtual void refuse(StanzaEvent& e) const = 0;
    // Relations that let a staff account see a member's profile besides a grant (functional
    // addresses: an active inquiry from the member at an address the staff member serves).
    using Relation = std::function<bool(std::string_view staff, std::string_view member)>;
    virtual std::uint64_t add_relation(Relation relation) = 0;
    virtual void remove_relation(std::uint64_t handle) = 0;
};

}  // namespace haven::peersupport
