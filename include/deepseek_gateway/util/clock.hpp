#pragma once
// The clock of the request path's deadlines: std::chrono::steady_clock plus an
// offset that only tests move, so that a 60-second timeout is tested at once
// (tests/unit/exchange_test.cpp) instead of by waiting 60 seconds. Its time
// points are steady_clock's, so they mix with every other steady time.
//
// Timers on it (util::Timer) fire by this clock; after advance() a test wakes
// the event loop with util::wake_timers(io) so that timers now due fire.

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace dsgw::util {

struct Clock {
    using base = std::chrono::steady_clock;
    using duration = base::duration;
    using rep = base::rep;
    using period = base::period;
    using time_point = base::time_point;
    static constexpr bool is_steady = true;

    static time_point now() noexcept {
        return base::now() + duration(offset_.load(std::memory_order_relaxed));
    }

    // Tests only: moves this clock (not steady_clock) forward.
    static void advance(duration d) noexcept {
        offset_.fetch_add(d.count(), std::memory_order_relaxed);
    }

private:
    static inline std::atomic<rep> offset_{0};
};

using Timer = boost::asio::basic_waitable_timer<Clock>;

// Tests only, after Clock::advance(): an event loop sleeps until the real
// time of its earliest timer. A timer due at the beginning of time makes it
// look at its timers again, and those the advance made due fire.
inline void wake_timers(boost::asio::io_context& io) {
    auto t = std::make_shared<Timer>(io, Clock::time_point::min());
    t->async_wait([t](const boost::system::error_code&) {});
}

}  // namespace dsgw::util
