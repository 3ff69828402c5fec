#include "deepseek_gateway/metrics/histogram.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace dsgw::metrics {

namespace {

constexpr std::array<double, 18> kLatencyBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, 600,
};

}  // namespace

std::span<const double> latency_buckets() { return kLatencyBuckets; }

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) noexcept {
    // le semantics: a value equal to a bound falls in that bound's bucket.
    auto i = static_cast<std::size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.cumulative.resize(bounds_.size() + 1);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += counts_[i].load(std::memory_order_relaxed);
        s.cumulative[i] = running;
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::span<const double> bounds)
    : name_(std::move(name)), help_(std::move(help)), bounds_(bounds) {}

Histogram& HistogramFamily::add(const prometheus::Labels& labels) {
    std::lock_guard lock(mu_);
    auto& slot = children_[labels];
    if (!slot) slot = std::make_unique<Histogram>(bounds_);
    return *slot;
}

void HistogramFamily::remove(const Histogram* h) {
    std::lock_guard lock(mu_);
    for (auto it = children_.begin(); it != children_.end(); ++it)
        if (it->second.get() == h) {
            children_.erase(it);
            return;
        }
}

bool HistogramFamily::has(const prometheus::Labels& labels) const {
    std::lock_guard lock(mu_);
    return children_.count(labels) != 0;
}

std::vector<prometheus::MetricFamily> HistogramFamily::collect() const {
    std::lock_guard lock(mu_);
    if (children_.empty()) return {};
    prometheus::MetricFamily f;
    f.name = name_;
    f.help = help_;
    f.type = prometheus::MetricType::Histogram;
    f.metric.reserve(children_.size());
    for (const auto& [labels, h] : children_) {
        prometheus::ClientMetric m;
        for (const auto& [k, v] : labels) m.label.push_back({k, v});
        auto snap = h->snapshot();
        m.histogram.sample_count = snap.count();
        m.histogram.sample_sum = snap.sum;
        m.histogram.bucket.reserve(snap.cumulative.size());
        for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
            prometheus::ClientMetric::Bucket b;
            b.cumulative_count = snap.cumulative[i];
            b.upper_bound = i < bounds_.size() ? bounds_[i]
                                               : std::numeric_limits<double>::infinity();
            m.histogram.bucket.push_back(b);
        }
        f.metric.push_back(std::move(m));
    }
    return {std::move(f)};
}

}  // namespace dsgw::metrics
