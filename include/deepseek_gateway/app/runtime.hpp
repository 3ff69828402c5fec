#pragma once
// One configuration made ready to serve: the Config, its upstreams, each
// listener's TLS context and the metric handles. Built once per configuration
// (start, SIGHUP, new addresses of host names) and shared read-only by every
// worker; a session holds the Runtime its request started with, so a request
// begun before a reload finishes on the old configuration.

#include "deepseek_gateway/upstream/upstream.hpp"

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

namespace dsgw::metrics {
class Metrics;
class ConfigMetrics;
struct ListenerMetrics;
}  // namespace dsgw::metrics

namespace dsgw::tls {
class ServerContext;
}  // namespace dsgw::tls

namespace dsgw::app {

// One listener of the configuration, as a connection on it needs it.
struct ListenerRuntime {
    const config::ListenerConfig* config = nullptr;
    std::size_t index = 0;                    // in config->listeners, and of its metric handles
    std::shared_ptr<tls::ServerContext> tls;  // null: plain HTTP
    const metrics::ListenerMetrics* metrics = nullptr;  // null without metrics
};

class Runtime {
public:
    // With TlsMaterial::reload, certificates and keys are read again (that is
    // how SIGHUP renews them); with TlsMaterial::keep, for a configuration
    // that differs from `previous`'s only in the addresses host names resolve
    // to, its TLS contexts are taken over. `previous` (may be null) also
    // lends the UpstreamServer objects of servers that stay (see
    // UpstreamSet::build()). `metrics` may be null (unit tests), and is not
    // used when admin.metrics is false. Throws std::runtime_error, naming the
    // key and file ("listeners[0].tls: ..."), when TLS material fails to load.
    enum class TlsMaterial { reload, keep };
    static std::shared_ptr<const Runtime> build(std::shared_ptr<const config::Config> cfg,
                                                const Runtime* previous,
                                                metrics::Metrics* metrics = nullptr,
                                                TlsMaterial tls = TlsMaterial::reload);
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    std::shared_ptr<const config::Config> config;
    // The metric handles of this configuration (null without metrics). Held
    // here so they live as long as a session uses them.
    std::shared_ptr<const metrics::ConfigMetrics> metrics;

    // config->upstreams[i]
    const upstream::Upstream& upstream(std::size_t i) const { return *upstreams_->upstreams[i]; }
    const std::vector<std::unique_ptr<upstream::Upstream>>& upstreams() const {
        return upstreams_->upstreams;
    }
    // For the health checker, which probes them on its own thread.
    const std::shared_ptr<const upstream::UpstreamSet>& upstream_set() const { return upstreams_; }

    // The listener of that name, or null when the configuration has none
    // (a reload removed it). A scan of a few entries: no string is built.
    const ListenerRuntime* listener(std::string_view name) const;
    // Same order as config->listeners.
    const std::vector<ListenerRuntime>& listeners() const { return listeners_; }

private:
    Runtime();

    std::shared_ptr<const upstream::UpstreamSet> upstreams_;
    std::vector<ListenerRuntime> listeners_;
};

}  // namespace dsgw::app
