#pragma once
// The upstreams of one configuration: for each, its servers (with their
// shared atomics), its balancer, its client TLS context and its admission
// queue. Built once per configuration (as part of app::Runtime) and shared
// read-only by every worker and the health checker; a reload builds a new
// UpstreamSet and keeps the UpstreamServer objects of servers that stay, so
// their counts and backoff carry over.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/upstream/admission.hpp"
#include "deepseek_gateway/upstream/server.hpp"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace dsgw::tls {
class ClientContext;
}  // namespace dsgw::tls

namespace dsgw::upstream {

class Upstream {
public:
    // Throws std::runtime_error when the upstream's TLS material fails to load.
    // `tls`: a context to use instead of loading one (a DNS change keeps the
    // previous runtime's).
    // `prefix_table`: what prefix_affinity remembered under the previous
    // configuration (null: start empty).
    Upstream(const config::UpstreamConfig& cfg,
             std::vector<std::shared_ptr<UpstreamServer>> servers,
             std::shared_ptr<tls::ClientContext> tls = nullptr,
             std::shared_ptr<balancer::PrefixTable> prefix_table = nullptr);
    ~Upstream();

    const config::UpstreamConfig& config() const { return cfg_; }
    const std::string& name() const { return cfg_.name; }
    balancer::Balancer& balancer() const { return *balancer_; }
    const std::vector<std::shared_ptr<UpstreamServer>>& servers() const { return servers_; }
    // Null when the upstream speaks plain HTTP.
    tls::ClientContext* tls() const { return tls_.get(); }
    const std::shared_ptr<tls::ClientContext>& shared_tls() const { return tls_; }
    // Null when servers have no max_in_flight cap.
    AdmissionQueue* queue() const { return queue_.get(); }
    // Consecutive failures that eject a server (probes and passive).
    unsigned failure_threshold() const { return cfg_.health_check.unhealthy_after; }
    bool any_usable(Clock::time_point now = Clock::now()) const;

    // The model ids this upstream's servers list at their own GET /v1/models
    // (SPEC §8): the union of their listed_models(), sorted, without
    // duplicates; null while none has answered. Fetched only for upstreams
    // that routes use (upstream/models.hpp). A new Upstream starts with the
    // lists of the servers it keeps from the previous configuration.
    std::shared_ptr<const std::vector<std::string>> models() const {
        return models_.load(std::memory_order_acquire);
    }
    // Recomputes models() from the servers' lists: by the ModelLister after
    // a server's list changed.
    void update_models();

    // prefix_affinity's table (null for other balancers): a reload that keeps
    // the upstream's servers, in order, and its block_bytes and
    // table_entries, keeps what it remembered.
    const std::shared_ptr<balancer::PrefixTable>& prefix_table() const { return prefix_table_; }

private:
    const config::UpstreamConfig& cfg_;  // owned by the UpstreamSet's Config
    std::vector<std::shared_ptr<UpstreamServer>> servers_;
    std::shared_ptr<balancer::PrefixTable> prefix_table_;
    std::unique_ptr<balancer::Balancer> balancer_;
    std::shared_ptr<tls::ClientContext> tls_;
    std::unique_ptr<AdmissionQueue> queue_;
    std::atomic<std::shared_ptr<const std::vector<std::string>>> models_;
};

struct UpstreamSet {
    std::shared_ptr<const config::Config> config;      // owns the UpstreamConfigs
    std::vector<std::unique_ptr<Upstream>> upstreams;  // same order as config->upstreams

    // One UpstreamServer per config::server_instances() entry (a host name
    // stands for one server per address). `previous` (may be null) lends the
    // UpstreamServer objects of servers that keep their upstream, name,
    // address and weight. With `keep_tls`, an upstream of the same name keeps
    // `previous`'s client TLS context (only the addresses host names resolve
    // to changed); otherwise certificates and CAs are read again. Throws
    // std::runtime_error ("upstreams[i].tls: ...") when TLS material fails to
    // load.
    static std::shared_ptr<const UpstreamSet> build(std::shared_ptr<const config::Config> cfg,
                                                    const UpstreamSet* previous, bool keep_tls);
};

}  // namespace dsgw::upstream
