// util::DelayQueue: entries run once, never before their delay, not at all
// once removed or destroyed, and the queue's timer stops when it is empty.

#include "deepseek_gateway/util/delay_queue.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

namespace dsgw::util {
namespace {

using namespace std::chrono_literals;
using Clock = DelayQueue::Clock;

struct Probe final : DelayQueue::Entry {
    std::vector<Clock::time_point> runs;
    std::function<void()> then;
    void on_due() override {
        runs.push_back(Clock::now());
        if (then) then();
    }
};

TEST(DelayQueue, AnEntryRunsOnceAfterItsDelayAndTheLoopThenEnds) {
    boost::asio::io_context io;
    DelayQueue q(io, 5ms);
    Probe a, b;
    const auto pushed = Clock::now();
    q.push(a);
    q.push(b);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_TRUE(a.queued());
    io.run();  // returns only when the queue stopped ticking
    ASSERT_EQ(a.runs.size(), 1u);
    ASSERT_EQ(b.runs.size(), 1u);
    EXPECT_GE(a.runs[0] - pushed, 5ms);
    EXPECT_FALSE(a.queued());
    EXPECT_EQ(q.size(), 0u);
}

TEST(DelayQueue, RemovedAndDestroyedEntriesNeverRun) {
    boost::asio::io_context io;
    DelayQueue q(io, 2ms);
    Probe kept, removed;
    std::optional<Probe> destroyed;
    destroyed.emplace();
    q.push(removed);
    q.push(*destroyed);
    q.push(kept);
    q.remove(removed);
    destroyed.reset();  // unlinks itself
    EXPECT_EQ(q.size(), 1u);
    io.run();
    EXPECT_TRUE(removed.runs.empty());
    EXPECT_EQ(kept.runs.size(), 1u);
    q.remove(removed);  // not queued: nothing happens
    EXPECT_EQ(q.size(), 0u);
}

TEST(DelayQueue, AnEntryPushedLaterWaitsItsOwnDelay) {
    boost::asio::io_context io;
    DelayQueue q(io, 20ms);
    Probe early, late;
    q.push(early);
    boost::asio::steady_timer t(io, 15ms);
    Clock::time_point late_pushed;
    t.async_wait([&](boost::system::error_code) {
        late_pushed = Clock::now();
        q.push(late);
    });
    io.run();
    ASSERT_EQ(early.runs.size(), 1u);
    ASSERT_EQ(late.runs.size(), 1u);
    EXPECT_GE(late.runs[0] - late_pushed, 20ms);
    EXPECT_LE(early.runs[0], late.runs[0]);
}

TEST(DelayQueue, PushingAgainRestartsTheWaitAndOnDueMayPush) {
    boost::asio::io_context io;
    DelayQueue q(io, 3ms);
    Probe a, b;
    int again = 2;
    a.then = [&] {
        if (again-- > 0) q.push(a);  // a watch that re-arms itself
    };
    q.push(a);
    q.push(b);
    q.push(b);  // moved to the back, still one entry
    EXPECT_EQ(q.size(), 2u);
    io.run();
    EXPECT_EQ(a.runs.size(), 3u);
    EXPECT_EQ(b.runs.size(), 1u);
    for (std::size_t i = 1; i < a.runs.size(); ++i) EXPECT_GE(a.runs[i] - a.runs[i - 1], 3ms);
}

TEST(DelayQueue, ClearUnlinksWithoutRunning) {
    boost::asio::io_context io;
    DelayQueue q(io, 1ms);
    Probe a;
    q.push(a);
    q.clear();
    EXPECT_FALSE(a.queued());
    io.run();
    EXPECT_TRUE(a.runs.empty());
}

}  // namespace
}  // namespace dsgw::util
