// Families are created once, in State. Handle structs (ListenerMetrics, ...)
// live in State::entries, keyed by the names that make up their labels, with
// a count of the ConfigMetrics that hold them: apply() takes a reference on
// every entry its configuration names (creating the missing ones), and
// ~ConfigMetrics gives them back, removing the series of an entry nobody holds
// any more. Both run under State::mu, which the request path never takes.

#include "deepseek_gateway/metrics/metrics.hpp"

#include "deepseek_gateway/config/servers.hpp"
#include "deepseek_gateway/metrics/process_metrics.hpp"

#include <prometheus/family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

namespace dsgw::metrics {

namespace {

using prometheus::Family;
using prometheus::Labels;

constexpr std::string_view kPrefix = "deepseek_gateway_";

std::string name(std::string_view suffix) { return std::string(kPrefix) + std::string(suffix); }

constexpr std::size_t kClassSlot = kStatusCodes.size();  // "1xx"; "5xx" is kClassSlot + 4
constexpr std::size_t kOtherSlot = kStatusSlots - 1;

const std::array<std::string, kStatusSlots>& slot_labels() {
    static const auto labels = [] {
        std::array<std::string, kStatusSlots> l;
        for (std::size_t i = 0; i < kStatusCodes.size(); ++i) l[i] = std::to_string(kStatusCodes[i]);
        for (std::size_t k = 1; k <= 5; ++k) l[kClassSlot + k - 1] = std::to_string(k) + "xx";
        l[kOtherSlot] = "other";
        return l;
    }();
    return labels;
}

constexpr std::array<const char*, kUpstreamErrorKinds> kErrorNames = {"connect", "timeout", "reset",
                                                                      "protocol"};

std::string key(std::initializer_list<std::string_view> parts) {
    std::string k;
    for (auto p : parts) {
        k += p;
        k += '\x1f';
    }
    return k;
}

}  // namespace

const std::string& status_label(std::size_t slot) { return slot_labels().at(slot); }

const char* to_string(UpstreamErrorKind k) { return kErrorNames.at(static_cast<std::size_t>(k)); }

namespace detail {

struct Entry {
    std::size_t refs = 0;
    std::shared_ptr<void> object;  // the handle struct
    std::vector<std::function<void()>> removers;
};

struct State {
    explicit State(const std::string& version);

    std::mutex mu;  // entries, and the families' membership changes made through them
    prometheus::Registry registry;

    Family<Counter>& requests_total;
    HistogramFamily request_duration{name("request_duration_seconds"),
                                     "Time from the arrival of a request head to the end of its "
                                     "response, by listener and upstream.",
                                     latency_buckets()};
    HistogramFamily first_byte{name("upstream_first_byte_seconds"),
                               "Time from the request sent to a server to the first byte of its "
                               "response.",
                               latency_buckets()};
    Family<Gauge>& in_flight;
    Family<Counter>& upstream_requests;
    Family<Counter>& upstream_errors;
    Family<Gauge>& healthy;
    Family<Gauge>& connections_active;
    Family<Counter>& connections_total;
    Family<Counter>& denied;
    Family<Counter>& received_bytes;
    Family<Counter>& sent_bytes;
    Family<Counter>& tls_errors;
    Family<Gauge>& cert_expiry;
    Family<Gauge>& queue_length;
    Family<Gauge>& server_load;
    Family<Counter>& scrape_errors;
    Family<Counter>& prefix_lookups;
    Family<Counter>& prefix_hits;
    HistogramFamily queue_wait{name("upstream_queue_wait_seconds"),
                               "Time requests waited in the upstream's queue for a server.",
                               latency_buckets()};
    Family<Counter>& reloads;
    Family<Gauge>& build_info;
    Counter* reload_success;
    Counter* reload_failure;

