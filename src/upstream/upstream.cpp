#include "deepseek_gateway/upstream/upstream.hpp"

#include "deepseek_gateway/balancer/prefix_table.hpp"
#include "deepseek_gateway/config/servers.hpp"
#include "deepseek_gateway/tls/context.hpp"

#include <algorithm>
#include <stdexcept>

namespace dsgw::upstream {

Upstream::Upstream(const config::UpstreamConfig& cfg,
                   std::vector<std::shared_ptr<UpstreamServer>> servers,
                   std::shared_ptr<tls::ClientContext> tls,
                   std::shared_ptr<balancer::PrefixTable> prefix_table)
    : cfg_(cfg), servers_(std::move(servers)) {
    std::vector<UpstreamServer*> raw;
    raw.reserve(servers_.size());
    for (auto& s : servers_) raw.push_back(s.get());
    if (cfg_.balancer == config::BalancerKind::prefix_affinity) {
        prefix_table_ = prefix_table ? std::move(prefix_table)
                                     : std::make_shared<balancer::PrefixTable>(
                                           cfg_.prefix_affinity.table_entries);
        balancer_ =
            balancer::make_prefix_affinity(std::move(raw), cfg_.prefix_affinity, prefix_table_);
    } else {
        balancer_ = balancer::make_balancer(cfg_.balancer, std::move(raw));
    }
    if (cfg_.tls.enabled)
        tls_ = tls ? std::move(tls) : std::make_shared<tls::ClientContext>(cfg_.tls);
    for (auto& server : servers_) {
        server->set_max_in_flight(cfg_.max_in_flight);
        server->set_slow_start(cfg_.slow_start);
        server->set_load_stale_after(cfg_.load_metrics.enabled ? cfg_.load_metrics.stale_after()
                                                               : Clock::duration::zero());
    }
    if (cfg_.max_in_flight > 0)
        queue_ = std::make_unique<AdmissionQueue>(*balancer_, cfg_.queue.size);
    update_models();
}

void Upstream::update_models() {
    std::vector<std::string> all;
    bool any = false;
    for (const auto& s : servers_) {
        if (auto ids = s->listed_models()) {
            any = true;
            all.insert(all.end(), ids->begin(), ids->end());
        }
    }
    if (!any) {
        models_.store(nullptr, std::memory_order_release);
        return;
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    models_.store(std::make_shared<const std::vector<std::string>>(std::move(all)),
                  std::memory_order_release);
}

bool Upstream::any_usable(Clock::time_point now) const {
    for (const auto& s : servers_)
        if (s->usable(now)) return true;
    return false;
}

Upstream::~Upstream() = default;

namespace {

// What `old` remembered, when `cfg` and `servers` keep every server at its
// place and the blocks are cut and counted as before.
std::shared_ptr<balancer::PrefixTable> kept_table(
    const Upstream& old, const config::UpstreamConfig& cfg,
    const std::vector<std::shared_ptr<UpstreamServer>>& servers) {
    const auto& was = old.config();
    if (!old.prefix_table() || cfg.balancer != config::BalancerKind::prefix_affinity ||
        was.prefix_affinity.block_bytes != cfg.prefix_affinity.block_bytes ||
        was.prefix_affinity.table_entries != cfg.prefix_affinity.table_entries ||
        old.servers().size() != servers.size())
        return nullptr;
    for (std::size_t i = 0; i < servers.size(); ++i)
        if (old.servers()[i]->name() != servers[i]->name()) return nullptr;
    return old.prefix_table();
}

}  // namespace

std::shared_ptr<const UpstreamSet> UpstreamSet::build(std::shared_ptr<const config::Config> cfg,
                                                      const UpstreamSet* previous, bool keep_tls) {
    auto set = std::make_shared<UpstreamSet>();
    set->config = cfg;
    keep_tls = keep_tls && previous;
    for (const auto& ucfg : cfg->upstreams) {
        std::vector<std::shared_ptr<UpstreamServer>> servers;
        // One server per address of a host name; the metrics expand the
        // configuration the same way, so index i is the same server there.
        for (const auto& inst : config::server_instances(ucfg)) {
            boost::asio::ip::tcp::endpoint ep(inst.ip, inst.port);
            std::shared_ptr<UpstreamServer> kept;
            if (previous) {
                for (const auto& old : previous->upstreams) {
                    if (old->name() != ucfg.name) continue;
                    for (const auto& s : old->servers())
                        if (s->name() == inst.name && s->endpoint() == ep &&
                            s->weight() == inst.weight)
                            kept = s;
                }
            }
            servers.push_back(kept ? kept
                                   : std::make_shared<UpstreamServer>(
                                         inst.name, ep, inst.weight,
                                         ucfg.servers[inst.config_index].address.to_string()));
        }
        std::shared_ptr<tls::ClientContext> tls;
        std::shared_ptr<balancer::PrefixTable> table;
        if (previous)
            for (const auto& old : previous->upstreams) {
                if (old->name() != ucfg.name) continue;
                if (keep_tls) tls = old->shared_tls();
                table = kept_table(*old, ucfg, servers);
            }
        try {
            set->upstreams.push_back(std::make_unique<Upstream>(ucfg, std::move(servers),
                                                                std::move(tls), std::move(table)));
        } catch (const std::exception& e) {
            throw std::runtime_error("upstreams[" + std::to_string(set->upstreams.size()) +
                                     "].tls: " + e.what());
        }
    }
    return set;
}

}  // namespace dsgw::upstream
