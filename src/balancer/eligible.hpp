#pragma once
// The skip rules every balancer shares (private to src/balancer/): a server is
// a candidate when it is usable and is not the one the caller asked to avoid;
// the avoided one is still returned when it is the only usable server left.
// A server in its slow-start ramp takes only a share of the turns it is
// offered (takes_turn()).

#include "deepseek_gateway/balancer/balancer.hpp"

#include <cstdint>
#include <vector>

namespace dsgw::balancer::detail {

// Usable (healthy, not ejected) and below its in-flight cap.
inline bool available(const UpstreamServer* s, const PickContext& ctx) {
    return s->usable(ctx.now) && s->has_capacity();
}

inline bool eligible(const UpstreamServer* s, const PickContext& ctx) {
    return s != ctx.exclude && available(s, ctx);
}

inline bool any_eligible(const std::vector<UpstreamServer*>& servers, const PickContext& ctx) {
    for (const auto* s : servers) {
        if (eligible(s, ctx)) return true;
    }
    return false;
}

// ctx.exclude if it is one of `servers` and usable, else nullptr. Looked up in
// the list so the caller gets back its own non-const pointer.
inline UpstreamServer* last_resort(const std::vector<UpstreamServer*>& servers,
                                   const PickContext& ctx) {
    if (!ctx.exclude) return nullptr;
    for (auto* s : servers) {
        if (s == ctx.exclude) return available(s, ctx) ? s : nullptr;
    }
    return nullptr;
}

// Slow start: a ramping server takes a turn it is offered with probability
// weight_factor(now); a turn it passes up goes to whoever comes next. The
// draw is a hash of `draw_key` (the pick's ticket and the step of the walk),
// not a random generator: no shared state to contend on, no per-thread
// state, and the same picks give the same draws in tests. The common case
// (no ramp) costs one relaxed load.
inline std::uint64_t mix64(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

inline std::uint64_t draw_key(std::uint64_t ticket, std::size_t step) {
    return ticket * 0x100000001b3ull + step;
}

inline bool takes_turn(const UpstreamServer* s, const PickContext& ctx, std::uint64_t draw_key) {
    const double f = s->weight_factor(ctx.now);
    if (f >= 1.0) return true;
    // The top 53 bits as a double in [0, 1).
    const double u = static_cast<double>(mix64(draw_key) >> 11) * 0x1.0p-53;
    return u < f;
}

}  // namespace dsgw::balancer::detail
