// The configuration loader (SPEC §3): values, defaults, and every kind of
// error with the exact "key.path: reason" text an operator will read.

#include "deepseek_gateway/config/config.hpp"
#include "config_checks.hpp"
#include "deepseek_gateway/config/servers.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <thread>

using namespace dsgw::config;
using namespace dsgw::config::testing;
using namespace std::chrono_literals;
namespace ip = boost::asio::ip;

namespace {

// The smallest valid configuration, for tests that change one thing.
const char* const kMinimal = R"(
listeners:
  - name: l
    address: 127.0.0.1:8080
    access: {allow: [127.0.0.0/8]}
    upstream: u
upstreams:
  - name: u
    servers: [{address: 127.0.0.1:9001}]
)";

// A configuration with one listener body and one upstream body, both given as
// YAML flow mappings' contents, so that each test states only what it is about.
std::string with(const std::string& listener,
                 const std::string& upstream = "name: u, servers: [{address: 127.0.0.1:9001}]",
                 const std::string& extra = "") {
    return "listeners: [{" + listener + "}]\nupstreams: [{" + upstream + "}]\n" + extra;
}
const std::string kListener =
    "name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, upstream: u";

}  // namespace

// --- value syntaxes -------------------------------------------------------------

TEST(ParseDuration, AcceptsEachUnit) {
    Duration d{};
    std::string e;
    ASSERT_TRUE(parse_duration("250ms", d, e)) << e;
    EXPECT_EQ(d, 250ms);
    ASSERT_TRUE(parse_duration("5s", d, e));
    EXPECT_EQ(d, 5s);
    ASSERT_TRUE(parse_duration("2m", d, e));
    EXPECT_EQ(d, 2min);
    ASSERT_TRUE(parse_duration("1h", d, e));
    EXPECT_EQ(d, 1h);
    ASSERT_TRUE(parse_duration("0s", d, e));
    EXPECT_EQ(d, 0ms);
    ASSERT_TRUE(parse_duration("1.5s", d, e));
    EXPECT_EQ(d, 1500ms);
    ASSERT_TRUE(parse_duration("0.25m", d, e));
    EXPECT_EQ(d, 15s);
    ASSERT_TRUE(parse_duration("300s", d, e));
    EXPECT_EQ(d, 300s);
}

TEST(ParseDuration, RejectsWithAReason) {
    Duration d{};
    std::string e;
    EXPECT_FALSE(parse_duration("5", d, e));
    EXPECT_EQ(e,
              "missing unit: write a number and a unit ms, s, m or h, e.g. \"250ms\", \"5s\" (got "
              "\"5\")");
    EXPECT_FALSE(parse_duration("5sec", d, e));
    EXPECT_EQ(e, "unknown unit \"sec\": use ms, s, m or h (got \"5sec\")");
    EXPECT_FALSE(parse_duration("fast", d, e));
    EXPECT_EQ(e,
              "not a duration: write a number and a unit ms, s, m or h, e.g. \"250ms\", \"5s\" "
              "(got \"fast\")");
    EXPECT_FALSE(parse_duration("", d, e));
    EXPECT_FALSE(parse_duration("-5s", d, e));
    EXPECT_FALSE(parse_duration("5 s", d, e));
    EXPECT_FALSE(parse_duration("1.5ms", d, e));
    EXPECT_EQ(e, "must be a whole number of milliseconds (got \"1.5ms\")");
    EXPECT_FALSE(parse_duration("99999999999999999999h", d, e));
    EXPECT_EQ(e, "duration too large (got \"99999999999999999999h\")");
}

TEST(ParseSize, PlainBytesAndBinaryUnits) {
    std::uint64_t v = 0;
    std::string e;
    ASSERT_TRUE(parse_size("16384", v, e)) << e;
    EXPECT_EQ(v, 16384u);
    ASSERT_TRUE(parse_size("16KiB", v, e));
    EXPECT_EQ(v, 16u * 1024);
    ASSERT_TRUE(parse_size("32MiB", v, e));
    EXPECT_EQ(v, 32u * 1024 * 1024);
    ASSERT_TRUE(parse_size("2GiB", v, e));
    EXPECT_EQ(v, 2ull * 1024 * 1024 * 1024);
}

TEST(ParseSize, RejectsWithAReason) {
    std::uint64_t v = 0;
    std::string e;
    EXPECT_FALSE(parse_size("32MB", v, e));
    EXPECT_EQ(e,
              "unknown size unit \"MB\": use KiB, MiB or GiB (powers of 1024), or plain bytes (got "
              "\"32MB\")");
    EXPECT_FALSE(parse_size("1.5MiB", v, e));
    EXPECT_EQ(e, "must be a whole number (got \"1.5MiB\")");
    EXPECT_FALSE(parse_size("big", v, e));
    EXPECT_FALSE(parse_size("", v, e));
    EXPECT_FALSE(parse_size("-1", v, e));
    EXPECT_FALSE(parse_size("99999999999999999999GiB", v, e));
    EXPECT_EQ(e, "size too large (got \"99999999999999999999GiB\")");
}

TEST(ParseHostPort, Ipv4HostnameAndIpv6Brackets) {
    HostPort hp;
    std::string e;
    ASSERT_TRUE(parse_host_port("0.0.0.0:8443", hp, e)) << e;
    EXPECT_EQ(hp.host, "0.0.0.0");
    EXPECT_EQ(hp.port, 8443);
    ASSERT_TRUE(parse_host_port("[::]:8443", hp, e)) << e;
    EXPECT_EQ(hp.host, "::");
    EXPECT_EQ(hp.port, 8443);
    ASSERT_TRUE(parse_host_port("[2001:db8::1]:80", hp, e)) << e;
    EXPECT_EQ(hp.host, "2001:db8::1");
    EXPECT_EQ(hp.to_string(), "[2001:db8::1]:80");
    ASSERT_TRUE(parse_host_port("inference-1.example.com:8080", hp, e)) << e;
    EXPECT_EQ(hp.host, "inference-1.example.com");
    EXPECT_EQ(hp.to_string(), "inference-1.example.com:8080");
    ASSERT_TRUE(parse_host_port("127.0.0.1:0", hp, e)) << e;  // "any port": the caller decides
    EXPECT_EQ(hp.port, 0);
    ASSERT_TRUE(parse_host_port("127.0.0.1:65535", hp, e)) << e;
    EXPECT_EQ(hp.port, 65535);
}

