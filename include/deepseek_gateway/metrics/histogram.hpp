#pragma once
// A histogram whose observe() takes no lock, and the family that renders a set
// of them as one Prometheus metric family.
//
// prometheus-cpp 1.0's own Histogram::Observe() locks a std::mutex per
// observation (so that sum and buckets move together); ours is one relaxed
// atomic increment on the bucket plus a compare-and-swap on the sum. The
// price: a scrape that races an observation may see the sum without the
// count (or the reverse) for that one sample, which Prometheus' rate()
// arithmetic does not notice. _count is derived from the buckets at scrape
// time, so it always equals the +Inf bucket.

#include <prometheus/labels.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace dsgw::metrics {

// Upper bounds in seconds, 5 ms to 600 s: LLM traffic spans a quick error, a
// short completion and a ten-minute generation.
std::span<const double> latency_buckets();

class Histogram {
public:
    // `bounds`: sorted upper bounds, stored elsewhere for the histogram's life.
    explicit Histogram(std::span<const double> bounds);
    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;

    void observe(double value) noexcept;

    struct Snapshot {
        std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
        double sum = 0;
        std::uint64_t count() const { return cumulative.empty() ? 0 : cumulative.back(); }
    };
    Snapshot snapshot() const;
    std::span<const double> bounds() const { return bounds_; }

private:
    std::span<const double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1
    std::atomic<double> sum_{0.0};
};

// The children of one histogram metric, keyed by their labels. Adding and
// removing take a mutex (start, reload, scrape); observing does not.
class HistogramFamily {
public:
    HistogramFamily(std::string name, std::string help, std::span<const double> bounds);

    // The child with these labels; an existing one is returned as is.
    Histogram& add(const prometheus::Labels& labels);
    void remove(const Histogram* h);
    bool has(const prometheus::Labels& labels) const;
    const std::string& name() const { return name_; }

    // Nothing when the family has no child (no HELP/TYPE lines for it).
    std::vector<prometheus::MetricFamily> collect() const;

private:
    std::string name_;
    std::string help_;
    std::span<const double> bounds_;
    mutable std::mutex mu_;
    std::map<prometheus::Labels, std::unique_ptr<Histogram>> children_;
};

}  // namespace dsgw::metrics
