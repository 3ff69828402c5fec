// prefix_affinity end to end (SPEC §9): the real gateway in front of four
// mock servers. Requests that share a long prefix go to one server; two
// gateway processes agree on new prefixes; the lookups and hits are counted;
// a reload that keeps the servers keeps what was remembered.

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "admin_scrape.hpp"
#include "harness.hpp"

namespace dsgw::it {
namespace {

// One listener without routes in front of a prefix_affinity pool of `mocks`.
GatewayConfig pool_config(const std::vector<std::unique_ptr<MockServer>>& mocks) {
    auto c = basic_config(mocks, "prefix_affinity");
    c.upstream().prefix_affinity = "{block_bytes: 64, max_load_ratio: 1.25, table_entries: 10000}";
    return c;
}

class PrefixAffinityIt : public ::testing::Test {
protected:
    void SetUp() override {
        mocks_ = start_mocks(4, {}, "s");
        for (const auto& m : mocks_) ASSERT_TRUE(m->ok());
    }
    std::string yaml() const { return pool_config(mocks_).yaml(); }
    std::vector<std::unique_ptr<MockServer>> mocks_;
};

std::string system_prompt(int group) {
    std::string s = "You are the assistant of team " + std::to_string(group) + ". ";
    while (s.size() < 1000) s += "Answer briefly, cite sources, and never guess. ";
    return s;
}

std::string chat_body(int group, const std::string& question) {
    return R"({"model":"deepseek-r1","messages":[{"role":"system","content":")" +
           system_prompt(group) + R"("},{"role":"user","content":")" + question + R"("}]})";
}

std::string post(const std::string& body, bool chunked = false) {
    if (!chunked)
        return http_request("POST", "/v1/chat/completions", {{"Content-Type", "application/json"}},
                            body);
    std::string head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    std::string chunks;
    for (std::size_t at = 0; at < body.size(); at += 100) {
        const auto piece = body.substr(at, 100);
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        chunks += size + piece + "\r\n";
    }
    return head + chunks + "0\r\n\r\n";
}

// The mock that answered, or why none did.
std::string served_by(std::uint16_t port, const std::string& request) {
    auto r = request_once(port, request);
    if (!r) return "no response";
    if (r->status != 200) return "status " + std::to_string(r->status) + ": " + r->body;
    return r->header("X-Mock-Server").value_or("no X-Mock-Server");
}

TEST_F(PrefixAffinityIt, EachGroupStaysOnOneServerAndTheGroupsSpread) {
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml())) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin);
    std::map<int, std::set<std::string>> servers_of;
    std::set<std::string> used;
    constexpr int kGroups = 12, kQuestions = 4;
    for (int q = 0; q < kQuestions; ++q)
        for (int g = 0; g < kGroups; ++g) {
            // Every other request with a chunked body: the prompt is the same.
            const auto who = served_by(
                gw.port(), post(chat_body(g, "question " + std::to_string(q)), (g + q) % 2 == 1));
            servers_of[g].insert(who);
            used.insert(who);
        }
    for (const auto& [g, s] : servers_of)
        EXPECT_EQ(s.size(), 1u) << "group " << g << " went to " << *s.begin() << " and more";
    EXPECT_GE(used.size(), 3u);  // 12 groups by rendezvous over 4 servers
    // Every request was looked up; all but each group's first were hits.
    auto s = scrape_until(*admin, [](const Scrape& s) {
        // A request is counted just after its response went out.
        return s.sum(P + "upstream_prefix_lookups_total") >= kGroups * kQuestions &&
               s.sum(P + "upstream_prefix_hits_total") >= kGroups * (kQuestions - 1);
    });
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value(P + "upstream_prefix_lookups_total", {{"upstream", "pool"}}),
              kGroups * kQuestions);
    EXPECT_EQ(s->value(P + "upstream_prefix_hits_total", {{"upstream", "pool"}}),
              kGroups * (kQuestions - 1));
    // upstream_server_load is there for every server (0: nothing in flight).
    EXPECT_EQ(s->sum(P + "upstream_server_load"), 0);
    for (const auto& m : mocks_)
        EXPECT_TRUE(
            s->value(P + "upstream_server_load", {{"upstream", "pool"}, {"server", m->address()}}));
}