TEST(ParseHostPort, RejectsWithAReason) {
    HostPort hp;
    std::string e;
    EXPECT_FALSE(parse_host_port("10.0.0.3:99999", hp, e));
    EXPECT_EQ(e, "port must be 1-65535 (got \"10.0.0.3:99999\")");
    EXPECT_FALSE(parse_host_port("10.0.0.3:65536", hp, e));
    EXPECT_EQ(e, "port must be 1-65535 (got \"10.0.0.3:65536\")");
    EXPECT_FALSE(parse_host_port("10.0.0.3:http", hp, e));
    EXPECT_EQ(e, "port must be 1-65535 (got \"10.0.0.3:http\")");
    EXPECT_FALSE(parse_host_port("10.0.0.3", hp, e));
    EXPECT_EQ(e, "missing port: write host:port, e.g. \"10.0.0.1:8080\" (got \"10.0.0.3\")");
    EXPECT_FALSE(parse_host_port("10.0.0.3:", hp, e));
    EXPECT_FALSE(parse_host_port(":8080", hp, e));
    EXPECT_EQ(e, "missing host: write host:port, e.g. \"0.0.0.0:8080\" (got \":8080\")");
    EXPECT_FALSE(parse_host_port("::1:8080", hp, e));
    EXPECT_EQ(e, "an IPv6 address needs brackets, e.g. \"[::1]:8080\" (got \"::1:8080\")");
    EXPECT_FALSE(parse_host_port("[::1]", hp, e));
    EXPECT_FALSE(parse_host_port("[::1:8080", hp, e));
    EXPECT_FALSE(parse_host_port("[10.0.0.1]:80", hp, e));
    EXPECT_EQ(e, "not an IPv6 address inside the brackets (got \"[10.0.0.1]:80\")");
    EXPECT_FALSE(parse_host_port("10.0.0.256:80", hp, e));
    EXPECT_EQ(e, "not a valid IPv4 address (got \"10.0.0.256:80\")");
    EXPECT_FALSE(parse_host_port("bad host:80", hp, e));
    EXPECT_EQ(e, "not a valid host name (got \"bad host:80\")");
}

TEST(Names, BalancerKindsPrintAsWritten) {
    EXPECT_STREQ(to_string(BalancerKind::least_conn), "least_conn");
    EXPECT_STREQ(to_string(BalancerKind::round_robin), "round_robin");
    EXPECT_STREQ(to_string(BalancerKind::ip_hash), "ip_hash");
    EXPECT_EQ((HostPort{"10.0.0.1", 8080}).to_string(), "10.0.0.1:8080");
    EXPECT_EQ((HostPort{"::1", 8080}).to_string(), "[::1]:8080");
}

// --- valid configurations ---------------------------------------------------------

TEST(LoadConfig, FullConfigurationSetsEveryValue) {
    auto r = load_config_string(R"(
workers: 4
listeners:
  - name: public
    address: 0.0.0.0:8443
    access:
      allow: [192.168.1.0/24, 10.0.0.5/32, "2001:db8::/32"]
      deny: [192.168.1.66]
      on_deny: respond_403
    upstream: chat
  - name: local
    address: "[::1]:0"
    access:
      allow: ["::1/128"]
    upstream: embed
upstreams:
  - name: embed
    servers:
      - address: 127.0.0.1:7001
  - name: chat
    balancer: ip_hash
    servers:
      - address: 10.0.0.1:8080
        weight: 5
      - address: "[2001:db8::2]:8081"
      - address: localhost:8082
    keepalive: 8
    retries: 0
    tls: false
    max_in_flight: 0
    timeouts:
      connect: 250ms
      first_byte: 10m
      idle: 1h
limits:
  max_header_bytes: 8KiB
  max_request_body: 1GiB
  header_timeout: 5s
  client_idle: 2m
  max_connections: 500
logging:
  level: debug
  access_log: /var/log/deepseek-gateway/access.log
  format: text
shutdown_timeout: 45s
)",
                                "test.yaml");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_TRUE(r.warnings.empty()) << joined(r.warnings);
    ASSERT_NE(r.config, nullptr);
    const Config& c = *r.config;
    EXPECT_EQ(c.source, "test.yaml");
    EXPECT_EQ(c.workers, 4u);

    ASSERT_EQ(c.listeners.size(), 2u);
    const auto& pub = c.listeners[0];
    EXPECT_EQ(pub.name, "public");
    EXPECT_EQ(pub.address.host, "0.0.0.0");
    EXPECT_EQ(pub.address.port, 8443);
    EXPECT_EQ(pub.ip, ip::make_address("0.0.0.0"));
    EXPECT_EQ(pub.access.on_deny, OnDeny::respond_403);
    EXPECT_EQ(pub.access.policy.allow.to_strings(),
              (std::vector<std::string>{"192.168.1.0/24", "10.0.0.5/32", "2001:db8::/32"}));
    EXPECT_EQ(pub.access.policy.deny.to_strings(), (std::vector<std::string>{"192.168.1.66/32"}));
    EXPECT_EQ(pub.upstream, "chat");
    EXPECT_EQ(pub.upstream_index, 1u);
    const auto& local = c.listeners[1];
    EXPECT_EQ(local.name, "local");
    EXPECT_EQ(local.address.host, "::1");
    EXPECT_EQ(local.address.port, 0);
    EXPECT_EQ(local.ip, ip::make_address("::1"));
    EXPECT_EQ(local.access.on_deny, OnDeny::close);
    EXPECT_TRUE(local.access.policy.deny.empty());
    EXPECT_EQ(local.upstream_index, 0u);

    ASSERT_EQ(c.upstreams.size(), 2u);
    EXPECT_EQ(c.upstreams[0].name, "embed");
    const auto& chat = c.upstreams[1];
    EXPECT_EQ(chat.name, "chat");
    EXPECT_EQ(chat.balancer, BalancerKind::ip_hash);
    ASSERT_EQ(chat.servers.size(), 3u);
    EXPECT_EQ(chat.servers[0].address.to_string(), "10.0.0.1:8080");
    EXPECT_EQ(chat.servers[0].weight, 5u);
    EXPECT_EQ(chat.servers[0].resolved, std::vector<ip::address>{ip::make_address("10.0.0.1")});
    EXPECT_EQ(chat.servers[1].address.host, "2001:db8::2");
    EXPECT_EQ(chat.servers[1].address.port, 8081);
    EXPECT_EQ(chat.servers[1].weight, 1u);
    EXPECT_EQ(chat.servers[1].resolved, std::vector<ip::address>{ip::make_address("2001:db8::2")});
    EXPECT_EQ(chat.servers[2].address.to_string(), "localhost:8082");
    ASSERT_FALSE(chat.servers[2].resolved.empty());
    EXPECT_TRUE(chat.servers[2].resolved.front().is_loopback());
    EXPECT_EQ(chat.keepalive, 8u);
    EXPECT_EQ(chat.retries, 0u);
    EXPECT_EQ(chat.timeouts.connect, 250ms);
    EXPECT_EQ(chat.timeouts.first_byte, 10min);
    EXPECT_EQ(chat.timeouts.idle, 1h);

    EXPECT_EQ(c.limits.max_header_bytes, 8u * 1024);
    EXPECT_EQ(c.limits.max_request_body, 1ull << 30);
    EXPECT_EQ(c.limits.header_timeout, 5s);
    EXPECT_EQ(c.limits.client_idle, 2min);
    EXPECT_EQ(c.limits.max_connections, 500u);
    EXPECT_EQ(c.logging.level, LogLevel::debug);
    EXPECT_EQ(c.logging.access_log, "/var/log/deepseek-gateway/access.log");
    EXPECT_EQ(c.logging.format, LogFormat::text);
    EXPECT_EQ(c.shutdown_timeout, 45s);
}

