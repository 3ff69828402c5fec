// upstreams[].load_metrics (SPEC §9) end to end: the real gateway scrapes a
// scripted server's Prometheus endpoint, and its own /metrics shows the load
// the balancer sees; when the endpoint fails, the errors are counted, the
// last load stays for stale_after, then the load is the in-flight count.

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <optional>
#include <string>

#include "harness.hpp"
#include "raw_upstream.hpp"

namespace dsgw::it {
namespace {

// What a vLLM server with `running` requests in its batch, 7 waiting and
// half of its KV cache used answers at GET /metrics (prometheus_client's
// text, cut to a few families).
std::string vllm_metrics(int running) {
    const std::string m = "{engine=\"0\",model_name=\"deepseek-ai/DeepSeek-R1\"}";
    std::string body;
    body += "# HELP vllm:num_requests_running Number of requests in model execution batches.\n";
    body += "# TYPE vllm:num_requests_running gauge\n";
    body += "vllm:num_requests_running" + m + " " + std::to_string(running) + ".0\n";
    body += "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n";
    body += "# TYPE vllm:num_requests_waiting gauge\n";
    body += "vllm:num_requests_waiting" + m + " 7.0\n";
    body += "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n";
    body += "# TYPE vllm:kv_cache_usage_perc gauge\n";
    body += "vllm:kv_cache_usage_perc" + m + " 0.5\n";
    body += "# HELP vllm:time_to_first_token_seconds Histogram of time to first token.\n";
    body += "# TYPE vllm:time_to_first_token_seconds histogram\n";
    body += "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\"} 20.0\n";
    body += "vllm:time_to_first_token_seconds_count" + m + " 20.0\n";
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n" +
           ("Content-Length: " + std::to_string(body.size())) + "\r\n\r\n" + body;
}

// The value of the series `family{...server="<server>"...}` in the gateway's
// /metrics, or nothing.
std::optional<double> series(std::uint16_t admin, const std::string& family,
                             const std::string& server) {
    auto r = request_once(admin, http_request("GET", "/metrics", {}, "", "HTTP/1.1", "admin"));
    if (!r || r->status != 200) return std::nullopt;
    const std::string start = "deepseek_gateway_" + family + "{";
    const std::string label = "server=\"" + server + "\"";
    std::size_t pos = 0;
    while (pos < r->body.size()) {
        auto end = r->body.find('\n', pos);
        if (end == std::string::npos) end = r->body.size();
        const std::string line = r->body.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind(start, 0) != 0 || line.find(label) == std::string::npos) continue;
        return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return std::nullopt;
}

// Reads `family` of `server` until `pred` holds or `timeout` passes; the last value.
template <class Pred>
std::optional<double> series_until(std::uint16_t admin, const std::string& family,
                                   const std::string& server, Pred pred, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        auto v = series(admin, family, server);
        if ((v && pred(*v)) || Clock::now() >= deadline) return v;
        std::this_thread::sleep_for(20ms);
    }
}

// The upstream block of `cfg`'s YAML with load_metrics every 100 ms.
std::string with_load_metrics(const GatewayConfig& cfg) {
    auto yaml = cfg.yaml();
    const std::string at = "    timeouts:\n";
    const auto pos = yaml.find(at);
    if (pos != std::string::npos)
        yaml.insert(pos, "    load_metrics:\n      path: /metrics\n      interval: 100ms\n");
    return yaml;
}

constexpr int kRunning = 2;
// (max(in flight 0, running 2) + waiting 7) * (1 + KV use 0.5); the KV use
// is kept in 1/65535 steps.
constexpr double kLoad = (kRunning + 7) * 1.5;

auto near(double want) {
    return [want](double v) { return std::abs(v - want) < 0.01; };
}

// A server whose GET /metrics answers vLLM's text with kRunning, or 500
// while `failing`.
class VllmServer {
public:
    VllmServer()
        : up_([this](std::size_t, std::size_t, const std::string& req) { return answer(req); }) {}
    bool ok() const { return up_.ok(); }
    const RawUpstream& upstream() const { return up_; }
    std::string address() const { return up_.address(); }

