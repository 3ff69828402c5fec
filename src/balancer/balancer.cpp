#include "deepseek_gateway/balancer/balancer.hpp"

#include <utility>

namespace dsgw::balancer {

std::unique_ptr<Balancer> make_balancer(config::BalancerKind kind,
                                        std::vector<UpstreamServer*> servers) {
    switch (kind) {
        case config::BalancerKind::least_conn: return make_least_conn(std::move(servers));
        case config::BalancerKind::round_robin: return make_round_robin(std::move(servers));
        case config::BalancerKind::ip_hash: return make_ip_hash(std::move(servers));
        case config::BalancerKind::prefix_affinity:
            return make_prefix_affinity(std::move(servers), config::PrefixAffinityConfig{},
                                        nullptr);
    }
    return make_least_conn(std::move(servers));
}

}  // namespace dsgw::balancer
