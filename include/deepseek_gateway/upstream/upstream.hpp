#pragma once
// The run-time side of the configuration: for each upstream, its servers (with
// their shared atomics) and its balancer. Built once per configuration and
// shared read-only by every worker; a reload builds a new Runtime and keeps the
// UpstreamServer objects of servers that stay, so their counts and backoff
// carry over.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/upstream/admission.hpp"
#include "deepseek_gateway/upstream/server.hpp"

#include <memory>
#include <vector>

namespace dsgw::metrics {
class Metrics;
class ConfigMetrics;
}  // namespace dsgw::metrics

namespace dsgw::tls {
class ServerContext;
class ClientContext;
}  // namespace dsgw::tls

namespace dsgw::upstream {

class Upstream {
public:
    // Throws std::runtime_error when the upstream's TLS material fails to load.
    // `tls`: a context to use instead of loading one (a DNS change keeps the
    // previous runtime's).
    Upstream(const config::UpstreamConfig& cfg,
             std::vector<std::shared_ptr<UpstreamServer>> servers,
             std::shared_ptr<tls::ClientContext> tls = nullptr);
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

private:
    const config::UpstreamConfig& cfg_;  // owned by the Runtime's Config
    std::vector<std::shared_ptr<UpstreamServer>> servers_;
    std::unique_ptr<balancer::Balancer> balancer_;
    std::shared_ptr<tls::ClientContext> tls_;
    std::unique_ptr<AdmissionQueue> queue_;
};

struct Runtime {
    std::shared_ptr<const config::Config> config;
    std::vector<std::unique_ptr<Upstream>> upstreams;  // same order as config->upstreams
    // Same order as config->listeners; null for plain-HTTP listeners.
    std::vector<std::shared_ptr<tls::ServerContext>> listener_tls;
    // The metric handles of this configuration (null without metrics, as in
    // unit tests). Held here so they live as long as a session uses them.
    std::shared_ptr<const metrics::ConfigMetrics> metrics;

    // One UpstreamServer per config::server_instances() entry (a host name
    // stands for one server per address). `previous` (may be null) lends the
    // UpstreamServer objects of servers that keep their upstream, name,
    // address and weight. With TlsMaterial::reload, certificates and keys are
    // read again (that is how SIGHUP renews them); with TlsMaterial::keep,
    // for a configuration that differs from `previous`'s only in the
    // addresses host names resolve to, its TLS contexts are taken over.
    // Throws std::runtime_error, naming the key and file, when TLS material
    // fails to load.
    enum class TlsMaterial { reload, keep };
    static std::shared_ptr<const Runtime> build(std::shared_ptr<const config::Config> cfg,
                                                const Runtime* previous,
                                                metrics::Metrics* metrics = nullptr,
                                                TlsMaterial tls = TlsMaterial::reload);
};

}  // namespace dsgw::upstream
