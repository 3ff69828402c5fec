// upstreams[].load_metrics (SPEC §9) end to end: the real gateway scrapes the
// mock server's GET /metrics (vLLM's names, its load set through POST
// /mock/load), and its own /metrics shows the load the balancer sees; when
// the endpoint fails, the errors are counted, the last load stays for
// stale_after, then the load is the in-flight count alone.

#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <optional>
#include <string>

#include "admin_scrape.hpp"
#include "harness.hpp"

namespace dsgw::it {
namespace {

// The mock's simulated load: 2 running, 7 waiting, half its KV cache.
const std::string kLoadBody = R"({"running":2,"waiting":7,"kv_usage":0.5)";
// (max(in flight 0, running 2) + waiting 7) * (1 + KV use 0.5); the KV use
// is kept in 1/65535 steps.
constexpr double kLoad = (2 + 7) * 1.5;

bool set_load(MockServer& mock, const std::string& json) {
    auto r = request_once(mock.port(), http_request("POST", "/mock/load",
                                                    {{"Content-Type", "application/json"}}, json));
    return r && r->status == 204;
}

// One listener in front of `mock` alone; with load_metrics every 100 ms
// when `scraped`.
std::string yaml(const MockServer& mock, bool scraped) {
    auto c = basic_config(std::vector<std::string>{mock.address()}, "least_conn");
    c.workers = "1";
    if (scraped) c.upstream().load_metrics = "{path: /metrics, interval: 100ms}";
    return c.yaml();
}

// upstream_server_load and upstream_load_scrape_errors_total of `mock`.
struct Seen {
    std::optional<double> load, errors;
};
Seen seen(const Scrape& s, const MockServer& mock) {
    const Labels l{{"upstream", "pool"}, {"server", mock.address()}};
    return {s.value(P + "upstream_server_load", l),
            s.value(P + "upstream_load_scrape_errors_total", l)};
}

// Scrapes the gateway until `pred(Seen)` holds or `timeout` passes.
template <class Pred>
Seen seen_until(std::uint16_t admin, const MockServer& mock, Pred pred, milliseconds timeout) {
    Seen last;
    scrape_until(
        admin,
        [&](const Scrape& s) {
            last = seen(s, mock);
            return pred(last);
        },
        timeout);
    return last;
}

bool near(std::optional<double> v, double want) {
    return v && std::abs(*v - want) < 0.01;
}

TEST(LoadMetricsIt, TheServersOwnLoadIsReadUntilItsEndpointFailsForStaleAfter) {
    MockServer mock("v");
    ASSERT_TRUE(mock.ok());
    ASSERT_TRUE(set_load(mock, kLoadBody + "}"));
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml(mock, true))) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin) << gw.logs();

    auto s = seen_until(
        *admin, mock, [](const Seen& x) { return near(x.load, kLoad); }, 5s);
    EXPECT_TRUE(near(s.load, kLoad)) << s.load.value_or(-1) << "\n" << gw.logs();
    EXPECT_EQ(s.errors, 0.0);

    // The endpoint fails: errors are counted, the last load stays meanwhile.
    ASSERT_TRUE(set_load(mock, kLoadBody + R"(,"metrics_status":500})"));
    const auto failed_at = Clock::now();
    s = seen_until(
        *admin, mock, [](const Seen& x) { return x.errors.value_or(0) >= 2; }, 5s);
    EXPECT_GE(s.errors.value_or(0), 2) << gw.logs();
    if (Clock::now() - failed_at < 2s) {  // well within stale_after (3 s)
        EXPECT_TRUE(near(s.load, kLoad)) << s.load.value_or(-1);
    }
    const double errors = s.errors.value_or(0);

    // After stale_after (3 intervals, at least 3 s): the in-flight count alone.
    s = seen_until(
        *admin, mock, [](const Seen& x) { return x.load == 0.0; }, 10s);
    EXPECT_EQ(s.load, 0.0) << gw.logs();
    EXPECT_GE(Clock::now() - failed_at, 2500ms);  // not before the last scrape went stale
    EXPECT_GT(s.errors.value_or(0), errors);
    // One warning for the whole failure, with why.
    const auto logs = gw.process().text(Process::Stream::any);
    const std::string warning = "server " + mock.address() + ": GET /metrics failed: status 500";
    std::size_t warnings = 0;
    for (auto at = logs.find(warning); at != std::string::npos; at = logs.find(warning, at + 1))
        ++warnings;
    EXPECT_EQ(warnings, 1u) << gw.logs();

    // It answers again: the load comes back.
    ASSERT_TRUE(set_load(mock, kLoadBody + "}"));
    s = seen_until(
        *admin, mock, [](const Seen& x) { return near(x.load, kLoad); }, 5s);
    EXPECT_TRUE(near(s.load, kLoad)) << s.load.value_or(-1) << "\n" << gw.logs();
}

TEST(LoadMetricsIt, AReloadTurnsScrapingOnAndOff) {
    MockServer mock("v");
    ASSERT_TRUE(mock.ok());
    ASSERT_TRUE(set_load(mock, kLoadBody + "}"));
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml(mock, false))) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin) << gw.logs();
    // Each scrape is a connection of its own; nothing else connects but
    // set_load().
    auto connections = [&] { return mock.stats().value_or(MockStats{}).connections_accepted; };
    const auto before = connections();
    auto s = scrape(*admin);
    ASSERT_TRUE(s);
    EXPECT_EQ(seen(*s, mock).load, 0.0);

    gw.dir().write("gateway.yaml", yaml(mock, true));
    ASSERT_EQ(gw.config_path(), gw.dir().path() + "/gateway.yaml");
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    auto x = seen_until(
        *admin, mock, [](const Seen& x) { return near(x.load, kLoad); }, 5s);
    EXPECT_TRUE(near(x.load, kLoad)) << x.load.value_or(-1) << "\n" << gw.logs();

    // Off again: the last scrape no longer counts, and no more come.
    gw.dir().write("gateway.yaml", yaml(mock, false));
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    x = seen_until(
        *admin, mock, [](const Seen& x) { return x.load == 0.0; }, 5s);
    EXPECT_EQ(x.load, 0.0) << gw.logs();
    std::this_thread::sleep_for(300ms);  // a scrape under way ends
    const auto scrapes = connections();
    EXPECT_GT(scrapes, before);
    std::this_thread::sleep_for(500ms);  // five intervals
    EXPECT_EQ(connections(), scrapes) << gw.logs();
}

}  // namespace
}  // namespace dsgw::it
