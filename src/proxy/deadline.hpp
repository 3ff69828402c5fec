#pragma once
// The one deadline a client connection has at a time: which step it bounds
// (Phase), when it expires, and one timer re-armed before each step. Limits
// are per operation (header_timeout, client_idle, connect, first_byte, idle
// between chunks), never one total: an LLM stream may last ten minutes.

#include "deepseek_gateway/util/clock.hpp"

#include <cstdint>
#include <memory>

namespace dsgw::proxy {

using Clock = util::Clock;  // tests move it (util/clock.hpp)

enum class Phase {
    none,
    request_head,    // header_timeout
    keepalive_idle,  // client_idle, waiting for the next request
    request_body,    // client_idle between body pieces
    client_write,    // client_idle while the client does not read
    linger,          // a few seconds for what the client sends after our answer
    connect,         // upstream connect (and TLS handshake)
    upstream_write,  // upstream idle while it does not read
    first_byte,      // upstream first_byte
    response_body,   // upstream idle between chunks
};

// Whether the client (else the upstream) is the side a phase waits for.
inline bool is_client_phase(Phase p) {
    return p == Phase::request_head || p == Phase::keepalive_idle || p == Phase::request_body ||
           p == Phase::client_write || p == Phase::linger;
}

class Deadline {
public:
    // Told when a deadline passes: cancel what the phase waits for.
    class Owner {
    public:
        virtual void on_deadline(Phase phase) = 0;
        // Keeps the owner alive while the timer's wait is pending.
        virtual std::shared_ptr<void> hold() = 0;

    protected:
        ~Owner() = default;
    };

    Deadline(boost::asio::io_context& io, Owner& owner) : timer_(io), owner_(owner) {}

    void arm(Phase p, Clock::duration d);
    void disarm() {
        phase_ = Phase::none;
        deadline_ = Clock::time_point::max();
    }
    Phase phase() const { return phase_; }
    // Whether the step that just ended was cut by the deadline of `p`.
    bool timed_out(Phase p) const { return timed_out_ == p; }
    // The connection closes: no wait stays pending.
    void cancel() { timer_.cancel(); }

private:
    void start_wait();
    void on_timer();

    util::Timer timer_;
    Owner& owner_;
    Clock::time_point deadline_ = Clock::time_point::max();
    Phase phase_ = Phase::none;
    Phase timed_out_ = Phase::none;
    bool waiting_ = false;
    std::uint64_t generation_ = 0;
};

}  // namespace dsgw::proxy
