// upstreams[].prefix_affinity and upstreams[].load_metrics (SPEC §9):
// values, defaults, and every error with its path.

#include "config_checks.hpp"
#include "deepseek_gateway/config/config.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

using namespace dsgw::config;
using namespace dsgw::config::testing;
using namespace std::chrono_literals;

namespace {

// One listener, one upstream "u" with `extra` keys (a YAML flow mapping's
// contents).
std::string with_upstream(const std::string& extra) {
    return "listeners: [{name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, "
           "upstream: u}]\nupstreams: [{name: u, servers: [{address: 127.0.0.1:9001}], " +
           extra + "}]\n";
}

const UpstreamConfig& loaded_upstream(const LoadResult& r) {
    static const UpstreamConfig none;
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
    return r.config ? r.config->upstreams.at(0) : none;
}

const std::string kAffinity = "balancer: prefix_affinity, ";

}  // namespace

// ---- load_metrics --------------------------------------------------------------

TEST(LoadMetricsConfig, OffUnlessGiven) {
    auto r = load_config_string(with_upstream("balancer: least_conn"));
    const auto& lm = loaded_upstream(r).load_metrics;
    EXPECT_FALSE(lm.enabled);
}

TEST(LoadMetricsConfig, AnEmptyMappingTurnsItOnWithTheDefaults) {
    auto r = load_config_string(with_upstream("load_metrics: {}"));
    const auto& lm = loaded_upstream(r).load_metrics;
    EXPECT_TRUE(lm.enabled);
    EXPECT_EQ(lm.path, "/metrics");
    EXPECT_EQ(lm.interval, 1s);
    EXPECT_EQ(lm.timeout(), 1s);
    EXPECT_EQ(lm.stale_after(), 3s);
}

TEST(LoadMetricsConfig, PathAndIntervalAreRead) {
    auto r = load_config_string(with_upstream("load_metrics: {path: /vllm/metrics, interval: 5s}"));
    const auto& lm = loaded_upstream(r).load_metrics;
    EXPECT_TRUE(lm.enabled);
    EXPECT_EQ(lm.path, "/vllm/metrics");
    EXPECT_EQ(lm.interval, 5s);
    EXPECT_EQ(lm.timeout(), 2s);       // at most 2 s
    EXPECT_EQ(lm.stale_after(), 15s);  // three intervals
    auto fast = load_config_string(with_upstream("load_metrics: {interval: 100ms}"));
    const auto& f = loaded_upstream(fast).load_metrics;
    EXPECT_EQ(f.timeout(), 100ms);   // the interval
    EXPECT_EQ(f.stale_after(), 3s);  // at least 3 s
    // With any balancer (the load is also shown in upstream_server_load).
    auto rr = load_config_string(with_upstream("balancer: round_robin, load_metrics: {}"));
    EXPECT_TRUE(loaded_upstream(rr).load_metrics.enabled);
    auto pa = load_config_string(with_upstream(kAffinity + "load_metrics: {}"));
    EXPECT_TRUE(loaded_upstream(pa).load_metrics.enabled);
}

TEST(LoadMetricsConfig, BadValuesAreRefusedWithTheirPath) {
    expect_one_error(with_upstream("load_metrics: {path: metrics}"),
                     "upstreams[0].load_metrics.path: must start with \"/\" (got \"metrics\")");
    expect_one_error(with_upstream("load_metrics: {path: \"\"}"),
                     "upstreams[0].load_metrics.path: must start with \"/\" (got \"\")");
    expect_one_error(with_upstream("load_metrics: {interval: 0s}"),
                     "upstreams[0].load_metrics.interval: must be greater than 0 (got \"0s\")");
    auto bad = load_config_string(with_upstream("load_metrics: {interval: often}"));
    ASSERT_EQ(bad.errors.size(), 1u) << joined(bad.errors);
    EXPECT_EQ(bad.errors[0].rfind("upstreams[0].load_metrics.interval: ", 0), 0u) << bad.errors[0];
    expect_one_error(with_upstream("load_metrics: {intervall: 1s}"),
                     "upstreams[0].load_metrics.intervall: unknown key (did you mean "
                     "\"interval\"?)");
    expect_one_error(with_upstream("load_metrics: {port: 9090}"),
                     "upstreams[0].load_metrics.port: unknown key (expected one of: path, "
                     "interval)");
    expect_one_error(with_upstream("load_metrics: true"),
                     "upstreams[0].load_metrics: expected a mapping (got \"true\")");
}

// ---- prefix_affinity -----------------------------------------------------------

TEST(PrefixAffinityConfig, DefaultsWithoutItsMapping) {
    auto r = load_config_string(with_upstream("balancer: prefix_affinity"));
    const auto& u = loaded_upstream(r);
    EXPECT_EQ(u.balancer, BalancerKind::prefix_affinity);
    EXPECT_EQ(u.prefix_affinity.block_bytes, 512u);
    EXPECT_EQ(u.prefix_affinity.max_load_ratio, 1.25);
    EXPECT_EQ(u.prefix_affinity.table_entries, 1000000u);
}

