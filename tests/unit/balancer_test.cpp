// UpstreamServer backoff, ServerLease, and the three balancers.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/upstream/server.hpp"
#include "server_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Counts heap allocations made by this thread while `counting` is set, to
// check that pick() never allocates.
namespace alloc_probe {
thread_local bool counting = false;
thread_local long count = 0;
}  // namespace alloc_probe

void* operator new(std::size_t size) {
    if (alloc_probe::counting) ++alloc_probe::count;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
// GCC cannot tell that these replace the global operators, and would warn
// about free() on memory from operator new.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

namespace ip = boost::asio::ip;
using namespace std::chrono_literals;
using dsgw::balancer::Balancer;
using dsgw::balancer::PickContext;
using dsgw::upstream::Clock;
using dsgw::upstream::ServerLease;
using dsgw::upstream::UpstreamServer;
using dsgw::test::Pool;

// A fixed instant far from the clock's epoch, so tests never depend on when
// they run.
const Clock::time_point t0 = Clock::time_point{} + 1000h;

UpstreamServer make_server(const std::string& name = "127.0.0.1:9001", unsigned weight = 1) {
    return UpstreamServer(name, ip::tcp::endpoint(ip::make_address("127.0.0.1"), 9001), weight);
}


PickContext ctx_at(Clock::time_point now = t0, const UpstreamServer* exclude = nullptr) {
    PickContext ctx;
    ctx.now = now;
    ctx.exclude = exclude;
    return ctx;
}

PickContext client_ctx(const ip::address& client, Clock::time_point now = t0) {
    PickContext ctx = ctx_at(now);
    ctx.client = client;
    return ctx;
}

// 10.0.(i / 256).(i % 256)
ip::address nth_address(unsigned i) {
    return ip::make_address_v4(ip::address_v4::bytes_type{
        10, 0, static_cast<unsigned char>(i / 256), static_cast<unsigned char>(i % 256)});
}

// ---------------------------------------------------------------- UpstreamServer

TEST(UpstreamServer, KeepsNameEndpointAndWeight) {
    auto s = make_server("10.0.0.1:8080", 3);
    EXPECT_EQ(s.name(), "10.0.0.1:8080");
    EXPECT_EQ(s.endpoint().port(), 9001);
    EXPECT_EQ(s.weight(), 3u);
    EXPECT_EQ(s.in_flight(), 0);
}

TEST(UpstreamServer, ZeroWeightIsTakenAsOne) { EXPECT_EQ(make_server("a", 0).weight(), 1u); }

TEST(UpstreamServer, NewServerIsUsable) {
    auto s = make_server();
    EXPECT_TRUE(s.usable(t0));
    EXPECT_TRUE(s.usable());
}

TEST(UpstreamServer, FailureBlocksForOneSecond) {
    auto s = make_server();
    s.on_connect_failure(t0);
    EXPECT_FALSE(s.usable(t0));
    EXPECT_FALSE(s.usable(t0 + 999ms));
    EXPECT_TRUE(s.usable(t0 + 1s));
}

TEST(UpstreamServer, BackoffDoublesPerConsecutiveFailureUpTo30s) {
    auto s = make_server();
    auto now = t0;
    for (auto expected : {1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s}) {
        s.on_connect_failure(now);
        EXPECT_FALSE(s.usable(now + expected - 1ms)) << expected.count();
        EXPECT_TRUE(s.usable(now + expected)) << expected.count();
        now += expected;  // the next attempt happens once the backoff is over
    }
}

TEST(UpstreamServer, ManyFailuresStayCappedAt30s) {
    auto s = make_server();
    auto now = t0;
    for (int i = 0; i < 100; ++i) {
        s.on_connect_failure(now);
        now += 31s;
    }
    s.on_connect_failure(now);
    EXPECT_FALSE(s.usable(now + 29s));
    EXPECT_TRUE(s.usable(now + 30s));
}

TEST(UpstreamServer, FailuresWhileBlockedDoNotLengthenBackoff) {
    // Connects started before the block fail together; they are one outage.
    auto s = make_server();
    s.on_connect_failure(t0);
    s.on_connect_failure(t0);
    s.on_connect_failure(t0 + 500ms);
    EXPECT_TRUE(s.usable(t0 + 1s));
    s.on_connect_failure(t0 + 1s);  // the second real failure: 2s
    EXPECT_FALSE(s.usable(t0 + 2999ms));
    EXPECT_TRUE(s.usable(t0 + 3s));
}

TEST(UpstreamServer, SuccessResetsBackoff) {
    auto s = make_server();
    auto now = t0;
    for (auto d : {1s, 2s, 4s}) {
        s.on_connect_failure(now);
        now += d;
    }
    s.on_connect_failure(now);  // 8s
    EXPECT_FALSE(s.usable(now));
    s.on_connect_success();
    EXPECT_TRUE(s.usable(now));
    s.on_connect_failure(now);  // back to 1s
    EXPECT_FALSE(s.usable(now + 999ms));
    EXPECT_TRUE(s.usable(now + 1s));
}

// ---------------------------------------------------------------- ServerLease

TEST(ServerLease, DefaultLeaseHoldsNothing) {
    ServerLease lease;
    EXPECT_FALSE(lease);
    EXPECT_EQ(lease.get(), nullptr);
    lease.release();  // harmless
}

TEST(ServerLease, NullServerHoldsNothing) {
    ServerLease lease(nullptr);
    EXPECT_FALSE(lease);
}

TEST(ServerLease, IncrementsAndDecrements) {
    auto s = make_server();
    {
        ServerLease a(&s);
        EXPECT_TRUE(a);
        EXPECT_EQ(a.get(), &s);
        EXPECT_EQ(a->name(), s.name());
        EXPECT_EQ(s.in_flight(), 1);
        {
            ServerLease b(&s);
            EXPECT_EQ(s.in_flight(), 2);
        }
        EXPECT_EQ(s.in_flight(), 1);
    }
    EXPECT_EQ(s.in_flight(), 0);
}

TEST(ServerLease, ReleaseIsIdempotent) {
    auto s = make_server();
    ServerLease a(&s);
    a.release();
    EXPECT_FALSE(a);
    EXPECT_EQ(s.in_flight(), 0);
    a.release();
    EXPECT_EQ(s.in_flight(), 0);
}

TEST(ServerLease, MoveConstructionTransfersTheSlot) {
    auto s = make_server();
    ServerLease a(&s);
    ServerLease b(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(b.get(), &s);
    EXPECT_EQ(s.in_flight(), 1);
    b.release();
    EXPECT_EQ(s.in_flight(), 0);
}

TEST(ServerLease, MoveAssignmentReleasesTheOldSlotAndTakesTheNew) {
    auto s1 = make_server("a");
    auto s2 = make_server("b");
    ServerLease a(&s1);
    ServerLease b(&s2);
    a = std::move(b);
    EXPECT_EQ(s1.in_flight(), 0);
    EXPECT_EQ(s2.in_flight(), 1);
    EXPECT_EQ(a.get(), &s2);
    EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move)
}

TEST(ServerLease, SelfMoveAssignmentKeepsTheSlot) {
    auto s = make_server();
    ServerLease a(&s);
    ServerLease& alias = a;
    a = std::move(alias);
    EXPECT_EQ(a.get(), &s);
    EXPECT_EQ(s.in_flight(), 1);
}

TEST(ServerLease, MovedIntoContainerStaysHeld) {
    auto s = make_server();
    std::vector<ServerLease> held;
    for (int i = 0; i < 100; ++i) held.emplace_back(&s);  // reallocations move leases
    EXPECT_EQ(s.in_flight(), 100);
    held.erase(held.begin(), held.begin() + 40);
    EXPECT_EQ(s.in_flight(), 60);
    held.clear();
    EXPECT_EQ(s.in_flight(), 0);
}

TEST(ServerLease, ReleasedWhenAnExceptionUnwinds) {
    auto s = make_server();
    try {
        ServerLease lease(&s);
        EXPECT_EQ(s.in_flight(), 1);
        throw std::runtime_error("upstream reset");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(s.in_flight(), 0);
}

int handle_request(UpstreamServer* s, bool fail_early) {
    ServerLease lease(s);
    if (fail_early) return 502;
    return 200;
}

TEST(ServerLease, ReleasedOnEarlyReturn) {
    auto s = make_server();
    EXPECT_EQ(handle_request(&s, true), 502);
    EXPECT_EQ(s.in_flight(), 0);
    EXPECT_EQ(handle_request(&s, false), 200);
    EXPECT_EQ(s.in_flight(), 0);
}

TEST(ServerLease, LeastConnSeesTheRelease) {
    Pool pool({1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    ServerLease busy(pool[0]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(b->pick(ctx_at()), pool[1]);
    busy.release();
    std::map<UpstreamServer*, int> seen;
    for (int i = 0; i < 4; ++i) ++seen[b->pick(ctx_at())];
    EXPECT_EQ(seen[pool[0]], 2);
    EXPECT_EQ(seen[pool[1]], 2);
}

// ---------------------------------------------------------------- round_robin

std::string sequence(Balancer& b, const Pool& pool, int picks, PickContext ctx = ctx_at()) {
    std::string out;
    for (int i = 0; i < picks; ++i) {
        auto* s = b.pick(ctx);
        out += s ? static_cast<char>('a' + pool.index_of(s)) : '-';
    }
    return out;
}

TEST(RoundRobin, EmptyPoolGivesNothing) {
    auto b = dsgw::balancer::make_round_robin({});
    EXPECT_EQ(b->pick(ctx_at()), nullptr);
}

TEST(RoundRobin, EqualWeightsRotate) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    EXPECT_EQ(sequence(*b, pool, 9), "abcabcabc");
}

TEST(RoundRobin, WeightsThreeOneOneAreSmoothNginxOrder) {
    Pool pool({3, 1, 1});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    // nginx's smooth weighted round robin gives a b a c a, not a a a b c.
    EXPECT_EQ(sequence(*b, pool, 10), "abacaabaca");
}

TEST(RoundRobin, WeightsThreeOneOneGiveSixtyTwentyTwenty) {
    Pool pool({3, 1, 1});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    auto seq = sequence(*b, pool, 300);
    std::map<char, int> count;
    for (char c : seq) ++count[c];
    EXPECT_EQ(count['a'], 180);
    EXPECT_EQ(count['b'], 60);
    EXPECT_EQ(count['c'], 60);
    // Interleaved: never three of a in a row, never two of b or c.
    EXPECT_EQ(seq.find("aaa"), std::string::npos);
    EXPECT_EQ(seq.find("bb"), std::string::npos);
    EXPECT_EQ(seq.find("cc"), std::string::npos);
}

TEST(RoundRobin, CommonFactorOfWeightsDoesNotChangeTheOrder) {
    Pool small({3, 1, 1});
    Pool big({30, 10, 10});
    auto a = dsgw::balancer::make_round_robin(small.servers);
    auto b = dsgw::balancer::make_round_robin(big.servers);
    EXPECT_EQ(sequence(*a, small, 100), sequence(*b, big, 100));
}

TEST(RoundRobin, LargeUnevenWeightsKeepExactShares) {
    Pool pool({5, 3, 2});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    auto seq = sequence(*b, pool, 1000);
    std::map<char, int> count;
    for (char c : seq) ++count[c];
    EXPECT_EQ(count['a'], 500);
    EXPECT_EQ(count['b'], 300);
    EXPECT_EQ(count['c'], 200);
}

TEST(RoundRobin, SkipsAnUnusableServer) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    pool[1]->on_connect_failure(t0);
    auto seq = sequence(*b, pool, 30);
    EXPECT_EQ(seq.find('b'), std::string::npos);
    EXPECT_NE(seq.find('a'), std::string::npos);
    EXPECT_NE(seq.find('c'), std::string::npos);
    // Once its backoff is over it takes its turns again.
    auto later = sequence(*b, pool, 30, ctx_at(t0 + 1s));
    EXPECT_EQ(std::count(later.begin(), later.end(), 'b'), 10);
}

TEST(RoundRobin, AllUnusableGivesNothing) {
    Pool pool({2, 1});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    pool[0]->on_connect_failure(t0);
    pool[1]->on_connect_failure(t0);
    EXPECT_EQ(b->pick(ctx_at()), nullptr);
    EXPECT_NE(b->pick(ctx_at(t0 + 1s)), nullptr);
}

TEST(RoundRobin, AvoidsExcludedServerWhileAnotherIsUsable) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    auto seq = sequence(*b, pool, 30, ctx_at(t0, pool[0]));
    EXPECT_EQ(seq.find('a'), std::string::npos);
    EXPECT_EQ(seq.find('-'), std::string::npos);
}

TEST(RoundRobin, ReturnsExcludedServerWhenItIsTheLastUsable) {
    Pool pool({1, 1});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    pool[1]->on_connect_failure(t0);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(b->pick(ctx_at(t0, pool[0])), pool[0]);
    pool[0]->on_connect_failure(t0);
    EXPECT_EQ(b->pick(ctx_at(t0, pool[0])), nullptr);
}

// ---------------------------------------------------------------- least_conn

TEST(LeastConn, EmptyPoolGivesNothing) {
    auto b = dsgw::balancer::make_least_conn({});
    EXPECT_EQ(b->pick(ctx_at()), nullptr);
}

TEST(LeastConn, NinePicksWithHeldLeasesLandThreeEach) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::vector<ServerLease> held;
    for (int i = 0; i < 9; ++i) {
        auto* s = b->pick(ctx_at());
        ASSERT_NE(s, nullptr);
        held.emplace_back(s);
    }
    for (auto* s : pool.servers) EXPECT_EQ(s->in_flight(), 3) << s->name();
}

TEST(LeastConn, PicksTheServerWithFewestInFlight) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::vector<ServerLease> held;
    held.emplace_back(pool[0]);
    held.emplace_back(pool[0]);
    held.emplace_back(pool[1]);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(b->pick(ctx_at()), pool[2]);
}

