// The rate-limited log of refusals, driven by a fake clock.

#include "deepseek_gateway/access/deny_log.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace ip = boost::asio::ip;
using dsgw::access::DenyLog;
using dsgw::access::DenyReason;
using dsgw::access::format_refusal;
using dsgw::access::Refusal;

constexpr std::int64_t kSecond = 1'000'000'000;

// A log whose lines land in `lines` and whose clock is `now` (nanoseconds).
struct Fixture {
    std::vector<std::string> lines;
    std::int64_t now = 1000 * kSecond;
    DenyLog log;

    explicit Fixture(unsigned per_second)
        : log([this](std::string_view l) { lines.emplace_back(l); }, per_second,
              [this] { return now; }) {}
};

Refusal refusal(const char* client, DenyReason reason = DenyReason::not_allowed) {
    return Refusal{"public", ip::make_address(client), reason, std::nullopt, {}};
}

TEST(DenyLog, FormatsOneLinePerRefusal) {
    EXPECT_EQ(format_refusal(refusal("203.0.113.7")),
              "listener public: refused 203.0.113.7 (not_allowed)");
    Refusal r{"lb", ip::make_address("198.51.100.1"), DenyReason::bad_proxy_header,
              ip::make_address("10.0.0.2"), "PROXY v1: bad port"};
    EXPECT_EQ(
        format_refusal(r),
        "listener lb: refused 198.51.100.1 via 10.0.0.2 (bad_proxy_header: PROXY v1: bad port)");
    // `via` equal to the client says nothing new.
    r.via = r.client;
    r.detail = {};
    r.reason = DenyReason::bad_key;
    EXPECT_EQ(format_refusal(r), "listener lb: refused 198.51.100.1 (bad_key)");
    EXPECT_EQ(format_refusal(refusal("2001:db8::1", DenyReason::deny_list)),
              "listener public: refused 2001:db8::1 (deny_list)");
}

TEST(DenyLog, WritesUpToTheBudgetThenCounts) {
    Fixture f(3);
    int written = 0;
    for (int i = 0; i < 10; ++i) written += f.log.log(refusal("203.0.113.7")) ? 1 : 0;
    EXPECT_EQ(written, 3);
    EXPECT_EQ(f.lines.size(), 3u);
    EXPECT_EQ(f.log.suppressed_total(), 7u);
}

TEST(DenyLog, NextSecondStartsWithTheSummary) {
    Fixture f(2);
    for (int i = 0; i < 5; ++i) f.log.log(refusal("203.0.113.7"));
    f.log.log(refusal("203.0.113.8", DenyReason::bad_key));
    f.log.log(refusal("203.0.113.9", DenyReason::deny_list));
    ASSERT_EQ(f.lines.size(), 2u);

    f.now += kSecond;
    EXPECT_TRUE(f.log.log(refusal("198.51.100.1")));
    ASSERT_EQ(f.lines.size(), 4u);
    EXPECT_EQ(f.lines[2], "5 more refusals suppressed (deny_list: 1, not_allowed: 3, bad_key: 1)");
    EXPECT_EQ(f.lines[3], "listener public: refused 198.51.100.1 (not_allowed)");
    // The new second has its own budget: one more line, then counting again.
    EXPECT_TRUE(f.log.log(refusal("198.51.100.2")));
    EXPECT_FALSE(f.log.log(refusal("198.51.100.3")));
    EXPECT_EQ(f.lines.size(), 5u);
    EXPECT_EQ(f.log.suppressed_total(), 6u);
}

TEST(DenyLog, ASecondWithinTheSameSecondIsTheSameWindow) {
    Fixture f(1);
    f.now = 5 * kSecond;
    EXPECT_TRUE(f.log.log(refusal("203.0.113.7")));
    f.now = 5 * kSecond + kSecond - 1;
    EXPECT_FALSE(f.log.log(refusal("203.0.113.7")));
    f.now = 6 * kSecond;
    EXPECT_TRUE(f.log.log(refusal("203.0.113.7")));
}