    std::unordered_map<std::string, Entry> entries;
};

namespace {

template <class T>
Family<T>& family(prometheus::detail::Builder<T> b, prometheus::Registry& r, std::string_view n,
                  const char* help) {
    return b.Name(name(n)).Help(help).Register(r);
}

}  // namespace

State::State(const std::string& version)
    : requests_total(family(prometheus::BuildCounter(), registry, "requests_total",
                            "Requests answered, by listener, upstream and status code sent to "
                            "the client.")),
      in_flight(family(prometheus::BuildGauge(), registry, "upstream_requests_in_flight",
                       "Requests a server is handling now.")),
      upstream_requests(family(prometheus::BuildCounter(), registry, "upstream_requests_total",
                               "Responses received from a server, by status code.")),
      upstream_errors(family(prometheus::BuildCounter(), registry, "upstream_errors_total",
                             "Exchanges with a server that failed, by kind (connect, timeout, "
                             "reset, protocol).")),
      healthy(family(prometheus::BuildGauge(), registry, "upstream_server_healthy",
                     "1 when the server may be given new requests, 0 while it is ejected.")),
      connections_active(family(prometheus::BuildGauge(), registry,
                                "downstream_connections_active", "Client connections open now.")),
      connections_total(family(prometheus::BuildCounter(), registry,
                               "downstream_connections_total",
                               "Client connections accepted and admitted.")),
      denied(family(prometheus::BuildCounter(), registry, "access_denied_total",
                    "Client connections or requests refused, by reason.")),
      received_bytes(family(prometheus::BuildCounter(), registry, "received_bytes_total",
                            "Request bytes read from clients (heads and bodies).")),
      sent_bytes(family(prometheus::BuildCounter(), registry, "sent_bytes_total",
                        "Response bytes written to clients (heads and bodies).")),
      tls_errors(family(prometheus::BuildCounter(), registry, "tls_handshake_errors_total",
                        "TLS handshakes with clients that failed.")),
      cert_expiry(family(prometheus::BuildGauge(), registry,
                         "tls_certificate_expiry_timestamp_seconds",
                         "notAfter of the listener's certificate that expires first, as a Unix "
                         "time.")),
      queue_length(family(prometheus::BuildGauge(), registry, "upstream_queue_length",
                          "Requests waiting for a server of the upstream.")),
      server_load(family(prometheus::BuildGauge(), registry, "upstream_server_load",
                         "The load the balancer sees on a server: requests in flight, with "
                         "load_metrics also the server's own queue and KV-cache use.")),
      scrape_errors(family(prometheus::BuildCounter(), registry,
                           "upstream_load_scrape_errors_total",
                           "Reads of a server's load_metrics endpoint that failed.")),
      prefix_lookups(family(prometheus::BuildCounter(), registry, "upstream_prefix_lookups_total",
                            "Requests whose prompt prefix_affinity looked up.")),
      prefix_hits(family(prometheus::BuildCounter(), registry, "upstream_prefix_hits_total",
                         "Requests prefix_affinity sent to a server that had served a prefix "
                         "of their prompt.")),
      reloads(family(prometheus::BuildCounter(), registry, "config_reloads_total",
                     "Configuration reloads, by result.")),
      build_info(family(prometheus::BuildGauge(), registry, "build_info",
                        "Always 1; the version label names the running build.")),
      reload_success(&reloads.Add({{"result", "success"}})),
      reload_failure(&reloads.Add({{"result", "failure"}})) {
    build_info.Add({{"version", version}}).Set(1);
}

namespace {

// Adds the series of one entry, remembering how to remove each.
class Adder {
public:
    explicit Adder(Entry& e) : e_(e) {}

