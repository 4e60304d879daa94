// The archive service other modules use (xeps/xep0313_mam): the peer-support rules veto
// archiving conversations with members (modules/peersupport).
#pragma once

#include <cstdint>
#include <functional>

#include "server/xmpp/jid.hpp"

namespace haven::xeps::mam {

class Archive {
public:
    virtual ~Archive() = default;
    // True: the message between `owner` (a local account) and `with` is not archived.
    using Veto = std::function<bool(const Jid& owner, const Jid& with)>;
    virtual std::uint64_t add_veto(Veto veto) = 0;
    virtual void remove_veto(std::uint64_t handle) = 0;
};

}  // namespace haven::xeps::mam
