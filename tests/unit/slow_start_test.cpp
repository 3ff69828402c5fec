// Slow start (upstreams[].slow_start): the weight factor of a re-admitted
// server, and how round_robin and least_conn honour it. Every instant is
// given explicitly, and the balancers' draws are a hash of their pick
// counter, so these tests do not depend on timing or on a random seed.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/upstream/server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace ip = boost::asio::ip;
using namespace std::chrono_literals;
using dsgw::balancer::Balancer;
using dsgw::balancer::PickContext;
using dsgw::upstream::Clock;
using dsgw::upstream::ServerLease;
using dsgw::upstream::UpstreamServer;

const Clock::time_point t0 = Clock::time_point{} + 1000h;
constexpr double kMin = UpstreamServer::kMinWeightFactor;

std::unique_ptr<UpstreamServer> make_server(std::chrono::nanoseconds slow_start) {
    auto s = std::make_unique<UpstreamServer>(
        "127.0.0.1:9001", ip::tcp::endpoint(ip::make_address("127.0.0.1"), 9001), 1);
    s->set_slow_start(slow_start);
    return s;
}

PickContext at(Clock::time_point now) {
    PickContext ctx;
    ctx.now = now;
    return ctx;
}

// Two servers of weight 1: "a" steady, "b" ramping over `span` from t0.
struct TwoServers {
    std::unique_ptr<UpstreamServer> a, b;
    std::vector<UpstreamServer*> list;
    explicit TwoServers(std::chrono::nanoseconds span) {
        auto ep = [](unsigned short port) {
            return ip::tcp::endpoint(ip::make_address("127.0.0.1"), port);
        };
        a = std::make_unique<UpstreamServer>("127.0.0.1:9001", ep(9001), 1);
        b = std::make_unique<UpstreamServer>("127.0.0.1:9002", ep(9002), 1);
        a->set_slow_start(span);
        b->set_slow_start(span);
        b->begin_slow_start(t0);
        list = {a.get(), b.get()};
    }
};

// The share of `n` picks at `now` that went to `s`.
double share(Balancer& bal, const UpstreamServer* s, int n, Clock::time_point now) {
    int hits = 0;
    for (int i = 0; i < n; ++i) {
        auto* got = bal.pick(at(now));
        EXPECT_NE(got, nullptr);
        if (got == s) ++hits;
    }
    return static_cast<double>(hits) / n;
}

// ---------------------------------------------------------------- the factor

TEST(SlowStart, OffMeansFullWeightAlways) {
    auto s = make_server(0s);
    s->begin_slow_start(t0);
    EXPECT_EQ(s->weight_factor(t0), 1.0);
    s->on_failure(t0, 1);
    EXPECT_EQ(s->weight_factor(t0 + 1s), 1.0);
}

TEST(SlowStart, ServerAtStartIsNotRamped) {
    auto s = make_server(30s);
    EXPECT_EQ(s->weight_factor(t0), 1.0);
    EXPECT_EQ(s->weight_factor(Clock::time_point{}), 1.0);
}

TEST(SlowStart, FactorGrowsLinearlyOverTheSpan) {
    auto s = make_server(10s);
    s->begin_slow_start(t0);
    EXPECT_EQ(s->weight_factor(t0), kMin);
    EXPECT_EQ(s->weight_factor(t0 - 1s), kMin) << "before the ramp: the floor";
    EXPECT_EQ(s->weight_factor(t0 + 50ms), kMin) << "0.005 is below the floor";
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 2500ms), 0.25);
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 5s), 0.5);
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 9s), 0.9);
    EXPECT_EQ(s->weight_factor(t0 + 10s), 1.0);
    EXPECT_EQ(s->weight_factor(t0 + 1h), 1.0);
}

TEST(SlowStart, PassiveEjectionRampsFromTheEndOfTheBackoff) {
    auto s = make_server(10s);
    s->on_failure(t0, 1);  // ejected for 1 s
    EXPECT_FALSE(s->usable(t0 + 999ms));
    EXPECT_EQ(s->weight_factor(t0 + 1s), kMin);
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 6s), 0.5);
    // The first request after the backoff succeeds: the ramp goes on.
    s->on_success();
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 6s), 0.5);
    EXPECT_EQ(s->weight_factor(t0 + 11s), 1.0);
}

