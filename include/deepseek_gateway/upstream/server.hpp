#pragma once
// One inference server of an upstream pool: its address and the little shared
// state every worker thread reads and updates with atomics (in-flight count
// and its cap, health, passive-ejection backoff, slow-start ramp). Nothing
// on the request path takes a lock (the model list, read only to answer
// GET /v1/models, is an atomic shared_ptr).

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dsgw::upstream {

using Clock = std::chrono::steady_clock;

class UpstreamServer {
public:
    UpstreamServer(std::string name, boost::asio::ip::tcp::endpoint endpoint, unsigned weight);
    // `authority`: the configured "host:port" when it differs from the name
    // (a host name: "gpu.lan:8000" for the server named "gpu.lan:8000/10.0.0.5").
    UpstreamServer(std::string name, boost::asio::ip::tcp::endpoint endpoint, unsigned weight,
                   std::string authority);

    // "10.0.0.5:8000", or "gpu.lan:8000/10.0.0.5" for one address of a host
    // name (config/servers.hpp): in logs and metric labels.
    const std::string& name() const { return name_; }
    // "host:port" as configured: the Host header when the client sent none,
    // and (its host) the TLS server name.
    const std::string& authority() const { return authority_; }
    const boost::asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }
    unsigned weight() const { return weight_; }

    std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

    // Per-server concurrency cap, exact across workers; 0 = unlimited. Set
    // from the configuration (again on reload).
    void set_max_in_flight(unsigned cap) { cap_.store(cap, std::memory_order_relaxed); }
    unsigned max_in_flight() const { return cap_.load(std::memory_order_relaxed); }
    bool has_capacity() const {
        const auto cap = cap_.load(std::memory_order_relaxed);
        return cap == 0 || in_flight() < static_cast<std::int64_t>(cap);
    }

    // Usable = healthy (active checks) and not ejected (passive failures).
    // Balancers skip servers that are not usable or have no capacity left.
    bool usable(Clock::time_point now = Clock::now()) const;
    bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
    // Returns true when the state changed.
    bool set_healthy(bool h) { return healthy_.exchange(h, std::memory_order_relaxed) != h; }
    bool ejected(Clock::time_point now = Clock::now()) const;

    // Passive ejection: connect failures, resets before the first byte and
    // first-byte timeouts count against a server. After `threshold`
    // consecutive ones it is ejected for a backoff that doubles with each
    // further failure (1s, 2s, 4s ... 30s); when the backoff has passed it
    // gets requests again, and one more failure ejects it again at once. A
    // success resets the count. Returns true when this failure ejected it.
    bool on_failure(Clock::time_point now = Clock::now(), unsigned threshold = 1);
    void on_success();
    // Issue 2's names, kept for the connect path: a threshold of 1.
    void on_connect_failure(Clock::time_point now = Clock::now()) { on_failure(now, 1); }
    void on_connect_success() { on_success(); }

    // Slow start (upstreams[].slow_start): a server that comes back after an
    // ejection is cold (empty caches, model pages swapped out), so its share
    // of the requests ramps linearly from ~0 to its full weight over
    // `span`. A ramp begins when the health checks re-admit the server
    // (begin_slow_start(), from the checker) and when a passive ejection
    // ends (on_failure() schedules it at the end of the backoff). Servers at
    // start, and servers added by a reload, take their full share at once.
    // 0 = off. Set from the configuration (again on reload).
    void set_slow_start(std::chrono::nanoseconds span) {
        slow_start_ns_.store(span.count(), std::memory_order_relaxed);
    }
    std::chrono::nanoseconds slow_start() const {
        return std::chrono::nanoseconds(slow_start_ns_.load(std::memory_order_relaxed));
    }
    void begin_slow_start(Clock::time_point from);
    // The fraction of its weight the server takes at `now`: 1 outside a
    // ramp, else the elapsed fraction of the ramp, never below
    // kMinWeightFactor (so a server alone in its pool is still used).
    double weight_factor(Clock::time_point now) const;
    static constexpr double kMinWeightFactor = 0.01;

    // For a warning that must not flood the log (a server that breaks the
    // protocol on every response): true at most once per `every`, across
    // workers.
    bool may_warn(Clock::time_point now, std::chrono::nanoseconds every) {
        const auto t = now.time_since_epoch().count();
        auto last = last_warning_ns_.load(std::memory_order_relaxed);
        if (last != kNever && t - last < every.count()) return false;
        return last_warning_ns_.compare_exchange_strong(last, t, std::memory_order_relaxed);
    }

    // The model ids this server lists at its own GET /v1/models (SPEC §8):
    // its last good answer to the ModelLister (upstream/models.hpp); null
    // until one came. Kept across a reload with the server.
    std::shared_ptr<const std::vector<std::string>> listed_models() const {
        return listed_models_.load(std::memory_order_acquire);
    }
    void set_listed_models(std::shared_ptr<const std::vector<std::string>> ids) {
        listed_models_.store(std::move(ids), std::memory_order_release);
    }

    // The server's own view of its load (upstreams[].load_metrics, SPEC §9):
    // the last good scrape of its Prometheus endpoint, by the LoadScraper
    // (upstream/load_scraper.hpp). Counts above 16,777,215 are clamped.
    struct ScrapedLoad {
        std::uint32_t running = 0;  // requests it is running (vllm:num_requests_running)
        std::uint32_t waiting = 0;  // requests in its own queue
        double kv_usage = 0;        // KV-cache use, 0-1
    };
    void set_scraped_load(const ScrapedLoad& l, Clock::time_point at);
    // The last scrape, or nothing when none came or it is older than
    // stale_after (then the load is the in-flight count alone).
    std::optional<ScrapedLoad> scraped_load(Clock::time_point now) const;
    // Set from the configuration (again on reload): 0 = scrapes are not used.
    void set_load_stale_after(std::chrono::nanoseconds d) {
        load_stale_ns_.store(d.count(), std::memory_order_relaxed);
    }
    // The load prefix_affinity bounds and upstream_server_load shows: the
    // in-flight count; with a fresh scrape, the larger of that and the
    // server's running count, plus its queue, times (1 + KV-cache use), so
    // a server whose cache is full counts double.
    double load(Clock::time_point now) const;

private:
    friend class ServerLease;
    std::string name_;
    std::string authority_;
    boost::asio::ip::tcp::endpoint endpoint_;
    unsigned weight_;
    std::atomic<std::int64_t> in_flight_{0};
    std::atomic<unsigned> cap_{0};
    std::atomic<bool> healthy_{true};
    std::atomic<std::int64_t> blocked_until_ns_{0};
    std::atomic<std::uint32_t> consecutive_failures_{0};
    static constexpr std::int64_t kNoRamp = std::numeric_limits<std::int64_t>::min();
    std::atomic<std::int64_t> slow_start_ns_{0};
    std::atomic<std::int64_t> ramp_start_ns_{kNoRamp};
    static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::min();
    std::atomic<std::int64_t> last_warning_ns_{kNever};
    std::atomic<std::shared_ptr<const std::vector<std::string>>> listed_models_;
    // ScrapedLoad packed (running 24 bits, waiting 24, kv_usage 16 in
    // 1/65535) so a reader sees one scrape, not parts of two.
    std::atomic<std::uint64_t> scraped_{0};
    std::atomic<std::int64_t> scraped_at_ns_{kNever};
    std::atomic<std::int64_t> load_stale_ns_{0};
};