TEST(LoadConfig, DefaultsForEveryOptionalKey) {
    auto r = load_config_string(kMinimal);
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_TRUE(r.warnings.empty());
    const Config& c = *r.config;
    EXPECT_EQ(c.source, "<string>");
    unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    EXPECT_EQ(c.workers, cpus);  // workers defaults to auto
    const auto& l = c.listeners.at(0);
    EXPECT_EQ(l.access.on_deny, OnDeny::close);
    EXPECT_TRUE(l.access.policy.deny.empty());
    const auto& u = c.upstreams.at(0);
    EXPECT_EQ(u.balancer, BalancerKind::least_conn);
    EXPECT_EQ(u.servers.at(0).weight, 1u);
    EXPECT_EQ(u.keepalive, 32u);
    EXPECT_EQ(u.retries, 1u);
    EXPECT_EQ(u.timeouts.connect, 3s);
    EXPECT_EQ(u.timeouts.first_byte, 300s);
    EXPECT_EQ(u.timeouts.idle, 120s);
    EXPECT_EQ(u.slow_start, 0s);
    EXPECT_EQ(c.limits.max_header_bytes, 16u * 1024);
    EXPECT_EQ(c.limits.max_request_body, 32u * 1024 * 1024);
    EXPECT_EQ(c.limits.header_timeout, 10s);
    EXPECT_EQ(c.limits.client_idle, 60s);
    EXPECT_EQ(c.limits.max_connections, 10000u);
    EXPECT_EQ(c.logging.level, LogLevel::info);
    EXPECT_EQ(c.logging.access_log, "stdout");
    EXPECT_EQ(c.logging.format, LogFormat::json);
    EXPECT_EQ(c.shutdown_timeout, 30s);
    EXPECT_TRUE(c.admin.metrics);
}

TEST(LoadConfig, AdminMetricsSwitch) {
    auto r = load_config_string(with(kListener, "name: u, servers: [{address: 127.0.0.1:9001}]",
                                     "admin: {metrics: false}\n"));
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_FALSE(r.config->admin.metrics);
    auto bad = load_config_string(with(kListener, "name: u, servers: [{address: 127.0.0.1:9001}]",
                                       "admin: {metrics: sometimes}\n"));
    ASSERT_EQ(bad.errors.size(), 1u) << joined(bad.errors);
    EXPECT_EQ(bad.errors[0].rfind("admin.metrics: ", 0), 0u) << bad.errors[0];
}

TEST(LoadConfig, WorkersAutoIsTheNumberOfCpus) {
    auto r = load_config_string(std::string("workers: auto\n") + kMinimal);
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_EQ(r.config->workers, std::max(1u, std::thread::hardware_concurrency()));

    r = load_config_string(std::string("workers: 256\n") + kMinimal);
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_EQ(r.config->workers, 256u);

    expect_one_error(std::string("workers: 0\n") + kMinimal, "workers: must be 1-256 (got 0)");
    expect_one_error(std::string("workers: 257\n") + kMinimal, "workers: must be 1-256 (got 257)");
    expect_one_error(std::string("workers: many\n") + kMinimal,
                     "workers: expected \"auto\" or an integer 1-256 (got \"many\")");
    expect_one_error(std::string("workers: -1\n") + kMinimal,
                     "workers: expected \"auto\" or an integer 1-256 (got \"-1\")");
}

TEST(LoadConfig, ShippedExampleLoadsCleanly) {
    auto r = load_config_file(DSGW_SOURCE_DIR "/config/gateway.example.yaml");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_TRUE(r.warnings.empty()) << joined(r.warnings);
    ASSERT_NE(r.config, nullptr);
    EXPECT_EQ(r.config->source, DSGW_SOURCE_DIR "/config/gateway.example.yaml");
    EXPECT_EQ(r.config->listeners.size(), 2u);
    EXPECT_EQ(r.config->upstreams.at(0).servers.size(), 3u);
}

TEST(LoadConfig, DemoConfiguration) {
    auto r = load_config_file(DSGW_SOURCE_DIR "/config/demo.yaml");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_TRUE(r.warnings.empty()) << joined(r.warnings);
    const Config& c = *r.config;
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].name, "demo");
    EXPECT_EQ(c.listeners[0].address.to_string(), "127.0.0.1:8080");
    EXPECT_EQ(c.listeners[0].access.policy.allow.to_strings(),
              (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
    // Routed by model: deepseek-r1 to one server, deepseek-chat to two.
    EXPECT_FALSE(c.listeners[0].has_upstream());
    ASSERT_EQ(c.listeners[0].routes.size(), 2u);
    EXPECT_EQ(c.listeners[0].routes[0].models,
              (std::vector<std::string>{"deepseek-r1", "deepseek-r1-*"}));
    EXPECT_EQ(c.listeners[0].routes[0].rewrite_model, "deepseek-ai/DeepSeek-R1");
    EXPECT_EQ(c.listeners[0].routes[1].models,
              (std::vector<std::string>{"deepseek-chat", "deepseek-v3"}));
    ASSERT_EQ(c.upstreams.size(), 2u);
    EXPECT_EQ(c.upstreams[c.listeners[0].routes[0].upstream_index].name, "r1-pool");
    const auto& chat = c.upstreams[c.listeners[0].routes[1].upstream_index];
    EXPECT_EQ(chat.name, "chat-pool");
    EXPECT_EQ(chat.balancer, BalancerKind::prefix_affinity);
    EXPECT_TRUE(chat.load_metrics.enabled);
    ASSERT_EQ(chat.servers.size(), 2u);
    EXPECT_EQ(chat.servers[0].address.to_string(), "127.0.0.1:9002");
    EXPECT_EQ(chat.servers[1].address.to_string(), "127.0.0.1:9003");
    EXPECT_EQ(c.upstreams[0].servers.at(0).address.to_string(), "127.0.0.1:9001");
    EXPECT_EQ(c.logging.format, LogFormat::text);
    EXPECT_EQ(c.logging.access_log, "stdout");
}

TEST(LoadConfig, OffValuesOfLaterFeaturesAreAccepted) {
    auto r = load_config_string(with(
        kListener, "name: u, servers: [{address: 127.0.0.1:9001}], tls: false, max_in_flight: 0"));
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
}

// --- errors -------------------------------------------------------------------------

TEST(LoadConfig, BadServerPortNamesTheFullPath) {
    expect_one_error(
        R"(
listeners:
  - {name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, upstream: u}
upstreams:
  - name: u
    servers:
      - address: 10.0.0.1:8080
      - address: 10.0.0.2:8080
      - address: 10.0.0.3:99999
)",
        "upstreams[0].servers[2].address: port must be 1-65535 (got \"10.0.0.3:99999\")");
}

