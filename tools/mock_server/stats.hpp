// Counters exposed on GET /mock/stats. Shared by every event-loop thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mock {

class Stats {
 public:
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> completions{0};
  std::atomic<std::uint64_t> streams_started{0};
  std::atomic<std::uint64_t> streams_completed{0};
  std::atomic<std::uint64_t> streams_cancelled{0};
  std::atomic<std::uint64_t> last_peer_close_ns{0};
  // HTTPS only: completed handshakes, failed ones, and resumed sessions.
  std::atomic<std::uint64_t> tls_handshakes{0};
  std::atomic<std::uint64_t> tls_handshake_errors{0};
  std::atomic<std::uint64_t> tls_sessions_reused{0};
  // --prefix-cache-blocks: prompt text looked up in the cache and found
  // there, in bytes (/mock/stats) and in tokens (/metrics).
  std::atomic<std::uint64_t> prefix_cache_query_bytes{0};
  std::atomic<std::uint64_t> prefix_cache_hit_bytes{0};
  std::atomic<std::uint64_t> prefix_cache_query_tokens{0};
  std::atomic<std::uint64_t> prefix_cache_hit_tokens{0};
  // --max-batch: completions that had to wait in the queue, and the longest
  // the queue has been.
  std::atomic<std::uint64_t> requests_queued{0};
  std::atomic<std::uint64_t> max_queue_length{0};

  void note_queue_length(std::uint64_t now) {
    auto high = max_queue_length.load(std::memory_order_relaxed);
    while (now > high &&
           !max_queue_length.compare_exchange_weak(high, now, std::memory_order_relaxed)) {
    }
  }

  void begin_request() {
    requests.fetch_add(1, std::memory_order_relaxed);
    auto now = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
    auto high = max_in_flight_.load(std::memory_order_relaxed);
    while (now > high &&
           !max_in_flight_.compare_exchange_weak(high, now, std::memory_order_relaxed)) {
    }
  }
  void end_request() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  // The client went away while its response was being produced.
  void record_peer_close();

  void record_request_id(std::string_view id);

  // The "model" of the last completion request whose body was valid JSON:
  // the raw contents of its JSON string, escapes kept; `given` false when it
  // had none (shown as null).
  void record_model(std::string_view raw, bool given);

  // max_queue_length restarts from the queue's current length.
  void reset(std::uint64_t queue_length);
  std::string to_json(std::string_view server_id);

 private:
  std::atomic<std::uint64_t> in_flight_{0};
  std::atomic<std::uint64_t> max_in_flight_{0};
  std::mutex ids_mutex_;
  std::vector<std::string> request_ids_;
  std::uint64_t request_ids_dropped_ = 0;
  std::mutex model_mutex_;
  bool last_model_given_ = false;
  std::string last_model_;
};

// RAII: a request counted in in_flight until release() (called just before the
// last byte of the response is written) or destruction.
class InFlight {
 public:
  InFlight() = default;
  explicit InFlight(Stats& s) : stats_(&s) { s.begin_request(); }
  InFlight(InFlight&& o) noexcept : stats_(o.stats_) { o.stats_ = nullptr; }
  InFlight& operator=(InFlight&& o) noexcept {
    if (this != &o) {
      release();
      stats_ = o.stats_;
      o.stats_ = nullptr;
    }
    return *this;
  }
  ~InFlight() { release(); }
  void release() {
    if (stats_) stats_->end_request();
    stats_ = nullptr;
  }

 private:
  Stats* stats_ = nullptr;
};

}  // namespace mock
