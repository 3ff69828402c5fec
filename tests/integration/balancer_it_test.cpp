// Balancers end to end (SPEC §3 upstreams[].balancer): requests through a real
// gateway to three real mock servers, counted by the servers themselves.

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <set>

#include "harness.hpp"

namespace dsgw::it {
namespace {

// One request on a new connection (from `source` if given); returns the id of
// the mock that answered, or "" on failure.
std::string served_by(std::uint16_t port, const std::string& source = "") {
    std::string err;
    auto r = request_once(port, http_request("GET", "/v1/models"), source, 10s, &err);
    if (!r) {
        ADD_FAILURE() << "request from " << (source.empty() ? "default" : source)
                      << " failed: " << err;
        return "";
    }
    if (r->status != 200) ADD_FAILURE() << "status " << r->status << ": " << r->body;
    return r->header("X-Mock-Server").value_or("");
}

std::string describe(const std::map<std::string, int>& m) {
    std::string s;
    for (const auto& [k, v] : m) s += k + "=" + std::to_string(v) + " ";
    return s;
}

TEST(Balancer, RoundRobinSpreadsEvenly) {
    auto mocks = start_mocks(3);
    for (auto& m : mocks) ASSERT_TRUE(m->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks, "round_robin"))) << gw.logs();

    std::map<std::string, int> seen;
    for (int i = 0; i < 300; ++i) ++seen[served_by(gw.port())];
    std::cout << "round_robin 300 requests: " << describe(seen) << "\n";
    for (auto& m : mocks) {
        EXPECT_EQ(seen[m->id()], 100) << describe(seen);
        auto s = m->stats();
        ASSERT_TRUE(s);
        EXPECT_EQ(s->requests, 100) << m->id();
    }
}

TEST(Balancer, WeightedRoundRobinIsExact) {
    auto mocks = start_mocks(3);
    for (auto& m : mocks) ASSERT_TRUE(m->ok());
    GatewayConfig cfg = basic_config(mocks, "round_robin");
    cfg.upstream().servers[0].weight = 3;
    cfg.upstream().servers[1].weight = 1;
    cfg.upstream().servers[2].weight = 1;
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();

    std::map<std::string, int> seen;
    std::string order;
    int longest_run = 0, run = 0;
    std::string prev;
    for (int i = 0; i < 300; ++i) {
        std::string id = served_by(gw.port());
        ++seen[id];
        run = id == prev ? run + 1 : 1;
        longest_run = std::max(longest_run, run);
        prev = id;
        if (i < 20) order += id.substr(1) + " ";
    }
    std::cout << "weighted 3:1:1, 300 requests: " << describe(seen) << " first 20: " << order
              << " longest run on one server: " << longest_run << "\n";
    ::testing::Test::RecordProperty("wrr_longest_run", longest_run);
    const int want[3] = {180, 60, 60};
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(seen[mocks[static_cast<std::size_t>(i)]->id()], want[i]) << describe(seen);
        auto s = mocks[static_cast<std::size_t>(i)]->stats();
        ASSERT_TRUE(s);
        EXPECT_EQ(s->requests, want[i]);
    }
}

TEST(Balancer, IpHashIsStickyAndSpreadsAndIsConsistent) {
    auto mocks = start_mocks(3);
    for (auto& m : mocks) ASSERT_TRUE(m->ok());
    std::map<std::string, std::string> before;  // source address -> server id
    {
        Gateway gw;
        ASSERT_TRUE(gw.start(basic_config(mocks, "ip_hash"))) << gw.logs();

        // One client address always reaches the same server.
        std::set<std::string> fixed;
        for (int i = 0; i < 20; ++i) fixed.insert(served_by(gw.port(), "127.0.0.5"));
        EXPECT_EQ(fixed.size(), 1u) << "127.0.0.5 reached several servers";

        // Forty client addresses reach every server.
        std::map<std::string, int> per_server;
        for (int i = 1; i <= 40; ++i) {
            std::string src = "127.0.0." + std::to_string(i);
            before[src] = served_by(gw.port(), src);
            ++per_server[before[src]];
        }
        std::cout << "ip_hash 40 addresses over 3 servers: " << describe(per_server) << "\n";
        EXPECT_EQ(per_server.size(), 3u) << describe(per_server);
        EXPECT_EQ(before["127.0.0.5"], *fixed.begin());
        ASSERT_EQ(gw.stop(), 0) << gw.logs();
    }

    // Same gateway config without m2: clients on m0/m1 stay where they were.
    GatewayConfig cfg = basic_config({mocks[0]->address(), mocks[1]->address()}, "ip_hash");
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    int moved = 0, kept = 0, rehomed = 0;
    for (const auto& [src, old] : before) {
        std::string now = served_by(gw.port(), src);
        if (old == mocks[2]->id()) {
            EXPECT_TRUE(now == mocks[0]->id() || now == mocks[1]->id()) << src << " -> " << now;
            ++rehomed;
        } else if (now == old) {
            ++kept;
        } else {
            ++moved;
            ADD_FAILURE() << src << " moved from " << old << " to " << now
                          << " although its server is still configured";
        }
    }
    std::cout << "after removing one server: kept " << kept << ", moved " << moved << ", re-homed "
              << rehomed << "\n";
    EXPECT_EQ(moved, 0);
    EXPECT_GT(kept, 0);
}

// least_conn must follow what is in flight, not a rotation: one of the first
// three requests is short, so a plain rotation would end 4/2/3 while
// least_conn ends with 3 long streams on each server.
TEST(Balancer, LeastConnBalancesOpenStreams) {
    auto mocks = start_mocks(3);
    for (auto& m : mocks) ASSERT_TRUE(m->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks, "least_conn"))) << gw.logs();

    struct Open {
        Conn conn;
        std::unique_ptr<StreamReader> reader;
        std::string server;
    };
    std::vector<Open> open;
    std::map<std::string, int> placed;
    auto open_stream = [&](int tokens, int delay_ms) -> Open {
        Open o;
        o.reader = std::make_unique<StreamReader>(Clock::now());
        EXPECT_TRUE(o.conn.connect(gw.port()));
        EXPECT_TRUE(o.conn.send_all(stream_request(tokens, delay_ms)));
        EXPECT_TRUE(o.conn.read_into(*o.reader, 10s, 1)) << o.reader->result().error;
        o.server = o.reader->result().response.header("X-Mock-Server").value_or("?");
        return o;
    };
    // 60 tokens x 100 ms: each long stream stays open ~6 s, far longer than
    // the test needs to place all of them.
    open.push_back(open_stream(60, 100));
    Open shorter = open_stream(2, 10);
    EXPECT_TRUE(shorter.conn.read_into(*shorter.reader, 10s)) << shorter.reader->result().error;
    EXPECT_TRUE(shorter.reader->result().saw_done());
    open.push_back(open_stream(60, 100));
    std::this_thread::sleep_for(300ms);  // let the gateway release the short request
    for (int i = 0; i < 7; ++i) open.push_back(open_stream(60, 100));
    for (const auto& o : open) ++placed[o.server];
    std::cout << "least_conn: short request on " << shorter.server
              << ", long streams: " << describe(placed) << "\n";

    for (auto& m : mocks) {
        auto s = m->stats();
        ASSERT_TRUE(s);
        EXPECT_EQ(placed[m->id()], 3) << describe(placed);
        EXPECT_EQ(s->in_flight, 3) << m->id() << " " << s->raw;
        EXPECT_EQ(s->max_in_flight, 3) << m->id() << " " << s->raw;
    }
}

}  // namespace
}  // namespace dsgw::it