TEST(SlowStart, FailuresBelowTheThresholdStartNoRamp) {
    auto s = make_server(10s);
    s->on_failure(t0, 3);
    s->on_failure(t0, 3);
    EXPECT_TRUE(s->usable(t0));
    EXPECT_EQ(s->weight_factor(t0 + 1s), 1.0);
    s->on_failure(t0 + 1s, 3);  // the third: ejected until t0 + 2s
    EXPECT_FALSE(s->usable(t0 + 1s));
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 7s), 0.5);
}

TEST(SlowStart, FailureAfterTheBackoffRestartsTheRampLater) {
    auto s = make_server(10s);
    s->on_failure(t0, 1);       // out until t0 + 1s
    s->on_failure(t0 + 1s, 1);  // still dead: out until t0 + 3s
    EXPECT_EQ(s->weight_factor(t0 + 3s), kMin);
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 8s), 0.5);
}

TEST(SlowStart, ReadmissionByChecksRampsFromThatMoment) {
    auto s = make_server(10s);
    for (auto t : {t0, t0 + 1s, t0 + 3s, t0 + 7s}) s->on_failure(t, 1);  // out until t0 + 15s
    // The health checks see it answer at t0 + 8s and re-admit it.
    s->set_healthy(false);
    s->set_healthy(true);
    s->on_success();
    s->begin_slow_start(t0 + 8s);
    EXPECT_TRUE(s->usable(t0 + 8s));
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 13s), 0.5);
}

TEST(SlowStart, ReloadChangingTheSpanAppliesToARampUnderWay) {
    auto s = make_server(10s);
    s->begin_slow_start(t0);
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 5s), 0.5);
    s->set_slow_start(20s);
    EXPECT_DOUBLE_EQ(s->weight_factor(t0 + 5s), 0.25);
    s->set_slow_start(0s);
    EXPECT_EQ(s->weight_factor(t0 + 5s), 1.0);
}

// ---------------------------------------------------------------- round_robin

// For both balancers with short requests: at factor 0.25 (1 s into a 4 s
// ramp) b is offered half of the turns and takes a quarter of them.
void expect_quarter_of_half(Balancer& bal, const TwoServers& p) {
    const double b = share(bal, p.b.get(), 20000, t0 + 1s);
    EXPECT_GT(b, 0.10);
    EXPECT_LT(b, 0.15);
}

TEST(SlowStartRoundRobin, RampingServerGetsItsFactorOfItsShare) {
    TwoServers p(4s);
    auto bal = dsgw::balancer::make_round_robin(p.list);
    expect_quarter_of_half(*bal, p);
    // Factor 0.75.
    const double later = share(*bal, p.b.get(), 20000, t0 + 3s);
    EXPECT_GT(later, 0.35);
    EXPECT_LT(later, 0.40);
    // Ramp over: the exact alternation again.
    EXPECT_EQ(share(*bal, p.b.get(), 1000, t0 + 4s), 0.5);
}

TEST(SlowStartRoundRobin, ShareGrowsQuarterByQuarter) {
    TwoServers p(4s);
    auto bal = dsgw::balancer::make_round_robin(p.list);
    // 4000 picks spread evenly over each second of the ramp: the mean factor
    // of quarter q is (2q + 1) / 8, b's share half of it.
    std::vector<double> shares;
    for (int q = 0; q < 4; ++q) {
        int hits = 0;
        for (int i = 0; i < 4000; ++i) {
            auto now = t0 + std::chrono::seconds(q) + std::chrono::microseconds(250 * i);
            if (bal->pick(at(now)) == p.b.get()) ++hits;
        }
        shares.push_back(hits / 4000.0);
        EXPECT_NEAR(shares.back(), (2 * q + 1) / 16.0, 0.03) << "quarter " << q;
    }
    for (int q = 1; q < 4; ++q) EXPECT_GT(shares[q], shares[q - 1]);
}