TEST(LoadConfig, PortZeroOnlyForListeners) {
    auto r = load_config_string(
        with("name: l, address: 127.0.0.1:0, access: {allow: [127.0.0.0/8]}, upstream: u"));
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_EQ(r.config->listeners[0].address.port, 0);
    expect_one_error(with(kListener, "name: u, servers: [{address: 127.0.0.1:0}]"),
                     "upstreams[0].servers[0].address: port must be 1-65535 (got \"127.0.0.1:0\")");
}

TEST(LoadConfig, ListenerAddressMustBeAnIpLiteral) {
    expect_one_error(
        with("name: l, address: localhost:8080, access: {allow: [127.0.0.0/8]}, upstream: u"),
        "listeners[0].address: must be an IP address and port such as \"0.0.0.0:8443\" or "
        "\"[::]:8443\"; host names are not accepted here (got \"localhost:8080\")");
    auto r = load_config_string(
        with("name: l, address: \"[::]:8443\", access: {allow: [\"::/0\"]}, upstream: u"));
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_EQ(r.config->listeners[0].ip, ip::make_address("::"));
}

TEST(LoadConfig, UnquotedIpv6AddressGetsAHint) {
    auto r = load_config_string("listeners:\n  - name: l\n    address: [::]:8443\n", "gw.yaml");
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_EQ(r.errors[0].rfind("gw.yaml:", 0), 0u) << r.errors[0];
    EXPECT_NE(r.errors[0].find("line 3: an IPv6 address must be quoted"), std::string::npos)
        << r.errors[0];
}

TEST(LoadConfig, ServerHostNamesAreResolvedAtLoad) {
    auto r = load_config_string(with(kListener, "name: u, servers: [{address: localhost:9001}]"));
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    const auto& resolved = r.config->upstreams[0].servers[0].resolved;
    ASSERT_FALSE(resolved.empty());
    for (const auto& a : resolved) EXPECT_TRUE(a.is_loopback()) << a.to_string();

    r = load_config_string(with(
        kListener,
        "name: u, servers: [{address: 127.0.0.1:9001}, {address: no-such-host.invalid:9001}]"));
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_EQ(r.errors[0].rfind(
                  "upstreams[0].servers[1].address: cannot resolve \"no-such-host.invalid\": ", 0),
              0u)
        << r.errors[0];
}

TEST(LoadConfig, UnknownKeysAreErrorsWithASuggestion) {
    expect_one_error(with(kListener + ", acess: {allow: [10.0.0.0/8]}"),
                     "listeners[0].acess: unknown key (did you mean \"access\"?)");
    expect_one_error(std::string("worker: 2\n") + kMinimal,
                     "worker: unknown key (did you mean \"workers\"?)");
    expect_one_error(
        with(kListener,
             "name: u, servers: [{address: 127.0.0.1:9001}], timeouts: {frist_byte: 5s}"),
        "upstreams[0].timeouts.frist_byte: unknown key (did you mean \"first_byte\"?)");
    expect_one_error(with(kListener, "name: u, servers: [{address: 127.0.0.1:9001}], colour: blue"),
                     "upstreams[0].colour: unknown key (expected one of: name, balancer, servers, "
                     "keepalive, retries, timeouts, tls, max_in_flight, queue, passive, "
                     "health_check, slow_start, prefix_affinity, load_metrics, resolve_interval)");
}

TEST(LoadConfig, UnknownKeysAreCaughtAtEveryLevel) {
    auto r = load_config_string(R"(
bogus_root: 1
listeners:
  - name: l
    address: 127.0.0.1:8080
    bogus_listener: 1
    access: {allow: [127.0.0.0/8], bogus_access: 1}
    upstream: u
upstreams:
  - name: u
    bogus_upstream: 1
    servers: [{address: 127.0.0.1:9001, bogus_server: 1}]
    timeouts: {bogus_timeouts: 1}
limits: {bogus_limits: 1}
logging: {bogus_logging: 1}
)");
    std::vector<std::string> paths;
    for (const auto& e : r.errors) paths.push_back(e.substr(0, e.find(':')));
    std::sort(paths.begin(), paths.end());
    EXPECT_EQ(paths, (std::vector<std::string>{
                         "bogus_root",
                         "limits.bogus_limits",
                         "listeners[0].access.bogus_access",
                         "listeners[0].bogus_listener",
                         "logging.bogus_logging",
                         "upstreams[0].bogus_upstream",
                         "upstreams[0].servers[0].bogus_server",
                         "upstreams[0].timeouts.bogus_timeouts",
                     }))
        << joined(r.errors);
}

TEST(LoadConfig, ResolveIntervalLoads) {
    const std::string u = "name: u, servers: [{address: localhost:9001}]";
    auto dflt = load_config_string(with(kListener, u));
    ASSERT_TRUE(dflt.errors.empty()) << joined(dflt.errors);
    EXPECT_EQ(dflt.config->upstreams[0].resolve_interval, 30s);
    auto fast = load_config_string(with(kListener, u + ", resolve_interval: 500ms"));
    ASSERT_TRUE(fast.errors.empty()) << joined(fast.errors);
    EXPECT_EQ(fast.config->upstreams[0].resolve_interval, 500ms);
    auto never = load_config_string(with(kListener, u + ", resolve_interval: 0s"));
    ASSERT_TRUE(never.errors.empty()) << joined(never.errors);
    EXPECT_EQ(never.config->upstreams[0].resolve_interval, 0s);
    auto bad = load_config_string(with(kListener, u + ", resolve_interval: often"));
    ASSERT_EQ(bad.errors.size(), 1u) << joined(bad.errors);
    EXPECT_EQ(bad.errors[0].rfind("upstreams[0].resolve_interval: ", 0), 0u) << bad.errors[0];
}

