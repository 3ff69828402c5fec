#include "deepseek_gateway/access/deny_log.hpp"

#include <algorithm>
#include <chrono>

namespace dsgw::access {

namespace {

constexpr unsigned kCountBits = 20;
constexpr std::uint64_t kCountMask = (std::uint64_t{1} << kCountBits) - 1;

}  // namespace

std::string format_refusal(const Refusal& r) {
    std::string line = "listener ";
    line.append(r.listener);
    line += ": refused ";
    line += r.client.to_string();
    if (r.via && *r.via != r.client) {
        line += " via ";
        line += r.via->to_string();
    }
    line += " (";
    line += to_string(r.reason);
    if (!r.detail.empty()) {
        line += ": ";
        line.append(r.detail);
    }
    line += ")";
    return line;
}

std::int64_t DenyLog::steady_nanoseconds() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

DenyLog::DenyLog(Sink sink, unsigned lines_per_second, Clock clock)
    : sink_(std::move(sink)),
      clock_(std::move(clock)),
      per_second_(std::min<std::uint64_t>(lines_per_second, kCountMask)) {}

bool DenyLog::log(const Refusal& r) {
    const auto now =
        static_cast<std::uint64_t>(std::max<std::int64_t>(clock_(), 0)) / 1'000'000'000;
    std::uint64_t w = window_.load(std::memory_order_relaxed);
    for (;;) {
        const std::uint64_t second = w >> kCountBits, written = w & kCountMask;
        // A clock read that lost a race with a newer one counts in the
        // newer second: the window never moves back.
        if (now > second) {
            // The first refusal of a new second opens it, and reports what
            // the seconds before suppressed.
            if (!window_.compare_exchange_weak(w, (now << kCountBits) | (per_second_ ? 1 : 0),
                                               std::memory_order_relaxed))
                continue;
            if (per_second_ == 0) break;
            write_summary();
            sink_(format_refusal(r));
            return true;
        }
        if (written >= per_second_) break;
        if (window_.compare_exchange_weak(w, w + 1, std::memory_order_relaxed)) {
            sink_(format_refusal(r));
            return true;
        }
    }
    pending_[static_cast<std::size_t>(r.reason)].fetch_add(1, std::memory_order_relaxed);
    suppressed_total_.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void DenyLog::flush() {
    write_summary();
}

void DenyLog::write_summary() {
    std::array<std::uint64_t, kDenyReasonCount> counts{};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        counts[i] = pending_[i].exchange(0, std::memory_order_relaxed);
        total += counts[i];
    }
    if (total == 0) return;
    std::string line =
        std::to_string(total) + (total == 1 ? " more refusal" : " more refusals") + " suppressed (";
    bool first = true;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] == 0) continue;
        if (!first) line += ", ";
        first = false;
        line += to_string(static_cast<DenyReason>(i));
        line += ": ";
        line += std::to_string(counts[i]);
    }
    line += ")";
    sink_(line);
}

}  // namespace dsgw::access
