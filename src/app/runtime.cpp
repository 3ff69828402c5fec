// app::Runtime::build(): a configuration's upstreams, listener TLS contexts
// and metric handles, and the per-listener view connections look up by name.

#include "deepseek_gateway/app/runtime.hpp"

#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/tls/context.hpp"

#include <stdexcept>
#include <string>

namespace dsgw::app {

Runtime::Runtime() = default;
Runtime::~Runtime() = default;

std::shared_ptr<const Runtime> Runtime::build(std::shared_ptr<const config::Config> cfg,
                                              const Runtime* previous, metrics::Metrics* metrics,
                                              TlsMaterial material) {
    if (!cfg->admin.metrics) metrics = nullptr;  // admin.metrics: false
    std::shared_ptr<Runtime> rt(new Runtime());
    rt->config = cfg;
    const bool keep_tls = material == TlsMaterial::keep && previous;
    // Upstreams first: their errors are reported before the listeners'.
    rt->upstreams_ = upstream::UpstreamSet::build(
        cfg, previous ? previous->upstreams_.get() : nullptr, keep_tls);
    rt->listeners_.reserve(cfg->listeners.size());
    for (std::size_t i = 0; i < cfg->listeners.size(); ++i) {
        const auto& lcfg = cfg->listeners[i];
        ListenerRuntime l{&lcfg, i, nullptr, nullptr};
        if (lcfg.tls.enabled) {
            if (keep_tls && i < previous->listeners_.size() && previous->listeners_[i].tls) {
                l.tls = previous->listeners_[i].tls;
            } else {
                try {
                    l.tls = std::make_shared<tls::ServerContext>(lcfg.tls);
                } catch (const std::exception& e) {
                    throw std::runtime_error("listeners[" + std::to_string(i) +
                                             "].tls: " + e.what());
                }
            }
        }
        rt->listeners_.push_back(std::move(l));
    }
    if (metrics) {
        rt->metrics = metrics->apply(*cfg);
        for (auto& l : rt->listeners_) {
            l.metrics = rt->metrics->listener(l.index);
            if (l.tls)
                rt->metrics->set_certificate_expiry(l.index,
                                                    static_cast<double>(l.tls->not_after()));
        }
    }
    return rt;
}

const ListenerRuntime* Runtime::listener(std::string_view name) const {
    for (const auto& l : listeners_)
        if (l.config->name == name) return &l;
    return nullptr;
}

}  // namespace dsgw::app
