#pragma once
// The standard process_* metrics of the Prometheus client libraries, read
// from /proc at scrape time: CPU seconds, resident and virtual memory, open
// and maximum file descriptors, start time.

#include <prometheus/metric_family.h>

#include <vector>

namespace dsgw::metrics {

// A metric whose source cannot be read is left out rather than reported as 0.
std::vector<prometheus::MetricFamily> collect_process_metrics();

}  // namespace dsgw::metrics
