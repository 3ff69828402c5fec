// GET /metrics in vLLM's names, and the load POST /mock/load adds to it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mock {

// What POST /mock/load sets, as if other clients were using the server too:
// running and waiting are added to the real counts in /metrics, kv_usage
// replaces the computed value, and a metrics_status other than 200 makes
// GET /metrics fail with it. Each POST sets all four (a field left out takes
// its default).
struct SimulatedLoad {
  std::uint64_t running = 0;
  std::uint64_t waiting = 0;
  std::optional<double> kv_usage;  // none: computed
  unsigned metrics_status = 200;
};

// POST /mock/load's body: a JSON object with any of the four fields (an
// empty body is {}). False, with a message, when it is not one.
bool parse_simulated_load(std::string_view body, SimulatedLoad& out, std::string& err);

struct MetricsValues {
  std::uint64_t running = 0;
  std::uint64_t waiting = 0;
  double kv_usage = 0;                     // 0..1
  std::uint64_t prefix_cache_queries = 0;  // tokens
  std::uint64_t prefix_cache_hits = 0;     // tokens
};

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The Prometheus text format (0.0.4) of vLLM's metrics, each sample labelled
// model_name="<model>" (a name that needs no escaping), numbers written as
// Python's prometheus_client writes them ("1.0").
void render_metrics(std::string& out, std::string_view model, const MetricsValues& v);

}  // namespace mock
