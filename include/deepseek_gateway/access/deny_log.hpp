#pragma once
// Log lines for refused clients, at a rate a port scan cannot turn into a log
// flood: at most N lines per second; the refusals beyond that are counted and
// reported as one line, "N more refusals suppressed (not_allowed: N, ...)",
// before the next line written (or at flush()). The access_denied_total
// metric still counts every refusal; only the log is thinned.
//
// Thread-safe without a lock (a window counter and per-reason counters are
// atomics), so one DenyLog can serve every worker and every listener. The
// clock is injectable for tests.

#include "deepseek_gateway/access/policy.hpp"

#include <boost/asio/ip/address.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace dsgw::access {

struct Refusal {
    std::string_view listener;
    boost::asio::ip::address client;  // the address judged
    DenyReason reason = DenyReason::not_allowed;
    // The socket peer, when the client address came from it (PROXY header or
    // X-Forwarded-For) and differs from `client`.
    std::optional<boost::asio::ip::address> via;
    std::string_view detail;  // e.g. the PROXY parser's error; never a key
};

// "listener public: refused 203.0.113.7 via 10.0.0.2 (bad_proxy_header: PROXY v1: bad port)".
std::string format_refusal(const Refusal& r);

class DenyLog {
public:
    using Sink = std::function<void(std::string_view line)>;  // called from any thread
    using Clock = std::function<std::int64_t()>;              // monotonic nanoseconds

    static std::int64_t steady_nanoseconds();

    explicit DenyLog(Sink sink, unsigned lines_per_second = 10, Clock clock = &steady_nanoseconds);

    DenyLog(const DenyLog&) = delete;
    DenyLog& operator=(const DenyLog&) = delete;

    // Writes the line for `r` unless this second's budget is spent; then the
    // refusal is only counted. Returns true when the line was written.
    bool log(const Refusal& r);

    // Writes the summary of the refusals suppressed so far, if any. Call it
    // from a periodic timer (once a second) so that a burst's summary appears
    // when the burst ends, not only before the next refusal line.
    void flush();

    // Refusals suppressed since construction (summarised or still pending).
    std::uint64_t suppressed_total() const {
        return suppressed_total_.load(std::memory_order_relaxed);
    }

private:
    void write_summary();

    Sink sink_;
    Clock clock_;
    std::uint64_t per_second_;
    // The current second (high bits) and the lines written in it (low bits).
    std::atomic<std::uint64_t> window_{0};
    std::array<std::atomic<std::uint64_t>, kDenyReasonCount> pending_{};
    std::atomic<std::uint64_t> suppressed_total_{0};
};

}  // namespace dsgw::access