TEST(PrefixAffinityConfig, ValuesAreRead) {
    auto r = load_config_string(with_upstream(
        kAffinity +
        "prefix_affinity: {block_bytes: 1KiB, max_load_ratio: 1.5, table_entries: 2048}"));
    const auto& p = loaded_upstream(r).prefix_affinity;
    EXPECT_EQ(p.block_bytes, 1024u);
    EXPECT_EQ(p.max_load_ratio, 1.5);
    EXPECT_EQ(p.table_entries, 2048u);
    // The bounds themselves, and a ratio written as a string.
    auto low = load_config_string(with_upstream(
        kAffinity +
        "prefix_affinity: {block_bytes: 16, max_load_ratio: \"1\", table_entries: 1024}"));
    EXPECT_EQ(loaded_upstream(low).prefix_affinity.block_bytes, 16u);
    EXPECT_EQ(loaded_upstream(low).prefix_affinity.max_load_ratio, 1.0);
    EXPECT_EQ(loaded_upstream(low).prefix_affinity.table_entries, 1024u);
    auto high = load_config_string(with_upstream(
        kAffinity +
        "prefix_affinity: {block_bytes: 64KiB, max_load_ratio: 100, table_entries: 100000000}"));
    EXPECT_EQ(loaded_upstream(high).prefix_affinity.block_bytes, 65536u);
    EXPECT_EQ(loaded_upstream(high).prefix_affinity.max_load_ratio, 100.0);
    EXPECT_EQ(loaded_upstream(high).prefix_affinity.table_entries, 100000000u);
}

TEST(PrefixAffinityConfig, OnlyWithItsBalancer) {
    expect_one_error(with_upstream("prefix_affinity: {block_bytes: 512}"),
                     "upstreams[0].prefix_affinity: is read only with balancer: prefix_affinity "
                     "(got balancer: least_conn)");
    expect_one_error(with_upstream("balancer: round_robin, prefix_affinity: {}"),
                     "upstreams[0].prefix_affinity: is read only with balancer: prefix_affinity "
                     "(got balancer: round_robin)");
}

TEST(PrefixAffinityConfig, OutOfRangeValuesAreRefusedWithTheirPath) {
    const std::string pa = kAffinity + "prefix_affinity: ";
    expect_one_error(
        with_upstream(pa + "{block_bytes: 15}"),
        "upstreams[0].prefix_affinity.block_bytes: must be 16 bytes to 64KiB (got \"15\")");
    expect_one_error(
        with_upstream(pa + "{block_bytes: 65537}"),
        "upstreams[0].prefix_affinity.block_bytes: must be 16 bytes to 64KiB (got \"65537\")");
    expect_one_error(with_upstream(pa + "{max_load_ratio: 0.5}"),
                     "upstreams[0].prefix_affinity.max_load_ratio: must be 1-100 (got 0.5)");
    expect_one_error(with_upstream(pa + "{max_load_ratio: 101}"),
                     "upstreams[0].prefix_affinity.max_load_ratio: must be 1-100 (got 101)");
    expect_one_error(with_upstream(pa + "{max_load_ratio: abc}"),
                     "upstreams[0].prefix_affinity.max_load_ratio: must be a number (got \"abc\")");
    expect_one_error(with_upstream(pa + "{max_load_ratio: \"\"}"),
                     "upstreams[0].prefix_affinity.max_load_ratio: must be a number (got \"\")");
    expect_one_error(
        with_upstream(pa + "{table_entries: 1023}"),
        "upstreams[0].prefix_affinity.table_entries: must be 1024-100000000 (got 1023)");
    expect_one_error(
        with_upstream(pa + "{table_entries: 100000001}"),
        "upstreams[0].prefix_affinity.table_entries: must be 1024-100000000 (got 100000001)");
    expect_one_error(with_upstream(pa + "{blocks: 512}"),
                     "upstreams[0].prefix_affinity.blocks: unknown key (expected one of: "
                     "block_bytes, max_load_ratio, table_entries)");
}

// ---- which listeners read JSON bodies ---------------------------------------------

TEST(PrefixAffinityConfig, AListenerInFrontOfItNotesPromptsAsItsBlocksNeed) {
    auto r = load_config_string(with_upstream(kAffinity + "prefix_affinity: {block_bytes: 1KiB}"));
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    const auto& l = r.config->listeners.at(0);
    EXPECT_EQ(l.prompt_capture, 1024u * PrefixAffinityConfig::kMaxBlocks);
    EXPECT_TRUE(l.inspects());

    auto plain = load_config_string(with_upstream("balancer: least_conn"));
    ASSERT_TRUE(plain.errors.empty()) << joined(plain.errors);
    EXPECT_EQ(plain.config->listeners.at(0).prompt_capture, 0u);
    EXPECT_FALSE(plain.config->listeners.at(0).inspects());
}

TEST(PrefixAffinityConfig, ARouteToItCountsLikeTheDefaultUpstream) {
    auto r = load_config_string(
        "listeners: [{name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]},\n"
        "  routes: [{match: {model: r1}, upstream: pa}, {match: {model: v3}, upstream: lc}]}]\n"
        "upstreams:\n"
        "  - {name: pa, balancer: prefix_affinity, prefix_affinity: {block_bytes: 256},\n"
        "     servers: [{address: 127.0.0.1:9001}]}\n"
        "  - {name: pb, balancer: prefix_affinity, prefix_affinity: {block_bytes: 4KiB},\n"
        "     servers: [{address: 127.0.0.1:9002}]}\n"
        "  - {name: lc, servers: [{address: 127.0.0.1:9003}]}\n");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    // pb (4 KiB blocks) is used by no listener: only pa's blocks count.
    EXPECT_EQ(r.config->listeners.at(0).prompt_capture, 256u * PrefixAffinityConfig::kMaxBlocks);
}