TEST(LoadConfig, AdmissionKeysLoad) {
    const std::string u = "name: u, servers: [{address: 127.0.0.1:9001}]";
    auto r = load_config_string(with(
        kListener, u + ", max_in_flight: 4, queue: {size: 7, timeout: 2s}, passive: {on_5xx: true}, "
                       "health_check: {path: /health, interval: 1s, timeout: 500ms, "
                       "healthy_after: 1, unhealthy_after: 5}"));
    ASSERT_TRUE(r.errors.empty()) << r.errors[0];
    const auto& up = r.config->upstreams[0];
    EXPECT_EQ(up.max_in_flight, 4u);
    EXPECT_EQ(up.queue.size, 7u);
    EXPECT_EQ(up.queue.timeout, std::chrono::seconds(2));
    EXPECT_TRUE(up.passive.on_5xx);
    EXPECT_TRUE(up.health_check.enabled);
    EXPECT_EQ(up.health_check.interval, std::chrono::seconds(1));
    EXPECT_EQ(up.health_check.timeout, std::chrono::milliseconds(500));
    EXPECT_EQ(up.health_check.healthy_after, 1u);
    EXPECT_EQ(up.health_check.unhealthy_after, 5u);
    expect_one_error(with(kListener, u + ", health_check: {path: health}"),
                     "upstreams[0].health_check.path: must start with \"/\" (got \"health\")");
    expect_one_error(with(kListener, u + ", health_check: {interval: 1s, timeout: 2s}"),
                     "upstreams[0].health_check.timeout: must not be longer than interval");
    expect_one_error(with(kListener, u + ", queue: {size: 1, wait: 2s}"),
                     "upstreams[0].queue.wait: unknown key (expected one of: size, timeout)");
}

TEST(LoadConfig, SlowStartLoadsAndIsRefusedWithIpHash) {
    const std::string u = "name: u, servers: [{address: 127.0.0.1:9001}]";
    for (const char* balancer : {"least_conn", "round_robin"}) {
        auto r = load_config_string(
            with(kListener, u + ", balancer: " + balancer + ", slow_start: 1.5s"));
        ASSERT_TRUE(r.errors.empty()) << r.errors[0];
        EXPECT_EQ(r.config->upstreams[0].slow_start, 1500ms) << balancer;
    }
    auto off = load_config_string(with(kListener, u + ", slow_start: 0s"));
    ASSERT_TRUE(off.errors.empty()) << off.errors[0];
    EXPECT_EQ(off.config->upstreams[0].slow_start, 0s);
    auto bad = load_config_string(with(kListener, u + ", slow_start: soon"));
    ASSERT_EQ(bad.errors.size(), 1u) << joined(bad.errors);
    EXPECT_EQ(bad.errors[0].rfind("upstreams[0].slow_start: ", 0), 0u) << bad.errors[0];
    // ip_hash keeps clients on their server; a ramp would move them.
    expect_one_error(with(kListener, u + ", balancer: ip_hash, slow_start: 30s"),
                     "upstreams[0].slow_start: cannot be used with balancer: ip_hash (a ramp "
                     "would move clients off the server they stick to); leave it out or write 0s");
    auto hash_off = load_config_string(with(kListener, u + ", balancer: ip_hash, slow_start: 0s"));
    EXPECT_TRUE(hash_off.errors.empty()) << hash_off.errors[0];
}

TEST(LoadConfig, TlsFilesAreCheckedWithTheirKeyPaths) {
    const std::string u = "name: u, servers: [{address: 127.0.0.1:9001}]";
    auto r = load_config_string(
        with(kListener + ", tls: {certificate: /nonexistent/x.pem, private_key: /nonexistent/y.pem}"));
    ASSERT_EQ(r.errors.size(), 2u);
    EXPECT_EQ(r.errors[0].rfind("listeners[0].tls.certificate: cannot read \"/nonexistent/x.pem\"", 0), 0u)
        << r.errors[0];
    EXPECT_EQ(r.errors[1].rfind("listeners[0].tls.private_key: cannot read \"/nonexistent/y.pem\"", 0), 0u)
        << r.errors[1];
    expect_one_error(with(kListener + ", tls: {min_version: \"1.3\"}"),
                     "listeners[0].tls.certificate: required (or a list under \"certificates\")");
    auto ca = load_config_string(with(kListener, u + ", tls: {ca: /nonexistent/ca.pem}"));
    ASSERT_EQ(ca.errors.size(), 1u);
    EXPECT_EQ(ca.errors[0].rfind("upstreams[0].tls.ca: cannot read \"/nonexistent/ca.pem\"", 0), 0u)
        << ca.errors[0];
    auto on = load_config_string(with(kListener, u + ", tls: true"));
    ASSERT_TRUE(on.errors.empty()) << on.errors[0];
    EXPECT_TRUE(on.config->upstreams[0].tls.enabled);
    EXPECT_TRUE(on.config->upstreams[0].tls.verify);
    auto off = load_config_string(with(kListener, u + ", tls: false"));
    ASSERT_TRUE(off.errors.empty());
    EXPECT_FALSE(off.config->upstreams[0].tls.enabled);
}

TEST(LoadConfig, AllowListIsRequiredAndSaysHowToAllowAll) {
    const std::string hint = "to admit every address, write allow: [\"0.0.0.0/0\", \"::/0\"]";
    expect_one_error(with("name: l, address: 127.0.0.1:8080, upstream: u"),
                     "listeners[0].access.allow: required; " + hint);
    expect_one_error(
        with("name: l, address: 127.0.0.1:8080, access: {on_deny: close}, upstream: u"),
        "listeners[0].access.allow: required; " + hint);
    expect_one_error(with("name: l, address: 127.0.0.1:8080, access: {allow: []}, upstream: u"),
                     "listeners[0].access.allow: must not be empty; " + hint);
    expect_one_error(with("name: l, address: 127.0.0.1:8080, access: {allow: }, upstream: u"),
                     "listeners[0].access.allow: must not be empty; " + hint);
    auto r = load_config_string(with(
        "name: l, address: 0.0.0.0:8080, access: {allow: [0.0.0.0/0, \"::/0\"]}, upstream: u"));
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
}

