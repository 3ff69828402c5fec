#pragma once
// Gauges whose truth lives elsewhere are copied in at scrape time rather than
// moved on the request path: the in-flight count of each server is already an
// exact atomic on UpstreamServer (held by its ServerLease), "usable" is a
// function of its health and ejection state, and the queue keeps its length.

#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"

namespace dsgw::metrics {

// Sets upstream_requests_in_flight and upstream_server_healthy of every server
// of `set`, and upstream_queue_length of every upstream with a queue, through
// `m`, which must have been made by Metrics::apply() from set.config (same
// upstreams, same servers, same order). Servers are matched by position; a
// mismatch in shape leaves the gauges alone.
void sample_upstreams(const upstream::UpstreamSet& set, const ConfigMetrics& m);

}  // namespace dsgw::metrics
