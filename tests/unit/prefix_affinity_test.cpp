// prefix_affinity (SPEC §9): the longest remembered prefix wins under the load
// bound; a new prefix goes by rendezvous hashing, the same in every process;
// no prompt is least_conn. And the table it remembers with.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/balancer/prefix_table.hpp"
#include "deepseek_gateway/llm/prompt_blocks.hpp"
#include "server_pool.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace {

namespace ip = boost::asio::ip;
using dsgw::balancer::PickContext;
using dsgw::balancer::PrefixTable;
using dsgw::balancer::PromptMatch;
using dsgw::test::Pool;
using dsgw::upstream::ServerLease;
using dsgw::upstream::UpstreamServer;

// n servers of weight 1 (127.0.0.1:9001, ...).
Pool equal(std::size_t n) {
    return Pool(std::vector<unsigned>(n, 1));
}

std::unique_ptr<dsgw::balancer::Balancer> make(const Pool& s,
                                               std::shared_ptr<PrefixTable> table = nullptr,
                                               double ratio = 1.25) {
    dsgw::config::PrefixAffinityConfig cfg;
    cfg.block_bytes = 16;
    cfg.max_load_ratio = ratio;
    cfg.table_entries = 4096;
    return dsgw::balancer::make_prefix_affinity(s.servers, cfg, std::move(table));
}

std::vector<std::uint64_t> blocks(const std::string& text) {
    std::vector<std::uint64_t> out;
    dsgw::llm::hash_blocks(text, 16, 1024, out);
    return out;
}

// Picks for `text`; `matched` gets how many blocks the server had served.
UpstreamServer* pick(dsgw::balancer::Balancer& b, const std::string& text,
                     std::uint32_t* matched = nullptr) {
    const auto hashes = blocks(text);
    PromptMatch prompt{hashes};
    PickContext ctx;
    ctx.prompt = &prompt;
    auto* s = b.pick(ctx);
    EXPECT_TRUE(prompt.looked_up);
    if (matched) *matched = prompt.matched;
    return s;
}

std::string system_prompt(int group) {
    std::string s = "group " + std::to_string(group) + ": ";
    while (s.size() < 200) s += "You are a careful assistant. ";
    return s;
}

TEST(PrefixAffinity, ASharedPrefixStaysOnTheServerThatServedIt) {
    auto s = equal(4);
    auto b = make(s);
    std::uint32_t matched = 99;
    auto* first = pick(*b, system_prompt(1) + "question one", &matched);
    EXPECT_EQ(matched, 0u);  // new: a miss
    for (int q = 0; q < 20; ++q) {
        auto* again =
            pick(*b, system_prompt(1) + "another question " + std::to_string(q), &matched);
        EXPECT_EQ(again, first);
        // At least the system prompt's full blocks (the questions may share more).
        EXPECT_GE(matched, system_prompt(1).size() / 16);
    }
}

TEST(PrefixAffinity, NewPrefixesGoByRendezvousTheSameInEveryProcess) {
    // Two balancers with their own tables (two gateway processes) agree on
    // every first-time prefix, and the prefixes spread over the servers.
    auto s = equal(4);
    auto a = make(s);
    auto b = make(s);
    std::map<std::size_t, int> count;
    for (int g = 0; g < 200; ++g) {
        auto* x = pick(*a, system_prompt(g));
        auto* y = pick(*b, system_prompt(g));
        EXPECT_EQ(x, y) << "group " << g;
        ++count[s.index_of(x)];
    }
    ASSERT_EQ(count.size(), 4u);
    for (const auto& [server, n] : count) EXPECT_GT(n, 25) << "server " << server;
}

TEST(PrefixAffinity, RendezvousMovesOnlyTheRemovedServersPrefixes) {
    auto all = equal(4);
    auto three = equal(3);  // the same first three names
    auto b4 = make(all);
    auto b3 = make(three);
    for (int g = 0; g < 100; ++g) {
        const auto i4 = all.index_of(pick(*b4, system_prompt(g)));
        const auto i3 = three.index_of(pick(*b3, system_prompt(g)));
        if (i4 < 3) {
            EXPECT_EQ(i3, i4) << "group " << g;
        }
    }
}

