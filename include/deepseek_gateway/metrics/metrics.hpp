#pragma once
// The metrics of SPEC §6 (prefix deepseek_gateway_), their families created
// once, and the handles the request path counts through.
//
// Metrics::apply(config) returns a ConfigMetrics: for that configuration, one
// handle struct per listener, per (listener, upstream) pair, per upstream and
// per server, each holding plain pointers to its series (prometheus-cpp
// Counter/Gauge children and our lock-free Histogram). Counting is then an
// atomic operation on a series the caller already holds: no lookup, no
// allocation, no lock. Label values come only from the configuration.
//
// Handles are shared between the ConfigMetrics of successive configurations
// (a server that stays keeps its series and its counts across a reload). A
// series leaves its family when the last ConfigMetrics that names it is
// destroyed: hold the ConfigMetrics (shared_ptr) for as long as any handle
// taken from it may be used, e.g. in the app::Runtime a session keeps.

#include "deepseek_gateway/access/policy.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/metrics/histogram.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsgw::metrics {

// --- status codes -------------------------------------------------------------
// Codes with a series of their own. Any other code is counted under its class
// label ("1xx" ... "5xx"), anything outside 100-599 under "other", so the
// number of series per (listener, upstream) and per server is fixed.
inline constexpr std::array<unsigned, 19> kStatusCodes = {
    200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 408, 413, 429, 431, 499, 500, 502, 503, 504,
};
inline constexpr std::size_t kStatusSlots = kStatusCodes.size() + 6;  // + 1xx..5xx, other

namespace detail {
constexpr std::array<std::uint8_t, 600> make_slot_table() {
    constexpr std::size_t kClass = kStatusCodes.size(), kOther = kStatusSlots - 1;
    std::array<std::uint8_t, 600> t{};
    for (std::size_t c = 0; c < t.size(); ++c)
        t[c] = static_cast<std::uint8_t>(c >= 100 ? kClass + c / 100 - 1 : kOther);
    for (std::size_t i = 0; i < kStatusCodes.size(); ++i)
        t[kStatusCodes[i]] = static_cast<std::uint8_t>(i);
    return t;
}
// code -> slot for 0..599, built at compile time: the hot path is one load.
inline constexpr std::array<std::uint8_t, 600> kSlotOfCode = make_slot_table();
}  // namespace detail

inline std::size_t status_slot(unsigned code) noexcept {
    return code < detail::kSlotOfCode.size() ? detail::kSlotOfCode[code] : kStatusSlots - 1;
}
// The `code` label of a slot: "200", "4xx", "other".
const std::string& status_label(std::size_t slot);

// --- reasons and kinds -----------------------------------------------------------

// access_denied_total{reason}: the reasons of access::DenyReason, each with
// its series (access::to_string() names the label).
using access::DenyReason;
inline constexpr std::size_t kDenyReasons = access::kDenyReasonCount;

enum class UpstreamErrorKind : std::uint8_t {
    connect,   // connect refused, unreachable or timed out
    timeout,   // first_byte or idle timeout on an established connection
    reset,     // the server closed or reset the connection before the response was complete
    protocol,  // an invalid response (head, framing, 101)
};
inline constexpr std::size_t kUpstreamErrorKinds = 4;
const char* to_string(UpstreamErrorKind k);

// --- handles ---------------------------------------------------------------------

using prometheus::Counter;
using prometheus::Gauge;

class StatusCounters {
public:
    void increment(unsigned code) const noexcept { slots_[status_slot(code)]->Increment(); }
    double value(unsigned code) const { return slots_[status_slot(code)]->Value(); }
    std::array<Counter*, kStatusSlots> slots_{};
};

// The requests of one listener that took one route (SPEC §8) to one upstream.
struct RequestMetrics {
    StatusCounters requests;        // requests_total{listener, route, upstream, code}
    Histogram* duration = nullptr;  // request_duration_seconds{listener, route, upstream}

    // Once per request, when its last response byte was written (or it ended):
    // the status the client saw (499 when it left first) and the time from the
    // request head's arrival to the end.
    void record(unsigned status, double seconds) const noexcept {
        requests.increment(status);
        duration->observe(seconds);
    }
};

struct ListenerMetrics {
    Counter* connections_total = nullptr;  // downstream_connections_total
    Gauge* connections_active = nullptr;   // downstream_connections_active
    std::array<Counter*, kDenyReasons> denied{};  // access_denied_total{reason}
    Counter* received_bytes = nullptr;     // received_bytes_total
    Counter* sent_bytes = nullptr;         // sent_bytes_total
    Counter* tls_handshake_errors = nullptr;
    Gauge* certificate_expiry = nullptr;   // only for TLS listeners; see ConfigMetrics

    void connection_opened() const noexcept {
        connections_total->Increment();
        connections_active->Increment();
    }
    void connection_closed() const noexcept { connections_active->Decrement(); }
    void denied_by(DenyReason r) const noexcept {
        denied[static_cast<std::size_t>(r)]->Increment();
    }
    void bytes(std::uint64_t in, std::uint64_t out) const noexcept {
        if (in) received_bytes->Increment(static_cast<double>(in));
        if (out) sent_bytes->Increment(static_cast<double>(out));
    }
};

