#include "deepseek_gateway/admin/readiness.hpp"

namespace dsgw::admin {

std::optional<std::string> unready_upstream(const upstream::UpstreamSet& set) {
    const auto now = upstream::Clock::now();
    for (const auto& up : set.upstreams) {
        bool any = false;
        for (const auto& s : up->servers()) any = any || s->usable(now);
        if (!any)
            return "upstream " + up->name() + " has no usable server (" +
                   std::to_string(up->servers().size()) + " configured)";
    }
    return std::nullopt;
}

}  // namespace dsgw::admin
