#pragma once
// Active health checks (SPEC §3 upstreams[].health_check): one prober for the
// whole process, on its own thread, never on the workers' event loops. Each
// server of an upstream with a health_check gets `GET path` every `interval`;
// `unhealthy_after` consecutive failures mark it unhealthy (the balancers skip
// it), `healthy_after` consecutive successes re-admit it. A slow answer within
// `timeout` is a success: a busy inference server stays in.

#include "deepseek_gateway/upstream/side_thread.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"


#include <cstdint>
#include <memory>
#include <thread>

namespace dsgw::upstream {

class HealthChecker {
public:
    HealthChecker();
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    // Probes the servers of `set` from now on (at start, and after a reload:
    // probes of the previous configuration stop). Any thread.
    void apply(std::shared_ptr<const UpstreamSet> set);
    void stop();

private:
    SideThread side_;
    std::shared_ptr<const UpstreamSet> upstreams_;  // on the checker's thread only
};

}  // namespace dsgw::upstream