struct ServerMetrics {
    StatusCounters responses;         // upstream_requests_total{upstream, server, code}
    Histogram* first_byte = nullptr;  // upstream_first_byte_seconds{upstream, server}
    Gauge* in_flight = nullptr;       // upstream_requests_in_flight (set by sample_upstreams())
    Gauge* healthy = nullptr;         // upstream_server_healthy (set by sample_upstreams())
    Gauge* load = nullptr;            // upstream_server_load (set by sample_upstreams())
    Counter* load_scrape_errors = nullptr;  // upstream_load_scrape_errors_total
    std::array<Counter*, kUpstreamErrorKinds> errors{};  // upstream_errors_total{kind}

    // When the server's (final, non-1xx) response head has been read; a
    // negative first_byte_seconds (not measured) is not observed.
    void response(unsigned code, double first_byte_seconds) const noexcept {
        responses.increment(code);
        if (first_byte_seconds >= 0) first_byte->observe(first_byte_seconds);
    }
    void error(UpstreamErrorKind k) const noexcept {
        errors[static_cast<std::size_t>(k)]->Increment();
    }
};

struct UpstreamMetrics {
    Gauge* queue_length = nullptr;    // upstream_queue_length
    Histogram* queue_wait = nullptr;  // upstream_queue_wait_seconds
    // prefix_affinity (SPEC §9): requests whose prompt was looked up, and
    // those sent to a server that had served part of it.
    Counter* prefix_lookups = nullptr;  // upstream_prefix_lookups_total
    Counter* prefix_hits = nullptr;     // upstream_prefix_hits_total
};

namespace detail {
struct State;
}

// The handles of one configuration, indexed like the Config they were made
// from. Counting through them is thread-safe; the pointers stay valid while
// this object lives.
class ConfigMetrics {
public:
    ~ConfigMetrics();
    ConfigMetrics(const ConfigMetrics&) = delete;
    ConfigMetrics& operator=(const ConfigMetrics&) = delete;

    std::size_t listener_count() const { return listeners_.size(); }
    std::size_t upstream_count() const { return upstreams_.size(); }

    // config.listeners[i]
    ListenerMetrics* listener(std::size_t i) const { return listeners_.at(i); }
    // The requests of config.listeners[i] by route: route_slot() tells
    // which. Null for "default" on a listener whose routes have no default
    // upstream (no request can take it).
    RequestMetrics* requests(std::size_t i, std::size_t slot = 0) const {
        return requests_.at(i).at(slot);
    }
    // The slot of a listener's route: its default upstream ("default", also
    // every request of a listener without routes), routes[r] (r >= 0), or
    // "none" (r == kNoRoute: nothing matched, or the request was refused
    // before routing on a listener with routes).
    static constexpr int kDefaultRoute = -1;
    static constexpr int kNoRoute = -2;
    static std::size_t route_slot(std::size_t route_count, int r) {
        if (r == kDefaultRoute) return 0;
        if (r == kNoRoute) return route_count + 1;
        return static_cast<std::size_t>(r) + 1;
    }
    // config.upstreams[u], and server s of config::server_instances() of it
    // (a host name stands for one server per address).
    UpstreamMetrics* upstream(std::size_t u) const { return upstreams_.at(u); }
    ServerMetrics* server(std::size_t u, std::size_t s) const { return servers_.at(u).at(s); }
    std::size_t server_count(std::size_t u) const { return servers_.at(u).size(); }

    // By name; nullptr when absent.
    ListenerMetrics* listener(std::string_view name) const;
    UpstreamMetrics* upstream(std::string_view name) const;
    ServerMetrics* server(std::string_view upstream, std::string_view server) const;

    // tls_certificate_expiry_timestamp_seconds of listener i: the notAfter of
    // its certificate that expires first (Unix seconds), or nothing to drop
    // the series (a plain listener has none, so that the expiry alert only
    // sees real certificates). Call at start and on reload, not per request.
    void set_certificate_expiry(std::size_t listener, std::optional<double> unix_seconds) const;

private:
    friend class Metrics;
    explicit ConfigMetrics(std::shared_ptr<detail::State> state);

    std::shared_ptr<detail::State> state_;
    std::vector<std::string> held_;  // keys of the entries this config holds a reference on
    std::vector<std::string> listener_names_, upstream_names_;
    std::vector<std::vector<std::string>> server_names_;
    std::vector<ListenerMetrics*> listeners_;
    std::vector<std::vector<RequestMetrics*>> requests_;
    std::vector<UpstreamMetrics*> upstreams_;
    std::vector<std::vector<ServerMetrics*>> servers_;
};

// The Prometheus text exposition format served on /metrics.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

class Metrics {
public:
    // `version` is the build_info{version} label.
    explicit Metrics(std::string version);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // The handles of `cfg` (at start and after each successful reload, from one
    // thread at a time). Series of names that stay are shared with earlier
    // ConfigMetrics; series of names that left go when the last ConfigMetrics
    // naming them is destroyed.
    std::shared_ptr<const ConfigMetrics> apply(const config::Config& cfg);

    // config_reloads_total{result="success"|"failure"}.
    void reload_result(bool success);

    // Runs at the start of each render(), on the rendering thread: the place
    // to sample gauges kept elsewhere (see sample_upstreams()). Set it before
    // the first render and not again.
    void set_before_render(std::function<void()> hook);

    // Every family with its current values, then the process_* metrics.
    std::vector<prometheus::MetricFamily> collect() const;
    // collect() in the text format 0.0.4 (kContentType).
    std::string render() const;

    // Names of every metric family the gateway can export, process_* included.
    static const std::vector<std::string>& family_names();

private:
    std::shared_ptr<detail::State> state_;
    std::function<void()> before_render_;
};

}  // namespace dsgw::metrics