TEST(SlowStartRoundRobin, PassedTurnsGoToTheOthersNotToNobody) {
    TwoServers p(4s);
    auto bal = dsgw::balancer::make_round_robin(p.list);
    for (int i = 0; i < 1000; ++i) EXPECT_NE(bal->pick(at(t0)), nullptr);
}

TEST(SlowStartRoundRobin, RampingServerAloneStillTakesEveryRequest) {
    TwoServers p(4s);
    auto bal = dsgw::balancer::make_round_robin(p.list);
    p.a->on_failure(t0, 1);  // the steady one is ejected
    for (int i = 0; i < 100; ++i) EXPECT_EQ(bal->pick(at(t0 + 10ms)), p.b.get());
}

TEST(SlowStartRoundRobin, WeightsStillCountDuringTheRamp) {
    // a weight 3, b weight 1 at half its ramp: b's 25% becomes 12.5%.
    auto ep = [](unsigned short port) {
        return ip::tcp::endpoint(ip::make_address("127.0.0.1"), port);
    };
    UpstreamServer a("127.0.0.1:9001", ep(9001), 3), b("127.0.0.1:9002", ep(9002), 1);
    b.set_slow_start(10s);
    b.begin_slow_start(t0);
    auto bal = dsgw::balancer::make_round_robin({&a, &b});
    const double got = share(*bal, &b, 20000, t0 + 5s);
    EXPECT_GT(got, 0.10);
    EXPECT_LT(got, 0.15);
}

// ---------------------------------------------------------------- least_conn

TEST(SlowStartLeastConn, IdleTiesFollowTheFactor) {
    // Short requests: nothing in flight at pick time, so the tie-break
    // decides, and b passes up three quarters of its turns.
    TwoServers p(4s);
    auto bal = dsgw::balancer::make_least_conn(p.list);
    expect_quarter_of_half(*bal, p);
    EXPECT_EQ(share(*bal, p.b.get(), 1000, t0 + 4s), 0.5);
}

TEST(SlowStartLeastConn, InFlightIsComparedAgainstTheRampedWeight) {
    // Long requests held open: b at factor 0.25 ends up with a quarter of
    // a's count (load / (weight x factor) evened out), 4 of 20.
    TwoServers p(4s);
    auto bal = dsgw::balancer::make_least_conn(p.list);
    std::vector<ServerLease> held;
    for (int i = 0; i < 20; ++i) held.emplace_back(bal->pick(at(t0 + 1s)));
    EXPECT_EQ(p.a->in_flight() + p.b->in_flight(), 20);
    EXPECT_GE(p.b->in_flight(), 3);
    EXPECT_LE(p.b->in_flight(), 5);
    // After the ramp b has the fewest per unit of weight: the next ten picks
    // all go to it (it is still at most even with a after them).
    const auto a_before = p.a->in_flight(), b_before = p.b->in_flight();
    for (int i = 0; i < 10; ++i) held.emplace_back(bal->pick(at(t0 + 4s)));
    EXPECT_EQ(p.a->in_flight(), a_before);
    EXPECT_EQ(p.b->in_flight(), b_before + 10);
}

TEST(SlowStartLeastConn, IdleRampingServerStillBeatsABusyOne) {
    // Fewest in flight wins whatever the weights: a cold server with nothing
    // to do gets a request, but only until it holds its ramped share.
    TwoServers p(10s);
    auto bal = dsgw::balancer::make_least_conn(p.list);
    std::vector<ServerLease> held;
    for (int i = 0; i < 3; ++i) held.emplace_back(p.a.get());
    EXPECT_EQ(bal->pick(at(t0 + 1s)), p.b.get());
}

TEST(SlowStartLeastConn, RampingServerAloneStillTakesEveryRequest) {
    TwoServers p(4s);
    auto bal = dsgw::balancer::make_least_conn(p.list);
    p.a->on_failure(t0, 1);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(bal->pick(at(t0 + 10ms)), p.b.get());
}

}  // namespace