TEST(DenyLog, QuietSecondsWriteNoSummary) {
    Fixture f(2);
    f.log.log(refusal("203.0.113.7"));
    f.now += 10 * kSecond;
    f.log.log(refusal("203.0.113.7"));
    EXPECT_EQ(f.lines.size(), 2u);
    EXPECT_EQ(f.log.suppressed_total(), 0u);
}

TEST(DenyLog, OneSuppressedIsSingular) {
    Fixture f(1);
    f.log.log(refusal("203.0.113.7"));
    f.log.log(refusal("203.0.113.7", DenyReason::missing_key));
    f.log.flush();
    ASSERT_EQ(f.lines.size(), 2u);
    EXPECT_EQ(f.lines[1], "1 more refusal suppressed (missing_key: 1)");
}

TEST(DenyLog, FlushWritesThePendingSummaryOnce) {
    Fixture f(1);
    for (int i = 0; i < 4; ++i) f.log.log(refusal("203.0.113.7", DenyReason::bad_proxy_header));
    f.log.flush();
    f.log.flush();
    ASSERT_EQ(f.lines.size(), 2u);
    EXPECT_EQ(f.lines[1], "3 more refusals suppressed (bad_proxy_header: 3)");
    // Nothing pending: the next second starts with the refusal itself.
    f.now += kSecond;
    f.log.log(refusal("203.0.113.7"));
    ASSERT_EQ(f.lines.size(), 3u);
    EXPECT_EQ(f.lines[2], "listener public: refused 203.0.113.7 (not_allowed)");
}

TEST(DenyLog, ZeroBudgetOnlyCounts) {
    Fixture f(0);
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(f.log.log(refusal("203.0.113.7")));
    f.now += kSecond;
    EXPECT_FALSE(f.log.log(refusal("203.0.113.7")));
    EXPECT_TRUE(f.lines.empty());
    f.log.flush();
    EXPECT_EQ(f.lines, std::vector<std::string>{"4 more refusals suppressed (not_allowed: 4)"});
}

TEST(DenyLog, ManyThreadsShareOneBudget) {
    // A scan hitting every worker at once: exactly the budget is written, the
    // rest is counted, nothing is lost.
    std::mutex m;
    std::vector<std::string> lines;
    std::atomic<std::int64_t> now{7 * kSecond};
    DenyLog log(
        [&](std::string_view l) {
            std::lock_guard lock(m);
            lines.emplace_back(l);
        },
        25, [&] { return now.load(); });
    constexpr int kThreads = 4, kEach = 5000;
    std::atomic<int> written{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < kEach; ++i)
                if (log.log(refusal("203.0.113.7"))) ++written;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(written.load(), 25);
    EXPECT_EQ(lines.size(), 25u);
    EXPECT_EQ(log.suppressed_total(), static_cast<std::uint64_t>(kThreads * kEach - 25));
    log.flush();
    EXPECT_EQ(lines.back(), std::to_string(kThreads * kEach - 25) +
                                " more refusals suppressed (not_allowed: " +
                                std::to_string(kThreads * kEach - 25) + ")");
}

TEST(DenyLog, ManyThreadsAcrossSecondsLoseNothing) {
    std::mutex m;
    std::vector<std::string> lines;
    std::atomic<std::int64_t> now{0};
    DenyLog log(
        [&](std::string_view l) {
            std::lock_guard lock(m);
            lines.emplace_back(l);
        },
        5, [&] { return now.fetch_add(kSecond / 1000); });  // 1000 calls per second
    constexpr int kThreads = 4, kEach = 2000;               // 8 seconds
    std::atomic<int> written{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < kEach; ++i)
                if (log.log(refusal("203.0.113.7"))) ++written;
        });
    for (auto& t : threads) t.join();
    log.flush();
    // Every refusal is either a line or in exactly one summary.
    std::uint64_t summarised = 0;
    for (const auto& l : lines) {
        if (l.find("suppressed") == std::string::npos) continue;
        summarised += std::stoull(l);
    }
    EXPECT_EQ(summarised + static_cast<std::uint64_t>(written.load()),
              static_cast<std::uint64_t>(kThreads * kEach));
    // Eight seconds of five lines each.
    EXPECT_LE(written.load(), 5 * 8);
    EXPECT_GE(written.load(), 5 * 7);
}

}  // namespace
