#include "deepseek_gateway/metrics/sample.hpp"

namespace dsgw::metrics {

void sample_upstreams(const upstream::UpstreamSet& set, const ConfigMetrics& m) {
    const auto& upstreams = set.upstreams;
    if (upstreams.size() != m.upstream_count()) return;
    const auto now = upstream::Clock::now();
    for (std::size_t u = 0; u < upstreams.size(); ++u) {
        if (const auto* queue = upstreams[u]->queue())
            m.upstream(u)->queue_length->Set(static_cast<double>(queue->length()));
        const auto& servers = upstreams[u]->servers();
        if (servers.size() != m.server_count(u)) continue;
        for (std::size_t s = 0; s < servers.size(); ++s) {
            auto* sm = m.server(u, s);
            sm->in_flight->Set(static_cast<double>(servers[s]->in_flight()));
            sm->healthy->Set(servers[s]->usable(now) ? 1 : 0);
            sm->load->Set(servers[s]->load(now));
        }
    }
}

}  // namespace dsgw::metrics
