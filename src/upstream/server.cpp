#include "deepseek_gateway/upstream/server.hpp"

#include <algorithm>
#include <utility>

namespace dsgw::upstream {

namespace {

// 1s, 2s, 4s ... capped: 2^5 s = 32 s is already past the cap, so the shift
// never needs more than five bits whatever the failure count.
constexpr std::chrono::nanoseconds kFirstBackoff = std::chrono::seconds(1);
constexpr std::chrono::nanoseconds kMaxBackoff = std::chrono::seconds(30);

std::int64_t ticks(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::chrono::nanoseconds backoff_for(std::uint32_t failures) {
    auto shift = std::min<std::uint32_t>(failures - 1, 5);
    return std::min(kFirstBackoff * (1 << shift), kMaxBackoff);
}

}  // namespace

// A weight of 0 would make a server unreachable by round_robin and ip_hash and
// divide-by-zero-like in least_conn; configuration rejects it, this is a guard.
UpstreamServer::UpstreamServer(std::string name, boost::asio::ip::tcp::endpoint endpoint,
                               unsigned weight)
    : UpstreamServer(name, endpoint, weight, name) {}

UpstreamServer::UpstreamServer(std::string name, boost::asio::ip::tcp::endpoint endpoint,
                               unsigned weight, std::string authority)
    : name_(std::move(name)),
      authority_(std::move(authority)),
      endpoint_(endpoint),
      weight_(std::max(weight, 1u)) {}

bool UpstreamServer::ejected(Clock::time_point now) const {
    return ticks(now) < blocked_until_ns_.load(std::memory_order_relaxed);
}

bool UpstreamServer::usable(Clock::time_point now) const {
    return healthy() && !ejected(now);
}

bool UpstreamServer::on_failure(Clock::time_point now, unsigned threshold) {
    // Requests that were already under way when the server got ejected fail
    // too; they say nothing new, so they do not lengthen the backoff. Only a
    // failure seen after the ejection has expired counts as the next one.
    if (ejected(now)) return false;
    auto failures = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (threshold == 0) threshold = 1;
    if (failures < threshold) return false;
    auto until = ticks(now + backoff_for(failures - threshold + 1));
    // Two workers failing at once: keep the later deadline (for the ramp
    // too, which begins when the server may take requests again).
    for (auto* deadline : {&blocked_until_ns_, &ramp_start_ns_}) {
        auto cur = deadline->load(std::memory_order_relaxed);
        while (cur < until &&
               !deadline->compare_exchange_weak(cur, until, std::memory_order_relaxed)) {
        }
    }
    return true;
}

void UpstreamServer::on_success() {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    blocked_until_ns_.store(0, std::memory_order_relaxed);
}

// Unconditional: re-admission by the checks may come before the end of a
// passive backoff that on_failure() scheduled a ramp for.
void UpstreamServer::begin_slow_start(Clock::time_point from) {
    ramp_start_ns_.store(ticks(from), std::memory_order_relaxed);
}

double UpstreamServer::weight_factor(Clock::time_point now) const {
    const auto span = slow_start_ns_.load(std::memory_order_relaxed);
    if (span <= 0) return 1.0;
    const auto start = ramp_start_ns_.load(std::memory_order_relaxed);
    if (start == kNoRamp) return 1.0;
    const auto elapsed = ticks(now) - start;
    if (elapsed >= span) return 1.0;
    if (elapsed <= 0) return kMinWeightFactor;
    return std::max(kMinWeightFactor, static_cast<double>(elapsed) / static_cast<double>(span));
}

}  // namespace dsgw::upstream

namespace dsgw::upstream {

namespace {
constexpr std::uint64_t kCountMax = (1u << 24) - 1;
}  // namespace

void UpstreamServer::set_scraped_load(const ScrapedLoad& l, Clock::time_point at) {
    const std::uint64_t running = std::min<std::uint64_t>(l.running, kCountMax);
    const std::uint64_t waiting = std::min<std::uint64_t>(l.waiting, kCountMax);
    const double kv = std::clamp(l.kv_usage, 0.0, 1.0);
    const auto kv_fixed = static_cast<std::uint64_t>(kv * 65535.0 + 0.5);
    scraped_.store(running << 40 | waiting << 16 | kv_fixed, std::memory_order_relaxed);
    scraped_at_ns_.store(ticks(at), std::memory_order_release);
}

std::optional<UpstreamServer::ScrapedLoad> UpstreamServer::scraped_load(Clock::time_point now) const {
    const auto stale = load_stale_ns_.load(std::memory_order_relaxed);
    if (stale <= 0) return std::nullopt;
    const auto at = scraped_at_ns_.load(std::memory_order_acquire);
    if (at == kNever || ticks(now) - at > stale) return std::nullopt;
    const auto v = scraped_.load(std::memory_order_relaxed);
    ScrapedLoad l;
    l.running = static_cast<std::uint32_t>(v >> 40);
    l.waiting = static_cast<std::uint32_t>((v >> 16) & kCountMax);
    l.kv_usage = static_cast<double>(v & 0xFFFF) / 65535.0;
    return l;
}

double UpstreamServer::load(Clock::time_point now) const {
    const auto flight = static_cast<double>(std::max<std::int64_t>(in_flight(), 0));
    const auto s = scraped_load(now);
    if (!s) return flight;
    return (std::max(flight, static_cast<double>(s->running)) + s->waiting) * (1.0 + s->kv_usage);
}

}  // namespace dsgw::upstream