TEST(LoadConfig, BadCidrsNameTheirListIndex) {
    expect_one_error(
        with("name: l, address: 127.0.0.1:8080, access: {allow: [10.0.0.0/8, 10.0.0.1/8]}, "
             "upstream: u"),
        "listeners[0].access.allow[1]: address has bits set below the prefix; did you mean "
        "\"10.0.0.0/8\"? (got \"10.0.0.1/8\")");
    expect_one_error(with("name: l, address: 127.0.0.1:8080, access: {allow: [10.0.0.0/8], deny: "
                          "[nope]}, upstream: u"),
                     "listeners[0].access.deny[0]: not an IP address or CIDR range (got \"nope\")");
}

TEST(LoadConfig, MissingRequiredKeys) {
    expect_one_error(with("name: l, access: {allow: [127.0.0.0/8]}, upstream: u"),
                     "listeners[0].address: required");
    expect_one_error(with("address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, upstream: u"),
                     "listeners[0].name: required");
    auto r = load_config_string(
        with("name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}"));
    EXPECT_EQ(r.errors, std::vector<std::string>{"listeners[0].upstream: required"})
        << joined(r.errors);
    EXPECT_EQ(r.warnings,
              std::vector<std::string>{"upstreams[0]: upstream \"u\" is not used by any listener"});
    expect_one_error(with(kListener, "name: u"), "upstreams[0].servers: required");
    expect_one_error(with(kListener, "name: u, servers: [{weight: 2}]"),
                     "upstreams[0].servers[0].address: required");
    expect_one_error("upstreams: [{name: u, servers: [{address: 127.0.0.1:9001}]}]\n",
                     "listeners: required");

    r = load_config_string("");
    EXPECT_EQ(r.errors, (std::vector<std::string>{"listeners: required", "upstreams: required"}));
}

TEST(LoadConfig, EmptySectionsAreErrors) {
    expect_one_error(
        "listeners: []\nupstreams: [{name: u, servers: [{address: 127.0.0.1:9001}]}]\n",
        "listeners: must list at least one listener");
    auto r = load_config_string("listeners: [{" + kListener + "}]\nupstreams: []\n");
    EXPECT_EQ(r.errors, std::vector<std::string>{"upstreams: must list at least one upstream"})
        << joined(r.errors);
    expect_one_error(with(kListener, "name: u, servers: []"),
                     "upstreams[0].servers: must list at least one server");
}

TEST(LoadConfig, WrongTypesNameTheExpectedType) {
    expect_one_error(
        with(kListener, "name: u, servers: [{address: 127.0.0.1:9001}], keepalive: lots"),
        "upstreams[0].keepalive: expected an integer 0-10000 (got \"lots\")");
    expect_one_error(with(kListener, "name: u, servers: [{address: 127.0.0.1:9001, weight: 0}]"),
                     "upstreams[0].servers[0].weight: must be 1-1000 (got 0)");
    expect_one_error(with(kListener, "name: u, servers: [{address: 127.0.0.1:9001, weight: 1001}]"),
                     "upstreams[0].servers[0].weight: must be 1-1000 (got 1001)");
    expect_one_error(with(kListener, "name: u, servers: {address: 127.0.0.1:9001}"),
                     "upstreams[0].servers: expected a list (got a mapping)");
    expect_one_error(with(kListener, "name: u, servers: [127.0.0.1:9001]"),
                     "upstreams[0].servers[0]: expected a mapping (got \"127.0.0.1:9001\")");
    expect_one_error(with(kListener, "name: [u], servers: [{address: 127.0.0.1:9001}]"),
                     "upstreams[0].name: expected a string (got a list)");
    expect_one_error(with(kListener, "name: u, servers: [{address: 127.0.0.1:9001}], timeouts: 5s"),
                     "upstreams[0].timeouts: expected a mapping (got \"5s\")");
    expect_one_error(
        with(kListener, "name: u, servers: [{address: 127.0.0.1:9001}], balancer: roundrobin"),
        "upstreams[0].balancer: must be one of least_conn, round_robin, ip_hash, prefix_affinity "
        "(got \"roundrobin\"); did you mean \"round_robin\"?");
    expect_one_error(with(kListener, "name: u, servers: [{address: \"[::1]\"}]"),
                     "upstreams[0].servers[0].address: missing port: write [address]:port, e.g. "
                     "\"[::1]:8080\" (got \"[::1]\")");
    expect_one_error(with(kListener, "name: u, servers: [{address: [::1]}]"),
                     "upstreams[0].servers[0].address: expected a string (got a list); quote IPv6 "
                     "addresses, e.g. \"[::1]:8080\"");
    expect_one_error(
        with("name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8], on_deny: drop}, "
             "upstream: u"),
        "listeners[0].access.on_deny: must be one of close, respond_403 (got \"drop\")");
    expect_one_error(
        "listeners: {name: l}\nupstreams: [{name: u, servers: [{address: 127.0.0.1:9001}]}]\n",
        "listeners: expected a list (got a mapping)");
    expect_one_error(
        std::string(kMinimal) + "logging: {level: verbose}\n",
        "logging.level: must be one of trace, debug, info, warn, error (got \"verbose\")");
    expect_one_error(std::string(kMinimal) + "logging: {format: xml}\n",
                     "logging.format: must be one of json, text (got \"xml\")");
    expect_one_error(
        std::string(kMinimal) + "logging: {access_log: \"\"}\n",
        "logging.access_log: must be stdout, off or a file path (got an empty string)");
    expect_one_error(std::string(kMinimal) + "logging:\n",
                     "logging: expected a mapping (got an empty value)");
    expect_one_error("- just\n- a list\n",
                     "<string>: expected a mapping of settings at the top level (got a list)");
}

