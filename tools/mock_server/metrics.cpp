#include "metrics.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <charconv>

namespace mock {

namespace json = boost::json;

namespace {

// Python's repr() of a float: the shortest text that reads back the same,
// with ".0" on an integral value.
void append_float(std::string& out, double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  out += text;
  if (text.find_first_of(".en") == std::string_view::npos) out += ".0";
}

bool count_of(const json::value& v, std::uint64_t& out) {
  if (const auto* i = v.if_int64(); i && *i >= 0) {
    out = static_cast<std::uint64_t>(*i);
    return true;
  }
  if (const auto* u = v.if_uint64()) {
    out = *u;
    return true;
  }
  return false;
}

}  // namespace

bool parse_simulated_load(std::string_view body, SimulatedLoad& out, std::string& err) {
  out = SimulatedLoad{};
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return true;
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  const auto* obj = ec ? nullptr : doc.if_object();
  if (!obj) {
    err = "expected a JSON object with running, waiting, kv_usage, metrics_status";
    return false;
  }
  for (const auto& [key, v] : *obj) {
    if (key == "running" || key == "waiting") {
      if (!count_of(v, key == "running" ? out.running : out.waiting)) {
        err = std::string(key) + ": expected a non-negative integer";
        return false;
      }
    } else if (key == "kv_usage") {
      if (v.is_null()) {
        out.kv_usage.reset();
        continue;
      }
      const bool number = v.is_number();
      const double x = number ? v.to_number<double>() : -1;
      if (!number || !(x >= 0 && x <= 1)) {
        err = "kv_usage: expected a number in 0..1, or null";
        return false;
      }
      out.kv_usage = x;
    } else if (key == "metrics_status") {
      std::uint64_t s = 0;
      // 204, 205 and 304 cannot carry the text body of a failure.
      if (!count_of(v, s) || s < 200 || s > 599 || s == 204 || s == 205 || s == 304) {
        err = "metrics_status: expected an HTTP status in 200..599 (not 204, 205, 304)";
        return false;
      }
      out.metrics_status = static_cast<unsigned>(s);
    } else {
      err = "unknown field \"" + std::string(key) + "\"";
      return false;
    }
  }
  return true;
}

void render_metrics(std::string& out, std::string_view model, const MetricsValues& v) {
  auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                    double value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += "{model_name=\"";
    out += model;
    out += "\"} ";
    append_float(out, value);
    out += '\n';
  };
  out.clear();
  family("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.",
         static_cast<double>(v.running));
  family("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
         static_cast<double>(v.waiting));
  family("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.",
         v.kv_usage);
  family("vllm:prefix_cache_queries_total", "counter",
         "Prefix cache queries, in terms of number of queried tokens.",
         static_cast<double>(v.prefix_cache_queries));
  family("vllm:prefix_cache_hits_total", "counter",
         "Prefix cache hits, in terms of number of cached tokens.",
         static_cast<double>(v.prefix_cache_hits));
}

}  // namespace mock
