// Smooth weighted round robin (nginx's algorithm), global across worker
// threads and lock-free. nginx keeps a mutable current_weight per server and
// updates it under a lock on every pick; here the whole cycle that algorithm
// produces is computed once at construction, and a pick is one fetch_add on a
// shared counter plus an index into that cycle. A server in its slow-start
// ramp passes up a share of its slots (detail::takes_turn), which go to the
// next server in the cycle.

#include "deepseek_gateway/balancer/balancer.hpp"

#include "eligible.hpp"
#include "smooth_wrr.hpp"

#include <atomic>
#include <cstdint>
#include <numeric>
#include <utility>

namespace dsgw::balancer {

namespace detail {

// One period of nginx's smooth WRR: each step adds every server's weight to
// its current weight, picks the largest (first on ties) and subtracts the
// total from it. The state returns to all zeros after sum(weights) steps, so
// the sequence is periodic; dividing weights by their gcd gives the same
// pattern in a shorter period.
std::vector<std::uint32_t> smooth_wrr_cycle(const std::vector<UpstreamServer*>& servers) {
    std::vector<std::uint32_t> cycle;
    if (servers.empty()) return cycle;
    unsigned g = 0;
    for (const auto* s : servers) g = std::gcd(g, s->weight());
    std::vector<std::int64_t> weight(servers.size()), current(servers.size(), 0);
    std::int64_t total = 0;
    for (std::size_t i = 0; i < servers.size(); ++i) {
        weight[i] = servers[i]->weight() / g;
        total += weight[i];
    }
    cycle.reserve(static_cast<std::size_t>(total));
    for (std::int64_t step = 0; step < total; ++step) {
        std::size_t best = 0;
        for (std::size_t i = 0; i < servers.size(); ++i) {
            current[i] += weight[i];
            if (current[i] > current[best]) best = i;
        }
        current[best] -= total;
        cycle.push_back(static_cast<std::uint32_t>(best));
    }
    return cycle;
}

}  // namespace detail

namespace {

class RoundRobinBalancer final : public Balancer {
public:
    explicit RoundRobinBalancer(std::vector<UpstreamServer*> servers)
        : servers_(std::move(servers)), cycle_(detail::smooth_wrr_cycle(servers_)) {}

    UpstreamServer* pick(const PickContext& ctx) override {
        if (cycle_.empty()) return nullptr;
        const std::size_t len = cycle_.size();
        const std::uint64_t ticket = next_.fetch_add(1, std::memory_order_relaxed);
        const std::size_t start = ticket % len;
        auto* first = servers_[cycle_[start]];
        const bool first_ok = detail::eligible(first, ctx);
        if (first_ok && detail::takes_turn(first, ctx, detail::draw_key(ticket, 0))) return first;
        // Walking the cycle costs up to sum(weights) steps; make sure it ends
        // on a hit before paying for it.
        if (!first_ok && !detail::any_eligible(servers_, ctx))
            return detail::last_resort(servers_, ctx);
        // A skipped server's slots go to whoever follows it in the cycle; a
        // ramping server that passed up every turn offered is still better
        // than none.
        UpstreamServer* passed = first_ok ? first : nullptr;
        for (std::size_t k = 1; k < len; ++k) {
            auto* s = servers_[cycle_[(start + k) % len]];
            if (!detail::eligible(s, ctx)) continue;
            if (detail::takes_turn(s, ctx, detail::draw_key(ticket, k))) return s;
            if (!passed) passed = s;
        }
        return passed ? passed : detail::last_resort(servers_, ctx);
    }

private:
    std::vector<UpstreamServer*> servers_;
    std::vector<std::uint32_t> cycle_;  // indices into servers_
    std::atomic<std::uint64_t> next_{0};
};

}  // namespace

std::unique_ptr<Balancer> make_round_robin(std::vector<UpstreamServer*> servers) {
    return std::make_unique<RoundRobinBalancer>(std::move(servers));
}

}  // namespace dsgw::balancer