TEST(LeastConn, IdleTiesAreSpreadEvenly) {
    // Short requests: nothing is ever in flight at pick time.
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::map<UpstreamServer*, int> count;
    for (int i = 0; i < 300; ++i) ++count[b->pick(ctx_at())];
    for (auto* s : pool.servers) EXPECT_EQ(count[s], 100) << s->name();
}

TEST(LeastConn, IdleTiesFollowWeights) {
    Pool pool({3, 1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::map<UpstreamServer*, int> count;
    for (int i = 0; i < 500; ++i) ++count[b->pick(ctx_at())];
    EXPECT_EQ(count[pool[0]], 300);
    EXPECT_EQ(count[pool[1]], 100);
    EXPECT_EQ(count[pool[2]], 100);
}

TEST(LeastConn, ComparesInFlightPerWeight) {
    Pool pool({2, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::vector<ServerLease> held;
    for (int i = 0; i < 3; ++i) held.emplace_back(pool[0]);  // 3/2 = 1.5
    for (int i = 0; i < 2; ++i) held.emplace_back(pool[1]);  // 2/1 = 2
    EXPECT_EQ(b->pick(ctx_at()), pool[0]);
    held.emplace_back(pool[0]);  // 4/2 = 2 against 2/1 = 2: a tie, either is right
    held.emplace_back(pool[0]);  // 5/2 = 2.5 against 2
    EXPECT_EQ(b->pick(ctx_at()), pool[1]);
}

TEST(LeastConn, HeldLeasesFollowWeights) {
    Pool pool({2, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::vector<ServerLease> held;
    for (int i = 0; i < 30; ++i) held.emplace_back(b->pick(ctx_at()));
    EXPECT_EQ(pool[0]->in_flight(), 20);
    EXPECT_EQ(pool[1]->in_flight(), 10);
}

TEST(LeastConn, SkipsAnUnusableServerEvenIfIdle) {
    Pool pool({1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::vector<ServerLease> held;
    for (int i = 0; i < 5; ++i) held.emplace_back(pool[1]);
    pool[0]->on_connect_failure(t0);
    EXPECT_EQ(b->pick(ctx_at()), pool[1]);
    EXPECT_EQ(b->pick(ctx_at(t0 + 1s)), pool[0]);
}

TEST(LeastConn, AllUnusableGivesNothing) {
    Pool pool({1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    pool[0]->on_connect_failure(t0);
    pool[1]->on_connect_failure(t0);
    EXPECT_EQ(b->pick(ctx_at()), nullptr);
}

TEST(LeastConn, AvoidsExcludedServerUnlessItIsTheLastUsable) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::vector<ServerLease> held;
    held.emplace_back(pool[1]);
    held.emplace_back(pool[2]);
    // pool[0] is the least loaded but excluded.
    auto* s = b->pick(ctx_at(t0, pool[0]));
    EXPECT_TRUE(s == pool[1] || s == pool[2]);
    pool[1]->on_connect_failure(t0);
    pool[2]->on_connect_failure(t0);
    EXPECT_EQ(b->pick(ctx_at(t0, pool[0])), pool[0]);
}

// ---------------------------------------------------------------- ip_hash

std::vector<std::size_t> mapping(Balancer& b, const Pool& pool, unsigned clients,
                                 Clock::time_point now = t0) {
    std::vector<std::size_t> out;
    for (unsigned i = 0; i < clients; ++i) {
        out.push_back(pool.index_of(b.pick(client_ctx(nth_address(i), now))));
    }
    return out;
}

TEST(IpHash, EmptyPoolGivesNothing) {
    auto b = dsgw::balancer::make_ip_hash({});
    EXPECT_EQ(b->pick(client_ctx(ip::make_address("127.0.0.1"))), nullptr);
}

TEST(IpHash, SameClientAlwaysGetsTheSameServer) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    for (const char* addr : {"127.0.0.1", "10.1.2.3", "2001:db8::7", "::1"}) {
        auto ctx = client_ctx(ip::make_address(addr));
        auto* first = b->pick(ctx);
        ASSERT_NE(first, nullptr);
        for (int i = 0; i < 20; ++i) EXPECT_EQ(b->pick(ctx), first) << addr;
    }
}

TEST(IpHash, MappingDoesNotDependOnInstanceOrServerOrder) {
    Pool pool({1, 2, 1});
    auto b1 = dsgw::balancer::make_ip_hash(pool.servers);
    auto b2 = dsgw::balancer::make_ip_hash({pool[2], pool[0], pool[1]});
    for (unsigned i = 0; i < 1000; ++i) {
        auto ctx = client_ctx(nth_address(i));
        EXPECT_EQ(b1->pick(ctx), b2->pick(ctx));
    }
}

TEST(IpHash, MappingIsStableAcrossRunsAndMachines) {
    // Pinned results: if the hash ever changes, every client of every
    // deployment moves on upgrade. Change these only on purpose.
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    // Computed independently (a few lines of Python: FNV-1a 64, splitmix64,
    // 160 points per unit of weight at hash("name#i"), first point >= key).
    const std::vector<std::pair<const char*, const char*>> expected = {
        {"127.0.0.1", "127.0.0.1:9003"},    {"127.0.0.2", "127.0.0.1:9002"},
        {"127.0.0.3", "127.0.0.1:9002"},    {"10.0.0.1", "127.0.0.1:9003"},
        {"192.168.1.20", "127.0.0.1:9001"}, {"2001:db8::1", "127.0.0.1:9003"},
    };
    for (const auto& [client, server] : expected) {
        EXPECT_EQ(b->pick(client_ctx(ip::make_address(client)))->name(), server) << client;
    }
}

TEST(IpHash, FortyLoopbackClientsReachAllThreeServers) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    std::map<UpstreamServer*, int> count;
    for (unsigned i = 1; i <= 40; ++i) {
        auto client = ip::make_address_v4(
            ip::address_v4::bytes_type{127, 0, 0, static_cast<unsigned char>(i)});
        ++count[b->pick(client_ctx(client))];
    }
    for (auto* s : pool.servers) EXPECT_GE(count[s], 1) << s->name();
    EXPECT_EQ(count.count(nullptr), 0u);
    // Pinned, like MappingIsStableAcrossRunsAndMachines.
    EXPECT_EQ(count[pool[0]], 8);
    EXPECT_EQ(count[pool[1]], 20);
    EXPECT_EQ(count[pool[2]], 12);
}

TEST(IpHash, RemovingAServerMovesOnlyItsClients) {
    Pool pool({1, 1, 1});
    auto full = dsgw::balancer::make_ip_hash(pool.servers);
    auto before = mapping(*full, pool, 1000);
    for (std::size_t removed = 0; removed < 3; ++removed) {
        auto smaller = dsgw::balancer::make_ip_hash(pool.without(removed));
        auto after = mapping(*smaller, pool, 1000);
        int moved = 0;
        int on_removed = 0;
        for (unsigned i = 0; i < 1000; ++i) {
            if (before[i] == removed) {
                ++on_removed;
                EXPECT_NE(after[i], removed);
            } else {
                EXPECT_EQ(after[i], before[i]) << "client " << i << " moved needlessly";
            }
            moved += after[i] != before[i];
        }
        EXPECT_EQ(moved, on_removed);
        EXPECT_GT(on_removed, 0);
    }
}

TEST(IpHash, AddingAServerMovesClientsOnlyToIt) {
    Pool pool({1, 1, 1, 1});
    auto three = dsgw::balancer::make_ip_hash(pool.without(3));
    auto four = dsgw::balancer::make_ip_hash(pool.servers);
    auto before = mapping(*three, pool, 1000);
    auto after = mapping(*four, pool, 1000);
    int gained = 0;
    for (unsigned i = 0; i < 1000; ++i) {
        if (after[i] != before[i]) {
            EXPECT_EQ(after[i], 3u);
            ++gained;
        }
    }
    // About a quarter of the clients; far from all of them.
    EXPECT_GT(gained, 150);
    EXPECT_LT(gained, 350);
}

TEST(IpHash, EqualWeightsSpreadEvenly) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    std::vector<int> count(3);
    for (auto idx : mapping(*b, pool, 30000)) ++count.at(idx);
    for (int c : count) {
        EXPECT_GT(c, 8500);  // 10000 +- 15%
        EXPECT_LT(c, 11500);
    }
}

TEST(IpHash, WeightsTwoOneOneGiveRoughlyHalfQuarterQuarter) {
    Pool pool({2, 1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    std::vector<int> count(3);
    const unsigned clients = 40000;
    for (auto idx : mapping(*b, pool, clients)) ++count.at(idx);
    EXPECT_NEAR(count[0] / double(clients), 0.50, 0.05);
    EXPECT_NEAR(count[1] / double(clients), 0.25, 0.05);
    EXPECT_NEAR(count[2] / double(clients), 0.25, 0.05);
}

TEST(IpHash, UnusableServersClientsFallToTheNextAndComeBack) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    auto before = mapping(*b, pool, 1000);
    for (std::size_t blocked = 0; blocked < 3; ++blocked) {
        pool[blocked]->on_connect_failure(t0);
        auto during = mapping(*b, pool, 1000);
        // Skipping a server's points is the same as a ring built without it.
        auto without = dsgw::balancer::make_ip_hash(pool.without(blocked));
        EXPECT_EQ(during, mapping(*without, pool, 1000));
        std::map<std::size_t, int> refugees;  // where the blocked server's clients went
        for (unsigned i = 0; i < 1000; ++i) {
            EXPECT_NE(during[i], blocked);
            if (before[i] == blocked) ++refugees[during[i]];
            if (before[i] != blocked) {
                EXPECT_EQ(during[i], before[i]);
            }
        }
        // Spread over both remaining servers, not piled on one.
        EXPECT_EQ(refugees.size(), 2u);
        // Backoff over: every client is back where it was.
        EXPECT_EQ(mapping(*b, pool, 1000, t0 + 1s), before);
        pool[blocked]->on_connect_success();
        EXPECT_EQ(mapping(*b, pool, 1000), before);
    }
}

TEST(IpHash, ExcludedServerIsSkippedLikeABlockedOne) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    auto without = dsgw::balancer::make_ip_hash(pool.without(0));
    for (unsigned i = 0; i < 200; ++i) {
        auto ctx = client_ctx(nth_address(i));
        auto* normal = b->pick(ctx);
        ctx.exclude = normal;
        auto* retry = b->pick(ctx);
        EXPECT_NE(retry, normal);
        if (normal == pool[0]) {
            EXPECT_EQ(retry, without->pick(ctx));
        }
    }
}

TEST(IpHash, AllUnusableGivesNothingAndLastUsableIsReturned) {
    Pool pool({1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    auto ctx = client_ctx(ip::make_address("10.9.8.7"));
    pool[0]->on_connect_failure(t0);
    EXPECT_EQ(b->pick(ctx), pool[1]);
    ctx.exclude = pool[1];
    EXPECT_EQ(b->pick(ctx), pool[1]);  // the excluded one is the last usable
    pool[1]->on_connect_failure(t0);
    EXPECT_EQ(b->pick(ctx), nullptr);
}

TEST(IpHash, Ipv6ClientsAreSpreadToo) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_ip_hash(pool.servers);
    std::map<UpstreamServer*, int> count;
    for (unsigned i = 1; i <= 300; ++i) {
        auto bytes = ip::make_address_v6("2001:db8::").to_bytes();
        bytes[14] = static_cast<unsigned char>(i >> 8);
        bytes[15] = static_cast<unsigned char>(i & 0xff);
        ++count[b->pick(client_ctx(ip::address_v6(bytes)))];
    }
    for (auto* s : pool.servers) EXPECT_GT(count[s], 50) << s->name();
}

// ---------------------------------------------------------------- hot path

TEST(HotPath, AllocationProbeWorks) {
    alloc_probe::count = 0;
    alloc_probe::counting = true;
    auto p = std::make_unique<std::string>(100, 'x');
    alloc_probe::counting = false;
    EXPECT_GE(alloc_probe::count, 2);  // the string object and its buffer
}

TEST(HotPath, PickNeverAllocates) {
    Pool pool({3, 1, 2, 1});
    pool[1]->on_connect_failure(t0);  // exercise the skipping paths too
    std::vector<ServerLease> held;
    held.emplace_back(pool[0]);
    held.reserve(16);
    for (auto kind : {dsgw::config::BalancerKind::round_robin,
                      dsgw::config::BalancerKind::least_conn,
                      dsgw::config::BalancerKind::ip_hash}) {
        auto b = dsgw::balancer::make_balancer(kind, pool.servers);
        PickContext v4 = client_ctx(ip::make_address("10.1.2.3"));
        PickContext v6 = client_ctx(ip::make_address("2001:db8::5"));
        v6.exclude = pool[2];
        long found = 0;
        alloc_probe::count = 0;
        alloc_probe::counting = true;
        for (int i = 0; i < 1000; ++i) {
            found += b->pick(v4) != nullptr;
            found += b->pick(v6) != nullptr;
        }
        alloc_probe::counting = false;
        EXPECT_EQ(alloc_probe::count, 0) << "balancer kind " << static_cast<int>(kind);
        EXPECT_EQ(found, 2000);
    }
}

// ---------------------------------------------------------------- make_balancer

TEST(MakeBalancer, DispatchesOnKind) {
    using dsgw::config::BalancerKind;
    Pool pool({3, 1, 1});

    auto rr = dsgw::balancer::make_balancer(BalancerKind::round_robin, pool.servers);
    EXPECT_EQ(sequence(*rr, pool, 5), "abaca");

    // least_conn follows held leases: 6 in flight on a (2 per unit of weight)
    // against none on b and c keeps every pick off a.
    auto lc = dsgw::balancer::make_balancer(BalancerKind::least_conn, pool.servers);
    {
        std::vector<ServerLease> held;
        for (int i = 0; i < 6; ++i) held.emplace_back(pool[0]);
        for (int i = 0; i < 5; ++i) EXPECT_NE(lc->pick(ctx_at()), pool[0]);
    }

    // ip_hash ignores turns: one client stays on one server.
    auto ih = dsgw::balancer::make_balancer(BalancerKind::ip_hash, pool.servers);
    auto ctx = client_ctx(ip::make_address("10.0.0.1"));
    auto* first = ih->pick(ctx);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(ih->pick(ctx), first);
}

// ---------------------------------------------------------------- concurrency

// Every worker thread shares one balancer. Each thread holds a few leases at
// a time, like a worker with several streams open.
std::vector<long> hammer(Balancer& b, const Pool& pool, int threads, int picks_per_thread,
                         std::atomic<long>& misses) {
    std::vector<std::vector<long>> per_thread(threads, std::vector<long>(pool.servers.size()));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            std::deque<ServerLease> open;
            PickContext ctx;
            for (int i = 0; i < picks_per_thread; ++i) {
                ctx.now = Clock::now();
                ctx.client = nth_address(static_cast<unsigned>(i % 4096));
                auto* s = b.pick(ctx);
                if (!s) {
                    misses.fetch_add(1, std::memory_order_relaxed);
                    continue;
                }
                ++per_thread[t][pool.index_of(s)];
                open.emplace_back(s);
                if (open.size() > 8) open.pop_front();
            }
        });
    }
    for (auto& w : workers) w.join();
    std::vector<long> total(pool.servers.size());
    for (const auto& counts : per_thread) {
        for (std::size_t i = 0; i < counts.size(); ++i) total[i] += counts[i];
    }
    return total;
}

TEST(Concurrency, RoundRobinFourThreadsKeepExactShares) {
    Pool pool({3, 1, 1});
    auto b = dsgw::balancer::make_round_robin(pool.servers);
    std::atomic<long> misses{0};
    auto count = hammer(*b, pool, 4, 100000, misses);
    EXPECT_EQ(misses.load(), 0);
    // The counter is global, so the shares are exact whatever the interleaving.
    EXPECT_EQ(count[0], 240000);
    EXPECT_EQ(count[1], 80000);
    EXPECT_EQ(count[2], 80000);
    for (auto* s : pool.servers) EXPECT_EQ(s->in_flight(), 0) << s->name();
}

TEST(Concurrency, LeastConnFourThreadsBalanceAndReturnToZero) {
    Pool pool({1, 1, 1});
    auto b = dsgw::balancer::make_least_conn(pool.servers);
    std::atomic<long> misses{0};
    auto count = hammer(*b, pool, 4, 100000, misses);
    EXPECT_EQ(misses.load(), 0);
    EXPECT_EQ(count[0] + count[1] + count[2], 400000);
    for (long c : count) EXPECT_GT(c, 400000 / 5);
    for (auto* s : pool.servers) EXPECT_EQ(s->in_flight(), 0) << s->name();
}

TEST(Concurrency, PicksRaceWithFailuresAndRecoveries) {
    // One thread flaps a server's backoff while four pick from every balancer:
    // exercises the atomics for the sanitizer builds.
    Pool pool({2, 1, 1});
    std::vector<std::unique_ptr<Balancer>> balancers;
    balancers.push_back(dsgw::balancer::make_round_robin(pool.servers));
    balancers.push_back(dsgw::balancer::make_least_conn(pool.servers));
    balancers.push_back(dsgw::balancer::make_ip_hash(pool.servers));
    for (auto& b : balancers) {
        std::atomic<bool> stop{false};
        std::thread flapper([&] {
            while (!stop.load()) {
                pool[0]->on_connect_failure(Clock::now());
                std::this_thread::yield();
                pool[0]->on_connect_success();
            }
        });
        std::atomic<long> misses{0};
        auto count = hammer(*b, pool, 4, 20000, misses);
        stop.store(true);
        flapper.join();
        EXPECT_EQ(misses.load(), 0);  // pool[1] and pool[2] were always usable
        EXPECT_EQ(count[0] + count[1] + count[2], 80000);
        for (auto* s : pool.servers) EXPECT_EQ(s->in_flight(), 0) << s->name();
    }
}

}  // namespace
