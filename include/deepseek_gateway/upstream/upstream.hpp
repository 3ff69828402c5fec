#pragma once
// The run-time side of the configuration: for each upstream, its servers (with
// their shared atomics) and its balancer. Built once per configuration and
// shared read-only by every worker; a reload builds a new Runtime and keeps the
// UpstreamServer objects of servers that stay, so their counts and backoff
// carry over.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/upstream/server.hpp"

#include <memory>
#include <vector>

namespace dsgw::upstream {

class Upstream {
public:
    Upstream(const config::UpstreamConfig& cfg,
             std::vector<std::shared_ptr<UpstreamServer>> servers);

    const config::UpstreamConfig& config() const { return cfg_; }
    const std::string& name() const { return cfg_.name; }
    balancer::Balancer& balancer() const { return *balancer_; }
    const std::vector<std::shared_ptr<UpstreamServer>>& servers() const { return servers_; }

private:
    const config::UpstreamConfig& cfg_;  // owned by the Runtime's Config
    std::vector<std::shared_ptr<UpstreamServer>> servers_;
    std::unique_ptr<balancer::Balancer> balancer_;
};

struct Runtime {
    std::shared_ptr<const config::Config> config;
    std::vector<std::unique_ptr<Upstream>> upstreams;  // same order as config->upstreams

    // `previous` (may be null) lends the UpstreamServer objects of servers
    // that keep their upstream name and address.
    static std::shared_ptr<const Runtime> build(std::shared_ptr<const config::Config> cfg,
                                                const Runtime* previous);
};

}  // namespace dsgw::upstream