TEST(PrefixAffinity, TheLongestPrefixWins) {
    auto s = equal(2);
    auto table = std::make_shared<PrefixTable>(4096);
    auto b = make(s, table);
    const std::string base = system_prompt(7);
    // Teach the table: `base` on server 1, `base + more` on server 0.
    const auto short_blocks = blocks(base);
    const auto long_blocks = blocks(base + std::string(64, 'm'));
    const auto stamp = PrefixTable::stamp_of(dsgw::upstream::Clock::now());
    for (auto h : short_blocks) table->remember(h, 2, stamp);
    for (auto h : long_blocks) table->remember(h, 1, stamp);
    // The long prefix's blocks include the short one's full blocks: they now
    // say server 0; a request with just the short prefix's full blocks goes there.
    std::uint32_t matched = 0;
    EXPECT_EQ(pick(*b, base + std::string(64, 'm') + "tail", &matched), s.servers[0]);
    EXPECT_EQ(matched, (base.size() + 64) / 16);  // its full blocks
}

TEST(PrefixAffinity, AServerPastTwiceItsShareInFlightIsPassedOver) {
    auto s = equal(4);
    auto b = make(s);
    const std::string hot = system_prompt(3);
    auto* home = pick(*b, hot);
    // 4 in flight on home, none elsewhere: its share with this request is
    // 5/4, the cap max(ceil(2 * 5/4), ceil(5/4) + 1) = 3: it takes no more.
    std::vector<ServerLease> leases;
    for (int i = 0; i < 4; ++i) leases.emplace_back(home);
    std::uint32_t matched = 0;
    auto* other = pick(*b, hot + "next", &matched);
    EXPECT_NE(other, home);
    EXPECT_EQ(matched, 0u);
    // The prefix is now remembered on the other server: it follows there
    // (a hot prefix spreads instead of piling up), its blocks matched.
    EXPECT_EQ(pick(*b, hot + "again", &matched), other);
    EXPECT_GE(matched, hot.size() / 16);
}

TEST(PrefixAffinity, AnIdlePoolKeepsEveryPrefixWhereItIs) {
    // One client alone (a request still counted in flight at most): every
    // pick goes to the prefix's server, however skewed the recent picks.
    auto s = equal(4);
    auto b = make(s);
    const std::string p = system_prompt(21);
    auto* home = pick(*b, p);
    for (int i = 0; i < 50; ++i) {
        ServerLease lingering(home);
        EXPECT_EQ(pick(*b, p + std::to_string(i)), home) << i;
    }
}

TEST(PrefixAffinity, ABusyServerAboveItsShareTakesNoMoreThanTheRatioOfRecentPicks) {
    auto s = equal(4);
    auto b = make(s);  // ratio 1.25
    const std::string p = system_prompt(31);
    auto* home = pick(*b, p);  // the first pick of the window, at home
    std::vector<ServerLease> leases;
    for (auto* x : s.servers) {  // a busy pool: 2 in flight everywhere
        leases.emplace_back(x);
        leases.emplace_back(x);
    }
    // Home within its share in flight (2 + this one <= ceil(9/4)): it keeps
    // the prefix, whatever its share of the picks.
    EXPECT_EQ(pick(*b, p + "a"), home);
    // One more in flight on home: above its share, and with this one it
    // would have 3 of 3 picks, more than ceil(1.25 * 3/4) = 1.
    leases.emplace_back(home);
    EXPECT_NE(pick(*b, p + "b"), home);
}

TEST(PrefixAffinity, ScrapedLoadCounts) {
    auto s = equal(4);
    auto b = make(s);
    const std::string p = system_prompt(5);
    auto* home = pick(*b, p);
    const auto now = dsgw::upstream::Clock::now();
    for (auto* x : s.servers) x->set_load_stale_after(std::chrono::seconds(10));
    // The server's own queue (other gateways' requests) makes it busy: 15,
    // over twice its share (16/4) with this request.
    home->set_scraped_load({.running = 4, .waiting = 6, .kv_usage = 0.5}, now);
    EXPECT_NEAR(home->load(now), (4 + 6) * 1.5, 1e-3);  // KV use is kept in 1/65535
    EXPECT_NE(pick(*b, p), home);
    // A stale scrape no longer counts.
    home->set_scraped_load({.running = 4, .waiting = 6, .kv_usage = 0.5},
                           now - std::chrono::seconds(11));
    EXPECT_DOUBLE_EQ(home->load(now), 0.0);
}

