// upstreams[]: which servers may take work and how much (SPEC §3):
// max_in_flight, queue, passive, health_check, slow_start.

#include "sections.hpp"

namespace dsgw::config {

using yaml::Map;

void read_admission(Map& m, UpstreamConfig& u) {
    m.read("max_in_flight", u.max_in_flight, 0, 100000);
    if (auto q = m.get("queue")) {
        if (auto qm = q->as_map()) {
            qm->read("size", u.queue.size, 0, 1000000);
            qm->read_duration("timeout", u.queue.timeout, false);
            qm->finish();
        }
    }
    if (auto p = m.get("passive")) {
        if (auto pm = p->as_map()) {
            pm->read("on_5xx", u.passive.on_5xx);
            pm->finish();
        }
    }
    if (auto h = m.get("health_check")) {
        if (auto hm = h->as_map()) {
            auto& hc = u.health_check;
            hc.enabled = true;
            hm->read("path", hc.path);
            if (auto path = hm->get("path"); path && (hc.path.empty() || hc.path.front() != '/'))
                path->error("must start with \"/\" (got \"" + hc.path + "\")");
            hm->read_duration("interval", hc.interval, false);
            hm->read_duration("timeout", hc.timeout, false);
            hm->read("healthy_after", hc.healthy_after, 1, 100);
            hm->read("unhealthy_after", hc.unhealthy_after, 1, 100);
            if (hc.timeout > hc.interval)
                if (auto t = hm->get("timeout"))
                    t->error("must not be longer than interval");
            hm->finish();
        }
    }
    m.read_duration("slow_start", u.slow_start, true);
    // ip_hash keeps each client on its server; a ramp would have to send a
    // share of a re-admitted server's clients elsewhere, and move them again
    // as it grows (nginx refuses the pair for the same reason).
    if (u.slow_start.count() > 0 && u.balancer == BalancerKind::ip_hash)
        if (auto s = m.get("slow_start"))
            s->error("cannot be used with balancer: ip_hash (a ramp would move clients off the "
                     "server they stick to); leave it out or write 0s");
}

}  // namespace dsgw::config