TEST_F(PrefixAffinityIt, TwoGatewaysSendNewPrefixesToTheSameServer) {
    Gateway a, b;
    ASSERT_TRUE(a.start(yaml())) << a.logs();
    ASSERT_TRUE(b.start(yaml())) << b.logs();
    // Gateway b sees the prefixes in the reverse order: it agrees because it
    // hashes them, not because it took turns the same way.
    constexpr int kGroups = 40;
    std::map<int, std::string> via_a;
    std::set<std::string> used;
    for (int g = 0; g < kGroups; ++g) {
        via_a[g] = served_by(a.port(), post(chat_body(100 + g, "first")));
        used.insert(via_a[g]);
    }
    for (int g = kGroups - 1; g >= 0; --g)
        EXPECT_EQ(served_by(b.port(), post(chat_body(100 + g, "first"))), via_a[g])
            << "group " << g;
    EXPECT_EQ(used.size(), 4u);
}

TEST_F(PrefixAffinityIt, RequestsWithoutAPromptAreServedWithoutALookup) {
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml())) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin);
    // No prompt (embeddings), not JSON, a GET: all go to a server (whatever
    // it answers), none is looked up.
    auto r = request_once(
        gw.port(), http_request("POST", "/v1/embeddings", {{"Content-Type", "application/json"}},
                                R"({"model":"bge","input":"embed me"})"));
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->header("X-Mock-Server")) << r->status << " " << r->body;
    r = request_once(gw.port(), http_request("POST", "/v1/chat/completions",
                                             {{"Content-Type", "text/plain"}}, "not json"));
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->header("X-Mock-Server")) << r->status << " " << r->body;
    r = request_once(gw.port(), http_request("GET", "/v1/models"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    // Invalid JSON is refused as on a listener with routes (OpenAI's shape).
    r = request_once(gw.port(),
                     http_request("POST", "/v1/chat/completions",
                                  {{"Content-Type", "application/json"}}, "{\"messages\":"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_FALSE(r->header("X-Mock-Server"));  // the gateway's own answer
    EXPECT_NE(r->body.find("invalid_request_error"), std::string::npos) << r->body;
    auto s = scrape(*admin);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value(P + "upstream_prefix_lookups_total", {{"upstream", "pool"}}), 0);
}

TEST_F(PrefixAffinityIt, AReloadThatKeepsTheServersKeepsWhatWasRemembered) {
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml())) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin);
    std::map<int, std::string> home;
    for (int g = 0; g < 8; ++g) home[g] = served_by(gw.port(), post(chat_body(200 + g, "before")));
    // An unrelated change (a second listener's worth of limits): same servers.
    {
        std::ofstream out(gw.config_path());
        auto changed = pool_config(mocks_);
        changed.client_idle = "61s";
        out << changed.yaml();
    }
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    ASSERT_TRUE(gw.process().wait_for_line(std::regex("configuration reloaded"), 10s)) << gw.logs();
    for (int g = 0; g < 8; ++g)
        EXPECT_EQ(served_by(gw.port(), post(chat_body(200 + g, "after"))), home[g]) << g;
    // A request is counted just after its response went out: wait for the 8th.
    auto s = scrape_until(*admin, [](const Scrape& s) {
        return s.sum(P + "upstream_prefix_lookups_total") >= 16 &&
               s.sum(P + "upstream_prefix_hits_total") >= 8;
    });
    ASSERT_TRUE(s);
    // The 8 requests after the reload were hits: the table was kept.
    EXPECT_EQ(s->value(P + "upstream_prefix_hits_total", {{"upstream", "pool"}}), 8);
}

}  // namespace
}  // namespace dsgw::it

namespace dsgw::it {
namespace {

// One client alone, with load_metrics: a scrape taken while its previous
// request ran still counts it for a moment after it ended; that must not
// send the next request of the same conversation elsewhere.
TEST(PrefixAffinityIdle, ALoneClientKeepsItsServerWithLoadMetrics) {
    auto mocks =
        start_mocks(2, {"--first-token-delay-ms", "150", "--prefix-cache-blocks", "1000"}, "slow");
    for (const auto& m : mocks) ASSERT_TRUE(m->ok());
    auto cfg = pool_config(mocks);
    cfg.upstream().load_metrics = "{path: /metrics, interval: 100ms}";
    cfg.access_log = "off";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    const auto home = served_by(gw.port(), post(chat_body(7, "turn 0")));
    for (int turn = 1; turn < 8; ++turn)
        EXPECT_EQ(served_by(gw.port(), post(chat_body(7, "turn " + std::to_string(turn)))), home)
            << "turn " << turn;
}

}  // namespace
}  // namespace dsgw::it