    template <class T>
    T* add(Family<T>& f, const Labels& labels) {
        T* child = &f.Add(labels);
        e_.removers.push_back([&f, child] { f.Remove(child); });
        return child;
    }
    Histogram* add(HistogramFamily& f, const Labels& labels) {
        Histogram* child = &f.add(labels);
        e_.removers.push_back([&f, child] { f.remove(child); });
        return child;
    }
    void status(StatusCounters& sc, Family<Counter>& f, Labels labels) {
        for (std::size_t i = 0; i < kStatusSlots; ++i) {
            labels["code"] = status_label(i);
            sc.slots_[i] = add(f, labels);
        }
    }
    void on_remove(std::function<void()> f) { e_.removers.push_back(std::move(f)); }

private:
    Entry& e_;
};

// A reference on the entry `k`, built by `build(T&, Adder&)` when it is new.
template <class T, class Build>
T* acquire(State& st, const std::string& k, std::vector<std::string>& held, Build build) {
    auto& e = st.entries[k];
    if (!e.object) {
        auto obj = std::make_shared<T>();
        Adder a(e);
        build(*obj, a);
        e.object = obj;
    }
    ++e.refs;
    held.push_back(k);
    return static_cast<T*>(e.object.get());
}

}  // namespace

}  // namespace detail

ConfigMetrics::ConfigMetrics(std::shared_ptr<detail::State> state) : state_(std::move(state)) {}

ConfigMetrics::~ConfigMetrics() {
    std::lock_guard lock(state_->mu);
    for (const auto& k : held_) {
        auto it = state_->entries.find(k);
        if (it == state_->entries.end() || --it->second.refs > 0) continue;
        for (auto& remove : it->second.removers) remove();
        state_->entries.erase(it);
    }
}

ListenerMetrics* ConfigMetrics::listener(std::string_view name) const {
    for (std::size_t i = 0; i < listener_names_.size(); ++i)
        if (listener_names_[i] == name) return listeners_[i];
    return nullptr;
}

UpstreamMetrics* ConfigMetrics::upstream(std::string_view name) const {
    for (std::size_t i = 0; i < upstream_names_.size(); ++i)
        if (upstream_names_[i] == name) return upstreams_[i];
    return nullptr;
}

ServerMetrics* ConfigMetrics::server(std::string_view upstream, std::string_view server) const {
    for (std::size_t u = 0; u < upstream_names_.size(); ++u) {
        if (upstream_names_[u] != upstream) continue;
        for (std::size_t s = 0; s < server_names_[u].size(); ++s)
            if (server_names_[u][s] == server) return servers_[u][s];
    }
    return nullptr;
}

void ConfigMetrics::set_certificate_expiry(std::size_t i, std::optional<double> unix_seconds) const {
    auto* lm = listeners_.at(i);
    auto& fam = state_->cert_expiry;
    std::lock_guard lock(state_->mu);
    if (!unix_seconds) {
        if (lm->certificate_expiry) fam.Remove(lm->certificate_expiry);
        lm->certificate_expiry = nullptr;
        return;
    }
    if (!lm->certificate_expiry) lm->certificate_expiry = &fam.Add({{"listener", listener_names_[i]}});
    lm->certificate_expiry->Set(*unix_seconds);
}

Metrics::Metrics(std::string version) : state_(std::make_shared<detail::State>(version)) {}

Metrics::~Metrics() = default;

std::shared_ptr<const ConfigMetrics> Metrics::apply(const config::Config& cfg) {
    auto& st = *state_;
    std::shared_ptr<ConfigMetrics> cm(new ConfigMetrics(state_));
    std::lock_guard lock(st.mu);
    auto& held = cm->held_;

    for (const auto& u : cfg.upstreams) {
        cm->upstream_names_.push_back(u.name);
        cm->upstreams_.push_back(detail::acquire<UpstreamMetrics>(
            st, key({"U", u.name}), held, [&](UpstreamMetrics& m, detail::Adder& a) {
                Labels l{{"upstream", u.name}};
                m.queue_length = a.add(st.queue_length, l);
                m.queue_wait = a.add(st.queue_wait, l);
                m.prefix_lookups = a.add(st.prefix_lookups, l);
                m.prefix_hits = a.add(st.prefix_hits, l);
            }));
        auto& names = cm->server_names_.emplace_back();
        auto& servers = cm->servers_.emplace_back();
        // The same expansion as the upstream runtime's: index s here is
        // server s of upstream::Upstream::servers().
        for (const auto& s : config::server_instances(u)) {
            const auto& server = s.name;
            names.push_back(server);
            servers.push_back(detail::acquire<ServerMetrics>(
                st, key({"S", u.name, server}), held, [&](ServerMetrics& m, detail::Adder& a) {
                    Labels l{{"upstream", u.name}, {"server", server}};
                    a.status(m.responses, st.upstream_requests, l);
                    m.first_byte = a.add(st.first_byte, l);
                    m.in_flight = a.add(st.in_flight, l);
                    m.healthy = a.add(st.healthy, l);
                    m.healthy->Set(1);  // until sampled: a new server is eligible
                    m.load = a.add(st.server_load, l);
                    m.load_scrape_errors = a.add(st.scrape_errors, l);
                    for (std::size_t k = 0; k < kUpstreamErrorKinds; ++k) {
                        auto lk = l;
                        lk["kind"] = kErrorNames[k];
                        m.errors[k] = a.add(st.upstream_errors, lk);
                    }
                }));
        }
    }

    for (const auto& lc : cfg.listeners) {
        cm->listener_names_.push_back(lc.name);
        cm->listeners_.push_back(detail::acquire<ListenerMetrics>(
            st, key({"L", lc.name}), held, [&](ListenerMetrics& m, detail::Adder& a) {
                Labels l{{"listener", lc.name}};
                m.connections_total = a.add(st.connections_total, l);
                m.connections_active = a.add(st.connections_active, l);
                for (std::size_t r = 0; r < kDenyReasons; ++r) {
                    auto lr = l;
                    lr["reason"] = access::to_string(static_cast<DenyReason>(r));
                    m.denied[r] = a.add(st.denied, lr);
                }
                m.received_bytes = a.add(st.received_bytes, l);
                m.sent_bytes = a.add(st.sent_bytes, l);
                m.tls_handshake_errors = a.add(st.tls_errors, l);
                // The expiry gauge exists only once set_certificate_expiry() made it.
                a.on_remove([&fam = st.cert_expiry, pm = &m] {
                    if (pm->certificate_expiry) fam.Remove(pm->certificate_expiry);
                    pm->certificate_expiry = nullptr;
                });
            }));
        // Slots as route_slot() numbers them: default, each route, none.
        auto& slots = cm->requests_.emplace_back();
        auto add_route = [&](const std::string& route, const std::string& upstream) {
            slots.push_back(detail::acquire<RequestMetrics>(
                st, key({"R", lc.name, route, upstream}), held,
                [&](RequestMetrics& m, detail::Adder& a) {
                    Labels l{{"listener", lc.name}, {"route", route}, {"upstream", upstream}};
                    a.status(m.requests, st.requests_total, l);
                    m.duration = a.add(st.request_duration, l);
                }));
        };
        if (lc.has_upstream())
            add_route("default", lc.upstream);
        else
            slots.push_back(nullptr);
        if (!lc.routes.empty()) {
            for (const auto& r : lc.routes) add_route(r.name, r.upstream);
            add_route("none", "");
        }
    }
    return cm;
}

void Metrics::reload_result(bool success) {
    (success ? state_->reload_success : state_->reload_failure)->Increment();
}

void Metrics::set_before_render(std::function<void()> hook) { before_render_ = std::move(hook); }

std::vector<prometheus::MetricFamily> Metrics::collect() const {
    auto& st = *state_;
    auto out = st.registry.Collect();
    for (const auto* h : {&st.request_duration, &st.first_byte, &st.queue_wait})
        for (auto& f : h->collect()) out.push_back(std::move(f));
    // Families by name and series by labels, so that a scrape reads in order
    // (prometheus-cpp keeps children in a hash map).
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (auto& f : out)
        std::sort(f.metric.begin(), f.metric.end(),
                  [](const auto& a, const auto& b) { return a.label < b.label; });
    for (auto& f : collect_process_metrics()) out.push_back(std::move(f));
    return out;
}

std::string Metrics::render() const {
    if (before_render_) before_render_();
    return prometheus::TextSerializer().Serialize(collect());
}

const std::vector<std::string>& Metrics::family_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (auto n : {"requests_total", "request_duration_seconds", "upstream_first_byte_seconds",
                       "upstream_requests_in_flight", "upstream_requests_total",
                       "upstream_errors_total", "upstream_server_healthy",
                       "downstream_connections_active", "downstream_connections_total",
                       "access_denied_total", "received_bytes_total", "sent_bytes_total",
                       "tls_handshake_errors_total", "tls_certificate_expiry_timestamp_seconds",
                       "upstream_queue_length", "upstream_queue_wait_seconds",
                       "upstream_server_load", "upstream_load_scrape_errors_total",
                       "upstream_prefix_lookups_total", "upstream_prefix_hits_total",
                       "config_reloads_total", "build_info"})
            v.push_back(name(n));
        for (auto n : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                       "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                       "process_start_time_seconds"})
            v.emplace_back(n);
        return v;
    }();
    return names;
}

}  // namespace dsgw::metrics