TEST(PrefixAffinity, WithoutAPromptItIsLeastConn) {
    auto s = equal(3);
    auto b = make(s);
    std::vector<ServerLease> leases;
    leases.emplace_back(s.servers[0]);
    leases.emplace_back(s.servers[1]);
    PickContext ctx;
    EXPECT_EQ(b->pick(ctx), s.servers[2]);
    PromptMatch empty;
    ctx.prompt = &empty;
    EXPECT_EQ(b->pick(ctx), s.servers[2]);
    EXPECT_FALSE(empty.looked_up);
}

TEST(PrefixAffinity, SkipsUnusableAndExcludedServers) {
    auto s = equal(3);
    auto b = make(s);
    const std::string p = system_prompt(9);
    auto* home = pick(*b, p);
    home->set_healthy(false);
    auto* second = pick(*b, p);
    EXPECT_NE(second, home);
    home->set_healthy(true);
    // A retry avoids the server it failed on (ctx.exclude) ...
    const auto hashes = blocks(p);
    PromptMatch prompt{hashes};
    PickContext ctx;
    ctx.prompt = &prompt;
    ctx.exclude = second;
    auto* third = b->pick(ctx);
    EXPECT_NE(third, second);
    // ... unless it is the only one left.
    for (auto* x : s.servers)
        if (x != second) x->set_healthy(false);
    EXPECT_EQ(b->pick(ctx), second);
}

TEST(PrefixAffinity, NewPrefixesSpreadByWeight) {
    Pool s({1, 3});
    auto b = make(s, nullptr, 100.0);  // no bound in the way
    int heavy = 0;
    for (int g = 0; g < 400; ++g) heavy += pick(*b, system_prompt(1000 + g)) == s.servers[1];
    EXPECT_GT(heavy, 240);  // 3/4 of 400 is 300
    EXPECT_LT(heavy, 360);
}

// ---- the table ------------------------------------------------------------------

TEST(PrefixTable, RemembersTheLastServer) {
    PrefixTable t(1024);
    EXPECT_EQ(t.capacity(), 1024u);
    EXPECT_EQ(t.find(42), 0u);
    t.remember(42, 3, 1);
    EXPECT_EQ(t.find(42), 3u);
    t.remember(42, 5, 2);
    EXPECT_EQ(t.find(42), 5u);
    EXPECT_EQ(t.find(43), 0u);
    t.remember(44, PrefixTable::kMaxServers + 1, 1);  // not representable: not kept
    EXPECT_EQ(t.find(44), 0u);
}

TEST(PrefixTable, AFullBucketForgetsItsLeastRecentlyUsed) {
    PrefixTable t(8);  // one bucket of 8
    for (std::uint64_t i = 1; i <= 8; ++i) t.remember(i << 32, 1, static_cast<std::uint32_t>(i));
    t.remember(1ull << 32, 1, 20);  // touched: now the most recent
    t.remember(9ull << 32, 2, 21);  // evicts 2 (the oldest)
    EXPECT_EQ(t.find(1ull << 32), 1u);
    EXPECT_EQ(t.find(2ull << 32), 0u);
    EXPECT_EQ(t.find(9ull << 32), 2u);
    for (std::uint64_t i = 3; i <= 8; ++i) EXPECT_EQ(t.find(i << 32), 1u) << i;
}

TEST(PrefixTable, HoldsAboutItsCapacity) {
    PrefixTable t(1 << 14);
    const std::uint32_t stamp = 1;
    std::uint64_t h = 0x9e3779b97f4a7c15ull;
    std::vector<std::uint64_t> keys;
    for (int i = 0; i < (1 << 13); ++i) {  // half full
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        keys.push_back(h);
        t.remember(h, 1, stamp);
    }
    std::size_t found = 0;
    for (auto k : keys) found += t.find(k) != 0;
    EXPECT_GT(found, keys.size() * 97 / 100);
}

}  // namespace
