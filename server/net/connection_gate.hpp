// ConnectionGate: caps on connections that have not logged in and on TLS handshakes in progress.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/core/string_map.hpp"

namespace haven::net {

// The address a client is counted under: its IP, or its /64 for IPv6 (one host usually holds
// the whole prefix and could otherwise rotate addresses past a per-address limit).
std::string address_key(std::string_view remote);

struct GateLimits {
    std::size_t unauthenticated_per_address = 32;
    std::size_t unauthenticated = 2048;
    std::size_t handshakes_per_address = 16;
    std::size_t handshakes = 256;
};

// Before login a connection costs the server memory and, during the TLS handshake, CPU, for
// someone nobody knows yet. The gate counts both per address and in all; a connection over a cap
// is closed at accept (or its STARTTLS refused) before any parsing or cryptography, which costs
// microseconds. Counts are held by Tickets (RAII): a connection gives its "unauthenticated"
// ticket back when it logs in, its "handshake" ticket when TLS is up, and both when it closes.
// One gate per event loop, so no locking.
class ConnectionGate {
public:
    enum class Kind { Unauthenticated, Handshake };

    struct Counts {
        std::size_t n[2] = {0, 0};
    };
    using Entry = StringMap<Counts>::value_type;

    class Ticket {
    public:
        Ticket() = default;
        Ticket(Ticket&& other) noexcept { *this = std::move(other); }
        Ticket& operator=(Ticket&& other) noexcept;
        Ticket(const Ticket&) = delete;
        Ticket& operator=(const Ticket&) = delete;
        ~Ticket() { release(); }
        void release();
        explicit operator bool() const { return gate_ != nullptr; }

    private:
        friend class ConnectionGate;
        Ticket(ConnectionGate* gate, Kind kind, Entry* entry)
            : gate_(gate), entry_(entry), kind_(kind) {}
        // The address's entry in the gate (map nodes never move): every connection holds two
        // of these, so they stay small instead of copying the address.
        ConnectionGate* gate_ = nullptr;
        Entry* entry_ = nullptr;
        Kind kind_ = Kind::Unauthenticated;
    };

    explicit ConnectionGate(GateLimits limits) : limits_(limits) {}
    ConnectionGate(const ConnectionGate&) = delete;
    ConnectionGate& operator=(const ConnectionGate&) = delete;

    // An empty Ticket when the cap for `kind` is reached (for `key` or in all).
    Ticket admit(Kind kind, std::string_view key);
    // New caps (SIGHUP) apply to the next admission; tickets already out stay valid, so lowering
    // a cap below the current count refuses newcomers until enough connections have gone.
    void set_limits(GateLimits limits) { limits_ = limits; }
    const GateLimits& limits() const { return limits_; }
    std::uint64_t refused() const { return refused_; }
    std::size_t count(Kind kind) const { return total_[index(kind)]; }

private:
    static std::size_t index(Kind k) { return k == Kind::Unauthenticated ? 0 : 1; }
    void give_back(Kind kind, Entry* entry);

    GateLimits limits_;
    StringMap<Counts> by_address_;
    std::size_t total_[2] = {0, 0};
    std::uint64_t refused_ = 0;
};

}  // namespace haven::net