TEST(LoadConfig, DurationsAndSizesInContext) {
    const std::string u = "name: u, servers: [{address: 127.0.0.1:9001}]";
    expect_one_error(with(kListener, u + ", timeouts: {connect: 0s}"),
                     "upstreams[0].timeouts.connect: must be greater than 0 (got \"0s\")");
    expect_one_error(
        with(kListener, u + ", timeouts: {idle: 30}"),
        "upstreams[0].timeouts.idle: missing unit: write a number and a unit ms, s, m or h, "
        "e.g. \"250ms\", \"5s\" (got \"30\")");
    expect_one_error(std::string(kMinimal) + "limits: {header_timeout: 0ms}\n",
                     "limits.header_timeout: must be greater than 0 (got \"0ms\")");
    expect_one_error(
        std::string(kMinimal) + "limits: {max_request_body: 32MB}\n",
        "limits.max_request_body: unknown size unit \"MB\": use KiB, MiB or GiB (powers of "
        "1024), or plain bytes (got \"32MB\")");
    expect_one_error(std::string(kMinimal) + "limits: {max_header_bytes: 4MiB}\n",
                     "limits.max_header_bytes: must be 1KiB to 1MiB (got \"4MiB\")");
    expect_one_error(std::string(kMinimal) + "limits: {max_connections: 0}\n",
                     "limits.max_connections: must be 1-1000000 (got 0)");
    expect_one_error(
        std::string(kMinimal) + "shutdown_timeout: soon\n",
        "shutdown_timeout: not a duration: write a number and a unit ms, s, m or h, e.g. "
        "\"250ms\", \"5s\" (got \"soon\")");

    auto r = load_config_string(std::string(kMinimal) +
                                "shutdown_timeout: 0s\nlimits: {max_header_bytes: 65536}\n");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_EQ(r.config->shutdown_timeout, 0ms);
    EXPECT_EQ(r.config->limits.max_header_bytes, 65536u);
}

TEST(LoadConfig, NamesAndAddressesMustBeUnique) {
    auto r = load_config_string(R"(
listeners:
  - {name: a, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, upstream: u}
  - {name: a, address: 127.0.0.1:8081, access: {allow: [127.0.0.0/8]}, upstream: u}
  - {name: c, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, upstream: u}
  - {name: d, address: 127.0.0.1:0, access: {allow: [127.0.0.0/8]}, upstream: u}
  - {name: e, address: 127.0.0.1:0, access: {allow: [127.0.0.0/8]}, upstream: u}
upstreams:
  - {name: u, servers: [{address: 127.0.0.1:9001}, {address: 127.0.0.1:9001}]}
  - {name: u, servers: [{address: 127.0.0.1:9002}]}
)");
    EXPECT_EQ(r.errors, (std::vector<std::string>{
                            "upstreams[0].servers[1].address: duplicate server (same as "
                            "upstreams[0].servers[0]); raise its weight instead",
                            "listeners[1].name: duplicate name \"a\" (also listeners[0])",
                            "listeners[2].address: 127.0.0.1:8080 is already used by listeners[0]",
                            "upstreams[1].name: duplicate name \"u\" (also upstreams[0])",
                        }))
        << joined(r.errors);
}

TEST(LoadConfig, ListenerMustNameAnExistingUpstream) {
    expect_one_error(
        with(
            "name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, upstream: deepseeek",
            "name: deepseek, servers: [{address: 127.0.0.1:9001}]"),
        "listeners[0].upstream: no upstream named \"deepseeek\" (did you mean \"deepseek\"?)");
    expect_one_error(
        with("name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, upstream: other",
             "name: deepseek, servers: [{address: 127.0.0.1:9001}]"),
        "listeners[0].upstream: no upstream named \"other\" (upstreams: deepseek)");
}

TEST(LoadConfig, UnusedUpstreamIsAWarning) {
    auto r = load_config_string(std::string(kMinimal) +
                                "  - {name: spare, servers: [{address: 127.0.0.1:9009}]}\n");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    ASSERT_NE(r.config, nullptr);
    EXPECT_EQ(r.warnings, std::vector<std::string>{
                              "upstreams[1]: upstream \"spare\" is not used by any listener"});
}

TEST(LoadConfig, DuplicateKeysAreErrors) {
    auto r =
        load_config_string(std::string(kMinimal) + "shutdown_timeout: 5s\nshutdown_timeout: 10s\n");
    EXPECT_EQ(r.errors,
              std::vector<std::string>{
                  "shutdown_timeout: duplicate key (first on line 10, again on line 11)"})
        << joined(r.errors);
    r = load_config_string(with(kListener + ", name: m"));
    EXPECT_EQ(r.errors, std::vector<std::string>{"listeners[0].name: duplicate key (first on line "
                                                 "1, column 14; again on line 1, column 93)"})
        << joined(r.errors);
}

TEST(LoadConfig, EveryMistakeIsReportedWithItsPath) {
    auto r = load_config_string(R"(workers: 2
listeners:
  - name: public
    address: 0.0.0.0:8443
    access:
      allow: [10.0.0.0/8]
      on_deny: drop
    upstream: deepseek
upstreams:
  - name: deepseek
    balancer: least_conn
    servers:
      - address: 10.0.0.1:8080
      - address: 10.0.0.2:808080
    timeouts:
      connect: 3
)",
                                "gateway.yaml");
    EXPECT_EQ(
        r.errors,
        (std::vector<std::string>{
            "listeners[0].access.on_deny: must be one of close, respond_403 (got \"drop\")",
            "upstreams[0].servers[1].address: port must be 1-65535 (got \"10.0.0.2:808080\")",
            "upstreams[0].timeouts.connect: missing unit: write a number and a unit ms, s, m or "
            "h, e.g. \"250ms\", \"5s\" (got \"3\")",
        }))
        << joined(r.errors);
    EXPECT_EQ(r.config, nullptr);
}

