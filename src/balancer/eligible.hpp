#pragma once
// The skip rules every balancer shares (private to src/balancer/): a server is
// a candidate when it is usable and is not the one the caller asked to avoid;
// the avoided one is still returned when it is the only usable server left.

#include "deepseek_gateway/balancer/balancer.hpp"

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

}  // namespace dsgw::balancer::detail
