#pragma once
// The gateway's configuration as plain, immutable structs (SPEC §3). A Config is
// built once by load_config_*() and then only read: workers hold a
// std::shared_ptr<const Config>, and a reload builds a new one.

#include "deepseek_gateway/access/api_keys.hpp"
#include "deepseek_gateway/access/policy.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsgw::config {

using Duration = std::chrono::milliseconds;

// "host:port" as written, split. For IPv6 the brackets are removed from host.
struct HostPort {
    std::string host;
    std::uint16_t port = 0;
    std::string to_string() const;  // "10.0.0.1:8080", "[::1]:8080"
};

enum class OnDeny { close, respond_403 };

struct AccessConfig {
    access::Policy policy;  // allow (required) and deny
    OnDeny on_deny = OnDeny::close;
    // Peers whose X-Forwarded-For (and PROXY header) is believed; they are
    // admitted at accept and judged by the clients they speak for
    // (access/admission.hpp).
    access::CidrSet trusted_proxies;
    // Every connection starts with a PROXY v1/v2 header, from a trusted proxy.
    bool proxy_protocol = false;
};

// listeners[].auth (SPEC §3). Absent: no key is asked for.
struct AuthConfig {
    std::string api_keys_file;
    // The file, read and checked at load: a reload re-reads it. Null when
    // the listener has no auth section.
    std::shared_ptr<const access::ApiKeys> keys;
    bool forward = false;  // pass the client's Authorization header upstream
    bool enabled() const { return keys != nullptr; }
};

enum class TlsVersion { v1_2, v1_3 };
enum class VerifyClient { required, optional };

struct CertKeyPair {
    std::string certificate;  // PEM: the certificate, then its chain
    std::string private_key;  // PEM, RSA or ECDSA
};

// listeners[].tls (SPEC §3). Absent: plain HTTP.
struct ListenerTlsConfig {
    bool enabled = false;
    // One pair, or several chosen by SNI; the first is the default.
    std::vector<CertKeyPair> certificates;
    TlsVersion min_version = TlsVersion::v1_2;
    std::string client_ca;  // mTLS when set
    VerifyClient verify_client = VerifyClient::required;
};

// upstreams[].tls. `false` or absent: plain HTTP to the servers.
struct UpstreamTlsConfig {
    bool enabled = false;
    std::string ca;           // empty: the system store
    std::string server_name;  // SNI and name check; empty: each server's host
    bool verify = true;
    CertKeyPair client;       // optional client certificate (both empty: none)
};

// listeners[].routes[] (SPEC §8): where a request goes by its JSON body's
// top-level "model" and its path. The first route whose match fits wins.
struct RouteConfig {
    std::string name;                   // label in metrics and logs; "route-N" (1-based) by default
    std::vector<std::string> models;    // match.model: shell globs (fnmatch); empty: any request
    std::string path;                   // match.path: a path prefix; empty: any path
    std::string upstream;               // name of an entry in Config::upstreams
    std::size_t upstream_index = 0;     // its index there
    std::string rewrite_model;          // the name sent upstream; empty: the client's
    std::vector<std::string> api_keys;  // key names allowed (listener auth); empty: every client
};

struct ListenerConfig {
    std::string name;
    HostPort address;                     // host is an IP literal
    boost::asio::ip::address ip;          // address.host parsed
    AccessConfig access;
    AuthConfig auth;
    ListenerTlsConfig tls;
    // The default upstream: name of an entry in Config::upstreams, and its
    // index there. Optional with routes (empty: unmatched requests get 404).
    std::string upstream;
    std::size_t upstream_index = 0;
    std::vector<RouteConfig> routes;
    // Derived at load: how much of a JSON body's prompt to note for the
    // prefix_affinity upstreams this listener's requests may go to (the most
    // any of them hashes: block_bytes x kMaxBlocks); 0 when none is.
    std::uint64_t prompt_capture = 0;
    bool has_upstream() const { return !upstream.empty(); }
    // Reads JSON bodies (SPEC §8, §9): with routes, or towards prefix_affinity.
    bool inspects() const { return !routes.empty() || prompt_capture != 0; }
};

struct ServerConfig {
    HostPort address;
    // address.host is a name to resolve, not an IP literal.
    bool host_name = false;
    // The addresses address.host resolves to, sorted (an IP literal resolves
    // to itself): at load, and again every resolve_interval. Each is a server
    // of its own (config/servers.hpp).
    std::vector<boost::asio::ip::address> resolved;
    unsigned weight = 1;
};

enum class BalancerKind { least_conn, round_robin, ip_hash, prefix_affinity };
const char* to_string(BalancerKind k);

struct UpstreamTimeouts {
    Duration connect = std::chrono::seconds(3);
    Duration first_byte = std::chrono::seconds(300);  // request sent -> first response byte
    Duration idle = std::chrono::seconds(120);        // longest silence between response chunks
};

// upstreams[].queue: the waiting room when every usable server is at its
// max_in_flight cap.
struct QueueConfig {
    unsigned size = 100;
    Duration timeout = std::chrono::seconds(30);
};

