// ConnectionGate: per-address and global caps before login (see connection_gate.hpp).
#include "server/net/connection_gate.hpp"

#include <algorithm>

#include <boost/asio/ip/address.hpp>

namespace haven::net {

std::string address_key(std::string_view remote) {
    // IPv4 clients reaching a dual-stack listener as v4-mapped addresses stay individual (as a
    // /64 they would all share one bucket, and one attacker could lock everybody out).
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(std::string(remote), ec);
    if (ec || !addr.is_v6()) {
        return std::string(remote);
    }
    auto v6 = addr.to_v6();
    if (v6.is_v4_mapped()) {
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
    }
    auto bytes = v6.to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

ConnectionGate::Ticket& ConnectionGate::Ticket::operator=(Ticket&& other) noexcept {
    if (this != &other) {
        release();
        gate_ = std::exchange(other.gate_, nullptr);
        entry_ = std::exchange(other.entry_, nullptr);
        kind_ = other.kind_;
    }
    return *this;
}

void ConnectionGate::Ticket::release() {
    if (gate_ != nullptr) {
        std::exchange(gate_, nullptr)->give_back(kind_, std::exchange(entry_, nullptr));
    }
}

ConnectionGate::Ticket ConnectionGate::admit(Kind kind, std::string_view key) {
    const auto i = index(kind);
    const auto per_address =
        kind == Kind::Unauthenticated ? limits_.unauthenticated_per_address
                                      : limits_.handshakes_per_address;
    const auto global = kind == Kind::Unauthenticated ? limits_.unauthenticated : limits_.handshakes;
    auto it = by_address_.find(key);
    const std::size_t here = it == by_address_.end() ? 0 : it->second.n[i];
    if (total_[i] >= global || here >= per_address) {
        ++refused_;
        return {};
    }
    if (it == by_address_.end()) {
        it = by_address_.emplace(std::string(key), Counts{}).first;
    }
    ++it->second.n[i];
    ++total_[i];
    return Ticket(this, kind, &*it);
}

void ConnectionGate::give_back(Kind kind, Entry* entry) {
    const auto i = index(kind);
    --total_[i];
    --entry->second.n[i];
    if (entry->second.n[0] == 0 && entry->second.n[1] == 0) {
        // The map holds only addresses with something going on (erase by iterator: the key
        // belongs to the node being erased).
        by_address_.erase(by_address_.find(entry->first));
    }
}

}  // namespace haven::net
