#pragma once
// The gateway's configuration as plain, immutable structs (SPEC §3). A Config is
// built once by load_config_*() and then only read: workers hold a
// std::shared_ptr<const Config>, and a reload builds a new one.

#include "deepseek_gateway/access/policy.hpp"

#include <boost/asio/ip/address.hpp>

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
};

struct ListenerConfig {
    std::string name;
    HostPort address;                     // host is an IP literal
    boost::asio::ip::address ip;          // address.host parsed
    AccessConfig access;
    std::string upstream;                 // name of an entry in Config::upstreams
    std::size_t upstream_index = 0;       // its index there
};

struct ServerConfig {
    HostPort address;
    // Addresses address.host resolved to at load time (an IP literal resolves
    // to itself). The first one is used.
    std::vector<boost::asio::ip::address> resolved;
    unsigned weight = 1;
};

enum class BalancerKind { least_conn, round_robin, ip_hash };
const char* to_string(BalancerKind k);

struct UpstreamTimeouts {
    Duration connect = std::chrono::seconds(3);
    Duration first_byte = std::chrono::seconds(300);  // request sent -> first response byte
    Duration idle = std::chrono::seconds(120);        // longest silence between response chunks
};

struct UpstreamConfig {
    std::string name;
    BalancerKind balancer = BalancerKind::least_conn;
    std::vector<ServerConfig> servers;
    unsigned keepalive = 32;  // idle pooled connections kept per server, per worker
    unsigned retries = 1;     // only for requests that cannot have reached an upstream
    UpstreamTimeouts timeouts;
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

struct Config {
    unsigned workers = 1;  // "auto" is resolved to the number of CPUs at load
    std::vector<ListenerConfig> listeners;
    std::vector<UpstreamConfig> upstreams;
    LimitsConfig limits;
    LoggingConfig logging;
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