// upstreams[].health_check: active probes, one prober for the whole process.
struct HealthCheckConfig {
    bool enabled = false;
    std::string path = "/health";
    Duration interval = std::chrono::seconds(5);
    Duration timeout = std::chrono::seconds(2);
    unsigned healthy_after = 2;    // consecutive successes to re-admit
    unsigned unhealthy_after = 3;  // consecutive failures to eject (probes, and passive)
};

// upstreams[].prefix_affinity (SPEC §9): how the canonical prompt is cut and
// remembered, and how far a server may be above the pool's mean load before
// a request that prefers it goes elsewhere.
struct PrefixAffinityConfig {
    std::uint64_t block_bytes = 512;       // the canonical prompt is hashed in blocks of this size
    double max_load_ratio = 1.25;          // bound on a server's load, as a multiple of the mean
    std::uint64_t table_entries = 1000000; // remembered block hashes per upstream
    // A request's blocks beyond this many are not hashed or remembered (a
    // prompt of several MiB must not flush the table): 512 KiB of prompt at
    // the default block size, about DeepSeek's whole context.
    static constexpr std::uint64_t kMaxBlocks = 1024;
};

// upstreams[].load_metrics (SPEC §9): each server's own load, read from its
// Prometheus endpoint by one scraper for the whole process.
struct LoadMetricsConfig {
    bool enabled = false;
    std::string path = "/metrics";
    Duration interval = std::chrono::seconds(1);
    // Each scrape must answer within this (the interval, at most 2 s).
    Duration timeout() const { return std::min<Duration>(interval, std::chrono::seconds(2)); }
    // A server whose scrapes fail keeps its last values this long (three
    // intervals, at least 3 s); after that its load is the in-flight count alone.
    Duration stale_after() const {
        return std::max<Duration>(interval * 3, std::chrono::seconds(3));
    }
};

struct PassiveConfig {
    bool on_5xx = false;  // count 5xx answers as failures
};

struct UpstreamConfig {
    std::string name;
    BalancerKind balancer = BalancerKind::least_conn;
    std::vector<ServerConfig> servers;
    unsigned keepalive = 32;  // idle pooled connections kept per server, per worker
    unsigned retries = 1;     // only for requests that cannot have reached an upstream
    UpstreamTimeouts timeouts;
    UpstreamTlsConfig tls;
    unsigned max_in_flight = 0;  // per server, exact across workers; 0 = unlimited
    QueueConfig queue;
    PassiveConfig passive;
    HealthCheckConfig health_check;
    PrefixAffinityConfig prefix_affinity;  // read only with balancer: prefix_affinity
    LoadMetricsConfig load_metrics;
    // A server re-admitted after an ejection ramps its share of the requests
    // from ~0 to its full weight over this time; 0 = at once (off).
    Duration slow_start{0};
    // Servers given by host name are resolved again this often; 0 = never
    // (only at load and reload).
    Duration resolve_interval = std::chrono::seconds(30);
};

struct LimitsConfig {
    std::uint64_t max_header_bytes = 16 * 1024;
    std::uint64_t max_request_body = 32ull * 1024 * 1024;
    Duration header_timeout = std::chrono::seconds(10);
    Duration client_idle = std::chrono::seconds(60);
    std::uint64_t max_connections = 10000;  // per listener
};

enum class LogLevel { trace, debug, info, warn, error };
enum class LogFormat { json, text };

struct LoggingConfig {
    LogLevel level = LogLevel::info;
    // "stdout", "off" or a file path.
    std::string access_log = "stdout";
    LogFormat format = LogFormat::json;
};

// admin: the listener for /metrics, /healthz and /readyz (SPEC §5). Loopback
// only unless configured otherwise.
struct AdminConfig {
    HostPort address{"127.0.0.1", 9100};  // port 0: any free port
    boost::asio::ip::address ip = boost::asio::ip::make_address("127.0.0.1");
    access::Policy access = default_admin_access();  // allow 127.0.0.1/32, ::1/128
    // false: requests update no metrics and /metrics answers 404 (for
    // measuring what metrics cost; /healthz and /readyz stay).
    bool metrics = true;

    static access::Policy default_admin_access();
};

struct Config {
    unsigned workers = 1;  // "auto" is resolved to the number of CPUs at load
    std::vector<ListenerConfig> listeners;
    std::vector<UpstreamConfig> upstreams;
    LimitsConfig limits;
    LoggingConfig logging;
    AdminConfig admin;
    Duration shutdown_timeout = std::chrono::seconds(30);
    std::string source;  // file it was loaded from, for messages
};

struct LoadResult {
    std::shared_ptr<const Config> config;  // null when errors is not empty
    // Each "key.path: reason", e.g.
    // `upstreams[0].servers[2].address: port must be 1-65535 (got "10.0.0.3:99999")`.
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
};

LoadResult load_config_file(const std::string& path);
LoadResult load_config_string(std::string_view yaml, const std::string& source = "<string>");

// Value parsers shared by the loader and its tests. Each returns false and
// sets `error` (without a key path) when the text is not valid.
bool parse_duration(std::string_view text, Duration& out, std::string& error);
bool parse_size(std::string_view text, std::uint64_t& out, std::string& error);
bool parse_host_port(std::string_view text, HostPort& out, std::string& error);

}  // namespace dsgw::config
