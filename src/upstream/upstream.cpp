#include "deepseek_gateway/upstream/upstream.hpp"

namespace dsgw::upstream {

Upstream::Upstream(const config::UpstreamConfig& cfg,
                   std::vector<std::shared_ptr<UpstreamServer>> servers)
    : cfg_(cfg), servers_(std::move(servers)) {
    std::vector<UpstreamServer*> raw;
    raw.reserve(servers_.size());
    for (auto& s : servers_) raw.push_back(s.get());
    balancer_ = balancer::make_balancer(cfg_.balancer, std::move(raw));
}

std::shared_ptr<const Runtime> Runtime::build(std::shared_ptr<const config::Config> cfg,
                                              const Runtime* previous) {
    auto rt = std::make_shared<Runtime>();
    rt->config = cfg;
    for (const auto& ucfg : cfg->upstreams) {
        std::vector<std::shared_ptr<UpstreamServer>> servers;
        for (const auto& scfg : ucfg.servers) {
            boost::asio::ip::tcp::endpoint ep(scfg.resolved.front(), scfg.address.port);
            std::shared_ptr<UpstreamServer> kept;
            if (previous) {
                for (const auto& old : previous->upstreams) {
                    if (old->name() != ucfg.name) continue;
                    for (const auto& s : old->servers())
                        if (s->name() == scfg.address.to_string() && s->endpoint() == ep &&
                            s->weight() == scfg.weight)
                            kept = s;
                }
            }
            servers.push_back(kept ? kept
                                   : std::make_shared<UpstreamServer>(scfg.address.to_string(),
                                                                      ep, scfg.weight));
        }
        rt->upstreams.push_back(std::make_unique<Upstream>(ucfg, std::move(servers)));
    }
    return rt;
}

}  // namespace dsgw::upstream
