#pragma once
// The waiting room of an upstream whose servers have a max_in_flight cap: when
// every usable server is at its cap, a request waits here, first in first out,
// and takes the first slot that frees on any worker thread. Bounded in length
// and in waiting time; a client that leaves gives its place up at once.
//
// The only lock on the request path is here, and only for requests that have
// to queue or that free a slot while others wait.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/upstream/server.hpp"
#include "deepseek_gateway/util/clock.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

namespace dsgw::upstream {

class AdmissionQueue final : public SlotListener {
public:
    struct Waiter {
        explicit Waiter(const boost::asio::any_io_executor& ex) : timer(ex) {}
        // The session waits on it; a grant cancels it. On util::Clock, like
        // the session's other deadlines, so tests move it.
        util::Timer timer;
        balancer::PickContext ctx;
        ServerLease lease;  // set by the grant
        enum class State { waiting, granted, abandoned } state = State::waiting;
    };

    AdmissionQueue(balancer::Balancer& balancer, std::size_t capacity)
        : balancer_(balancer), capacity_(capacity) {}

    // Acquires a slot now if a server has one. Otherwise an empty lease.
    ServerLease try_acquire(const balancer::PickContext& ctx);

    // Queues `w`; false when the queue is full.
    bool enqueue(const std::shared_ptr<Waiter>& w);

    // The waiter stopped waiting (granted, timed out or its client left):
    // returns the lease when it was granted; otherwise removes it.
    ServerLease leave(Waiter& w);

    void on_slot_freed(UpstreamServer* server) override;

    std::size_t length() const { return size_.load(std::memory_order_relaxed); }

private:
    balancer::Balancer& balancer_;
    std::size_t capacity_;
    std::mutex mutex_;
    std::deque<std::shared_ptr<Waiter>> waiters_;
    std::atomic<std::size_t> size_{0};
};

}  // namespace dsgw::upstream
