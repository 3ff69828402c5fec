// Slow start (upstreams[].slow_start): a server re-admitted by the health
// checks ramps its share of the requests up instead of taking it all at once.

#include "harness.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace dsgw::it {
namespace {

std::string yaml_for(const std::string& a, const std::string& b, const std::string& extra) {
    return "workers: 2\nadmin: {address: 127.0.0.1:0}\nlisteners:\n  - name: main\n"
           "    address: 127.0.0.1:0\n    access: {allow: [127.0.0.0/8]}\n    upstream: pool\n"
           "upstreams:\n  - name: pool\n    balancer: round_robin\n    servers:\n"
           "      - address: " + a + "\n      - address: " + b + "\n" +
           "    timeouts: {connect: 2s, first_byte: 30s, idle: 30s}\n" + extra +
           "logging: {format: text, access_log: 'off', level: info}\n";
}

struct Tally {
    int total = 0;
    int b = 0;
    double share() const { return total ? static_cast<double>(b) / total : 0; }
};

// Sequential requests until `until`; counts those the mock "b" answered.
Tally send_until(std::uint16_t port, Clock::time_point until) {
    Tally t;
    while (Clock::now() < until) {
        auto r = request_once(port, http_request("GET", "/v1/models"));
        EXPECT_TRUE(r);
        if (!r) break;
        EXPECT_EQ(r->status, 200);
        ++t.total;
        if (r->header("X-Mock-Server").value_or("") == "b") ++t.b;
    }
    return t;
}

TEST(SlowStart, ReadmittedServerRampsItsShareUp) {
    auto a = std::make_unique<MockServer>("a");
    auto b = std::make_unique<MockServer>("b");
    ASSERT_TRUE(a->ok());
    ASSERT_TRUE(b->ok());
    const std::string b_addr = b->address();
    const auto b_port = b->port();
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_for(a->address(), b_addr,
                                  "    health_check: {path: /health, interval: 100ms, timeout: "
                                  "90ms, healthy_after: 1, unhealthy_after: 1}\n"
                                  "    slow_start: 4s\n")))
        << gw.logs();

    // Before any outage both take turns: servers at start are not ramped.
    auto before = send_until(gw.port(), Clock::now() + 500ms);
    ASSERT_GE(before.total, 10);
    EXPECT_NEAR(before.share(), 0.5, 0.1) << before.b << "/" << before.total;

    b.reset();  // killed
    ASSERT_TRUE(gw.process().wait_for_line(std::regex("server " + b_addr + ": unhealthy"), 10s))
        << gw.logs();
    MockServer back("b", {"--listen", b_addr});
    ASSERT_EQ(back.port(), b_port) << "could not restart on the same port";
    ASSERT_TRUE(gw.process().wait_for_line(
        std::regex("server " + b_addr + ": healthy again .*slow start over 4000 ms"), 10s))
        << gw.logs();
    // The line was seen a little after the re-admission, never before it.
    const auto readmitted = Clock::now();

    // First quarter of the ramp: the factor averages about 1/8, so b takes
    // about 6% of the requests. The bound leaves room for a late look at
    // the log on a loaded machine (a full second late still gives ~19%).
    auto early = send_until(gw.port(), readmitted + 1s);
    ASSERT_GE(early.total, 10) << "too few requests to judge";
    EXPECT_LT(early.share(), 0.30) << early.b << "/" << early.total;

    // After the ramp: its full half again (exact alternation, give or take
    // the requests at the edge of the window).
    std::this_thread::sleep_until(readmitted + 4500ms);
    auto late = send_until(gw.port(), Clock::now() + 1s);
    ASSERT_GE(late.total, 10) << "too few requests to judge";
    EXPECT_GT(late.share(), 0.35) << late.b << "/" << late.total;
    EXPECT_LT(late.share(), 0.65) << late.b << "/" << late.total;
    EXPECT_GT(late.share(), early.share() + 0.15);
}

}  // namespace
}  // namespace dsgw::it
