#include "deepseek_gateway/upstream/admission.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace dsgw::upstream {

ServerLease AdmissionQueue::try_acquire(const balancer::PickContext& ctx) {
    // The balancer skips servers at their cap, but another worker may take
    // the last slot between its answer and ours: ask again a few times.
    for (int attempt = 0; attempt < 4; ++attempt) {
        auto* s = balancer_.pick(ctx);
        if (!s) break;
        auto lease = ServerLease::try_acquire(s, this);
        if (lease) return lease;
    }
    return {};
}

bool AdmissionQueue::enqueue(const std::shared_ptr<Waiter>& w) {
    std::lock_guard lock(mutex_);
    if (waiters_.size() >= capacity_) return false;
    // A slot may have freed between the caller's failed try and now.
    auto lease = try_acquire(w->ctx);
    if (lease) {
        w->lease = std::move(lease);
        w->state = Waiter::State::granted;
        boost::asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
        return true;
    }
    waiters_.push_back(w);
    size_.store(waiters_.size(), std::memory_order_relaxed);
    return true;
}

ServerLease AdmissionQueue::leave(Waiter& w) {
    std::lock_guard lock(mutex_);
    if (w.state == Waiter::State::granted) {
        w.state = Waiter::State::abandoned;
        return std::move(w.lease);
    }
    w.state = Waiter::State::abandoned;
    auto it = std::find_if(waiters_.begin(), waiters_.end(),
                           [&](const auto& p) { return p.get() == &w; });
    if (it != waiters_.end()) waiters_.erase(it);
    size_.store(waiters_.size(), std::memory_order_relaxed);
    return {};
}

void AdmissionQueue::on_slot_freed(UpstreamServer*) {
    if (size_.load(std::memory_order_relaxed) == 0) return;
    std::lock_guard lock(mutex_);
    while (!waiters_.empty()) {
        auto& w = waiters_.front();
        auto lease = try_acquire(w->ctx);
        if (!lease) return;  // no slot after all (another worker took it)
        w->lease = std::move(lease);
        w->state = Waiter::State::granted;
        auto granted = w;
        waiters_.pop_front();
        size_.store(waiters_.size(), std::memory_order_relaxed);
        // Wake the waiter on its own thread.
        boost::asio::post(granted->timer.get_executor(), [granted] { granted->timer.cancel(); });
    }
}

}  // namespace dsgw::upstream