TEST(LoadConfig, SyntaxErrorsGiveLineAndColumn) {
    auto r = load_config_string("listeners:\n  - name: a\n   address: x\n", "gateway.yaml");
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_EQ(r.errors[0].rfind("gateway.yaml:3:", 0), 0u) << r.errors[0];
    EXPECT_NE(r.errors[0].find("invalid YAML: "), std::string::npos) << r.errors[0];

    r = load_config_string("listeners: [a, b\n", "gateway.yaml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].rfind("gateway.yaml:", 0), 0u) << r.errors[0];

    r = load_config_string(std::string(kMinimal) + "---\nworkers: 2\n", "gateway.yaml");
    EXPECT_EQ(r.errors,
              std::vector<std::string>{
                  "gateway.yaml: holds 2 YAML documents; write the configuration as one"});
}

// Found by fuzzing (tests/fuzz/fuzz_config): yaml-cpp 0.7's LoadAll never
// returns on a text that starts with a ',' at the top level (it makes an
// empty document for ever without reading on, and the list of them grows
// until memory runs out), so `--check-config` or a SIGHUP reload of such a
// file hung and grew. Each load runs in a child process, so that the old
// behaviour fails the test after 5 s instead of hanging it.
TEST(LoadConfig, CommaAtTheTopIsAnErrorNotAHang) {
    using namespace std::chrono_literals;
    for (std::string_view text :
         {std::string_view(","), std::string_view(",x"), std::string_view(", listeners: []\n"),
          std::string_view(",\0a:", 4)}) {
        SCOPED_TRACE(std::string(text));
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            const auto r = load_config_string(text, "gateway.yaml");
            const bool ok = r.config == nullptr && r.errors.size() == 1 &&
                            r.errors[0].rfind("gateway.yaml: invalid YAML: ", 0) == 0;
            if (!ok) std::fprintf(stderr, "errors: %s\n", joined(r.errors).c_str());
            ::_exit(ok ? 0 : 1);
        }
        int status = 0;
        bool ended = false;
        for (int i = 0; i < 100 && !ended; ++i) {
            ended = ::waitpid(pid, &status, WNOHANG) == pid;
            if (!ended) std::this_thread::sleep_for(50ms);
        }
        if (!ended) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
        }
        EXPECT_TRUE(ended) << "still loading after 5 s";
        EXPECT_TRUE(ended && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

TEST(LoadConfigFile, UnreadableFileIsOneError) {
    auto r = load_config_file("/nonexistent/gateway.yaml");
    EXPECT_EQ(r.errors, std::vector<std::string>{
                            "/nonexistent/gateway.yaml: cannot read: No such file or directory"});
    EXPECT_EQ(r.config, nullptr);

    r = load_config_file("/");
    EXPECT_EQ(r.errors, std::vector<std::string>{"/: cannot read: Is a directory"});
}

TEST(LoadConfigFile, SourceIsThePath) {
    char path[] = "/tmp/dsgw-config-test-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
        std::ofstream out(path);
        out << kMinimal;
    }
    auto r = load_config_file(path);
    std::remove(path);
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_EQ(r.config->source, path);
}

// --- one server per address (config/servers.hpp) ------------------------------------

namespace {

ServerConfig host_server(const std::string& host, std::uint16_t port,
                         std::vector<std::string> addresses, unsigned weight = 1) {
    ServerConfig s;
    s.address = {host, port};
    s.host_name = true;
    for (const auto& a : addresses) s.resolved.push_back(ip::make_address(a));
    s.weight = weight;
    return s;
}

std::vector<std::string> names_of(const std::vector<ServerInstance>& v) {
    std::vector<std::string> out;
    for (const auto& i : v) out.push_back(i.name);
    return out;
}

}  // namespace

TEST(ServerInstances, AnIpLiteralIsOneServerNamedByItsAddress) {
    auto r = load_config_string(
        with(kListener, "name: u, servers: [{address: 10.0.0.1:8080, weight: 3}, "
                        "{address: \"[2001:db8::2]:8081\"}]"));
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    auto v = server_instances(r.config->upstreams[0]);
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].name, "10.0.0.1:8080");
    EXPECT_EQ(v[0].ip, ip::make_address("10.0.0.1"));
    EXPECT_EQ(v[0].port, 8080);
    EXPECT_EQ(v[0].weight, 3u);
    EXPECT_EQ(v[0].config_index, 0u);
    EXPECT_EQ(v[1].name, "[2001:db8::2]:8081");
    EXPECT_EQ(v[1].config_index, 1u);
}

TEST(ServerInstances, AHostNameIsOneServerPerAddressEachNamedApart) {
    UpstreamConfig u;
    u.servers.push_back(host_server("gpu.lan", 8000, {"10.0.0.5", "10.0.0.6", "2001:db8::7"}, 2));
    u.servers.push_back(host_server("other.lan", 8000, {"10.0.0.5"}));
    ServerConfig literal;
    literal.address = {"10.0.0.5", 8000};
    literal.resolved = {ip::make_address("10.0.0.5")};
    u.servers.push_back(literal);
    auto v = server_instances(u);
    // The same address under two names and as a literal: three servers,
    // three names.
    EXPECT_EQ(names_of(v), (std::vector<std::string>{
                               "gpu.lan:8000/10.0.0.5", "gpu.lan:8000/10.0.0.6",
                               "gpu.lan:8000/2001:db8::7", "other.lan:8000/10.0.0.5",
                               "10.0.0.5:8000"}));
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(v[i].weight, 2u) << "every address carries the configured weight";
        EXPECT_EQ(v[i].config_index, 0u);
        EXPECT_EQ(v[i].port, 8000);
    }
    EXPECT_EQ(v[2].ip, ip::make_address("2001:db8::7"));
    EXPECT_EQ(v[3].config_index, 1u);
    EXPECT_EQ(v[4].config_index, 2u);
}

TEST(ServerInstances, LocalhostExpandsToEveryAddressItResolvesToWithDistinctNames) {
    auto r = load_config_string(
        with(kListener,
             "name: u, servers: [{address: localhost:9001}, {address: 127.0.0.1:9001}]"));
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    const auto& u = r.config->upstreams[0];
    EXPECT_TRUE(u.servers[0].host_name);
    EXPECT_FALSE(u.servers[1].host_name);
    const auto& resolved = u.servers[0].resolved;
    ASSERT_FALSE(resolved.empty());
    EXPECT_TRUE(std::is_sorted(resolved.begin(), resolved.end()));
    auto v = server_instances(u);
    ASSERT_EQ(v.size(), resolved.size() + 1);
    std::set<std::string> names;
    for (std::size_t i = 0; i < resolved.size(); ++i) {
        EXPECT_EQ(v[i].name, "localhost:9001/" + resolved[i].to_string());
        EXPECT_EQ(v[i].ip, resolved[i]);
        names.insert(v[i].name);
    }
    EXPECT_EQ(v.back().name, "127.0.0.1:9001");
    names.insert(v.back().name);
    EXPECT_EQ(names.size(), v.size()) << "names must tell every server apart";
}

TEST(ResolveHost, GivesASortedSetOrWhyNot) {
    std::vector<ip::address> out;
    ASSERT_FALSE(resolve_host("localhost", out));
    EXPECT_FALSE(out.empty());
    EXPECT_TRUE(std::is_sorted(out.begin(), out.end()));
    EXPECT_TRUE(std::adjacent_find(out.begin(), out.end()) == out.end());
    std::vector<ip::address> none;
    auto why = resolve_host("no-such-host.invalid", none);
    ASSERT_TRUE(why);
    EXPECT_FALSE(why->empty());
    EXPECT_TRUE(none.empty());
    EXPECT_EQ(join_addresses({ip::make_address("10.0.0.1"), ip::make_address("::1")}),
              "10.0.0.1, ::1");
}