    std::atomic<bool> failing{false};
    std::atomic<int> scrapes{0};

private:
    RawUpstream::Reply answer(const std::string& req) {
        RawUpstream::Reply r;
        r.close = true;
        if (req.rfind("GET /metrics HTTP/1.1\r\n", 0) != 0) {
            r.bytes = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            return r;
        }
        ++scrapes;
        if (failing)
            r.bytes = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nbusy";
        else
            r.bytes = vllm_metrics(kRunning);
        return r;
    }

    RawUpstream up_;  // last: its thread calls answer()
};

TEST(LoadMetrics, TheServersOwnLoadIsReadUntilItsEndpointFailsForStaleAfter) {
    VllmServer up;
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(with_load_metrics(raw_config(up.upstream())))) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin) << gw.logs();
    const auto server = up.address();

    auto load = series_until(*admin, "upstream_server_load", server, near(kLoad), 5s);
    ASSERT_TRUE(load) << gw.logs();
    EXPECT_NEAR(*load, kLoad, 0.01) << gw.logs();
    EXPECT_EQ(series(*admin, "upstream_load_scrape_errors_total", server), 0.0);

    // The endpoint fails: errors are counted, the last load stays meanwhile.
    up.failing = true;
    const auto failed_at = Clock::now();
    auto errors = series_until(
        *admin, "upstream_load_scrape_errors_total", server, [](double v) { return v >= 2; }, 5s);
    ASSERT_TRUE(errors);
    EXPECT_GE(*errors, 2) << gw.logs();
    if (Clock::now() - failed_at < 2s) {  // well within stale_after (3 s)
        EXPECT_NEAR(series(*admin, "upstream_server_load", server).value_or(-1), kLoad, 0.01);
    }

    // After stale_after (3 intervals, at least 3 s): the in-flight count alone.
    load = series_until(*admin, "upstream_server_load", server, near(0), 10s);
    ASSERT_TRUE(load);
    EXPECT_EQ(*load, 0) << gw.logs();
    EXPECT_GE(Clock::now() - failed_at, 2500ms);  // not before the last scrape went stale
    EXPECT_GT(series(*admin, "upstream_load_scrape_errors_total", server).value_or(0), *errors);
    // One warning for the whole failure, with why.
    const auto logs = gw.process().text(Process::Stream::any);
    std::size_t warnings = 0;
    for (auto at = logs.find("GET /metrics failed: status 500"); at != std::string::npos;
         at = logs.find("GET /metrics failed: status 500", at + 1))
        ++warnings;
    EXPECT_EQ(warnings, 1u) << gw.logs();
}

TEST(LoadMetrics, AReloadTurnsScrapingOnAndOff) {
    VllmServer up;
    ASSERT_TRUE(up.ok());
    Gateway gw;
    const auto plain = raw_config(up.upstream());
    ASSERT_TRUE(gw.start(plain)) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin) << gw.logs();
    const auto server = up.address();
    EXPECT_EQ(series(*admin, "upstream_server_load", server), 0.0);
    EXPECT_EQ(up.scrapes, 0);

    gw.dir().write("gateway.yaml", with_load_metrics(plain));
    ASSERT_EQ(gw.config_path(), gw.dir().path() + "/gateway.yaml");
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    auto load = series_until(*admin, "upstream_server_load", server, near(kLoad), 5s);
    ASSERT_TRUE(load) << gw.logs();
    EXPECT_NEAR(*load, kLoad, 0.01) << gw.logs();

    // Off again: the last scrape no longer counts, and no more come.
    gw.dir().write("gateway.yaml", plain.yaml());
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    load = series_until(*admin, "upstream_server_load", server, near(0), 5s);
    ASSERT_TRUE(load);
    EXPECT_EQ(*load, 0) << gw.logs();
    std::this_thread::sleep_for(300ms);  // a scrape under way ends
    const int scrapes = up.scrapes;
    std::this_thread::sleep_for(500ms);  // five intervals
    EXPECT_EQ(up.scrapes, scrapes) << gw.logs();
}

}  // namespace
}  // namespace dsgw::it
