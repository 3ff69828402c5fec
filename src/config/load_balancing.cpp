// upstreams[]: prefix_affinity and load_metrics (SPEC §9).

#include "sections.hpp"

#include <charconv>
#include <cstdio>

namespace dsgw::config {

using yaml::Map;

namespace {

constexpr std::uint64_t kKiB = 1024;

// A decimal number in [min, max], written as a YAML number or a string.
void read_ratio(Map& m, std::string_view key, double& out, double min, double max) {
    auto n = m.get(key);
    if (!n) return;
    auto text = n->as_string();
    if (!text) return;
    double v = 0;
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, v);
    if (ec != std::errc() || ptr != end || text->empty()) {
        n->error("must be a number (got " + n->describe() + ")");
        return;
    }
    if (v < min || v > max) {
        char range[64];
        std::snprintf(range, sizeof range, "must be %g-%g", min, max);
        n->error(std::string(range) + " (got " + *text + ")");
        return;
    }
    out = v;
}

}  // namespace

void read_balancing(Map& m, UpstreamConfig& u) {
    auto pa = m.get("prefix_affinity");
    if (pa && u.balancer != BalancerKind::prefix_affinity) {
        pa->error("is read only with balancer: prefix_affinity (got balancer: " +
                  std::string(to_string(u.balancer)) + ")");
    } else if (pa) {
        if (auto pm = pa->as_map()) {
            auto& p = u.prefix_affinity;
            pm->read_size("block_bytes", p.block_bytes, 16, 64 * kKiB);
            read_ratio(*pm, "max_load_ratio", p.max_load_ratio, 1.0, 100.0);
            pm->read("table_entries", p.table_entries, 1024, 100000000);
            pm->finish();
        }
    }
    if (auto lm = m.get("load_metrics")) {
        if (auto mm = lm->as_map()) {
            auto& l = u.load_metrics;
            l.enabled = true;
            mm->read("path", l.path);
            if (auto path = mm->get("path"); path && (l.path.empty() || l.path.front() != '/'))
                path->error("must start with \"/\" (got \"" + l.path + "\")");
            mm->read_duration("interval", l.interval, false);
            mm->finish();
        }
    }
}

}  // namespace dsgw::config
