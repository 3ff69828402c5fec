// Weighted least connections: the usable server with the fewest in-flight
// requests per unit of weight. The count is the ServerLease count, shared by
// every worker, so the choice is global, not per thread. Ties (the common case
// when the pool is idle and requests are short) are broken in smooth weighted
// round-robin order, so equal servers share the load instead of the first one
// taking every burst, and weights still count when nothing is in flight.
// Slow start acts on both: a ramping server's weight is scaled by its
// weight_factor, and it passes up that share of its tie-breaking turns.

#include "deepseek_gateway/balancer/balancer.hpp"

#include "eligible.hpp"
#include "smooth_wrr.hpp"

#include <atomic>
#include <cstdint>
#include <utility>

namespace dsgw::balancer {

namespace {

class LeastConnBalancer final : public Balancer {
public:
    explicit LeastConnBalancer(std::vector<UpstreamServer*> servers)
        : servers_(std::move(servers)), cycle_(detail::smooth_wrr_cycle(servers_)) {}

    UpstreamServer* pick(const PickContext& ctx) override {
        const std::size_t n = servers_.size();
        if (n == 0) return nullptr;
        // The scan starts at the server whose turn it is; the strict comparison
        // below makes it win every tie it is part of. A ramping server passes
        // up a share of its turns to the next in the cycle.
        const std::uint64_t ticket = next_.fetch_add(1, std::memory_order_relaxed);
        const std::size_t len = cycle_.size();
        std::size_t start = cycle_[ticket % len];
        for (std::size_t k = 0; k < len; ++k) {
            const std::size_t i = cycle_[(ticket + k) % len];
            if (detail::takes_turn(servers_[i], ctx, detail::draw_key(ticket, k))) {
                start = i;
                break;
            }
        }
        UpstreamServer* best = nullptr;
        double best_load = 0;
        double best_weight = 1;
        for (std::size_t k = 0; k < n; ++k) {
            auto* s = servers_[(start + k) % n];
            if (!detail::eligible(s, ctx)) continue;
            const double load = static_cast<double>(s->in_flight());
            // Slow start scales the weight down during the ramp; outside it
            // the products below are exact integers, as before.
            const double weight = s->weight() * s->weight_factor(ctx.now);
            // load/weight < best_load/best_weight, without dividing; strict,
            // so the first in scan order wins a tie.
            if (!best || load * best_weight < best_load * weight) {
                best = s;
                best_load = load;
                best_weight = weight;
            }
        }
        return best ? best : detail::last_resort(servers_, ctx);
    }

private:
    std::vector<UpstreamServer*> servers_;
    std::vector<std::uint32_t> cycle_;  // tie-break order, indices into servers_
    std::atomic<std::uint64_t> next_{0};
};

}  // namespace

std::unique_ptr<Balancer> make_least_conn(std::vector<UpstreamServer*> servers) {
    return std::make_unique<LeastConnBalancer>(std::move(servers));
}

}  // namespace dsgw::balancer