// Told when a server's in-flight slot frees, so a queued request can take it
// (the upstream's admission queue).
class SlotListener {
public:
    virtual ~SlotListener() = default;
    virtual void on_slot_freed(UpstreamServer* server) = 0;
};

// Holds one in-flight slot on a server; the destructor gives it back, so a
// cancelled or failed request can never leak a count.
class ServerLease {
public:
    ServerLease() = default;
    // Takes a slot whatever the cap (for servers without one, and for tests).
    explicit ServerLease(UpstreamServer* s) : server_(s) {
        if (server_) server_->in_flight_.fetch_add(1, std::memory_order_relaxed);
    }
    // Takes a slot only below the server's cap; an empty lease otherwise.
    static ServerLease try_acquire(UpstreamServer* s, SlotListener* listener = nullptr) {
        ServerLease lease;
        if (!s) return lease;
        const auto cap = static_cast<std::int64_t>(s->max_in_flight());
        auto cur = s->in_flight_.load(std::memory_order_relaxed);
        do {
            if (cap != 0 && cur >= cap) return lease;
        } while (!s->in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel));
        lease.server_ = s;
        lease.listener_ = listener;
        return lease;
    }
    ServerLease(ServerLease&& o) noexcept : server_(o.server_), listener_(o.listener_) {
        o.server_ = nullptr;
    }
    ServerLease& operator=(ServerLease&& o) noexcept {
        if (this != &o) {
            release();
            server_ = o.server_;
            listener_ = o.listener_;
            o.server_ = nullptr;
        }
        return *this;
    }
    ServerLease(const ServerLease&) = delete;
    ServerLease& operator=(const ServerLease&) = delete;
    ~ServerLease() { release(); }

    UpstreamServer* get() const { return server_; }
    UpstreamServer* operator->() const { return server_; }
    explicit operator bool() const { return server_ != nullptr; }
    void release() {
        if (!server_) return;
        auto* s = server_;
        server_ = nullptr;
        s->in_flight_.fetch_sub(1, std::memory_order_acq_rel);
        if (listener_) listener_->on_slot_freed(s);
    }

private:
    UpstreamServer* server_ = nullptr;
    SlotListener* listener_ = nullptr;
};

}  // namespace dsgw::upstream
