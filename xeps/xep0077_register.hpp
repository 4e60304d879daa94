// XEP-0077: In-Band Registration — the service other modules use to reserve account names.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace haven::xeps {

// Offered by the "inband_register" module through Server::provide<NameReservations>(). A
// module whose names must never become someone's account (the peer-support staff lists, the
// functional addresses and their "address+token" JIDs) adds a predicate; a reserved name is
// refused exactly like a taken one (<conflict/>, after the same password hashing), so the
// answer says nothing about why.
class NameReservations {
public:
    using Predicate = std::function<bool(std::string_view localpart)>;
    virtual ~NameReservations() = default;
    // Returns a handle for remove(); the predicate gets normalised localparts.
    virtual std::uint64_t add(Predicate reserved) = 0;
    virtual void remove(std::uint64_t handle) = 0;
};

}  // namespace haven::xeps
