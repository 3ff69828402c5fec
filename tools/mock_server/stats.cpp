#include "stats.hpp"

#include <chrono>

#include "json_util.hpp"

namespace mock {

namespace {
// Bound the memory a long benchmark can pin through X-Request-Id.
constexpr std::size_t kMaxRequestIds = 1'000'000;
}  // namespace

void Stats::record_peer_close() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now().time_since_epoch())
                .count();
  last_peer_close_ns.store(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  streams_cancelled.fetch_add(1, std::memory_order_relaxed);
}

void Stats::record_request_id(std::string_view id) {
  std::lock_guard lock(ids_mutex_);
  if (request_ids_.size() < kMaxRequestIds) {
    request_ids_.emplace_back(id);
  } else {
    ++request_ids_dropped_;
  }
}

void Stats::record_model(std::string_view raw, bool given) {
  std::lock_guard lock(model_mutex_);
  last_model_given_ = given;
  last_model_.assign(raw);
}

void Stats::reset(std::uint64_t queue_length) {
  connections_accepted.store(0);
  requests.store(0);
  completions.store(0);
  streams_started.store(0);
  streams_completed.store(0);
  streams_cancelled.store(0);
  last_peer_close_ns.store(0);
  tls_handshakes.store(0);
  tls_handshake_errors.store(0);
  tls_sessions_reused.store(0);
  prefix_cache_query_bytes.store(0);
  prefix_cache_hit_bytes.store(0);
  prefix_cache_query_tokens.store(0);
  prefix_cache_hit_tokens.store(0);
  requests_queued.store(0);
  max_queue_length.store(queue_length);
  // in_flight is a gauge, like connections_open: it is not reset; the
  // high-water mark restarts from the current value.
  max_in_flight_.store(in_flight_.load());
  {
    std::lock_guard lock(model_mutex_);
    last_model_given_ = false;
    last_model_.clear();
  }
  std::lock_guard lock(ids_mutex_);
  request_ids_.clear();
  request_ids_.shrink_to_fit();
  request_ids_dropped_ = 0;
}

std::string Stats::to_json(std::string_view server_id) {
  std::string out;
  out.reserve(512);
  out += "{\"id\":\"";
  append_json_escaped(out, server_id);
  auto field = [&](std::string_view name, std::uint64_t v) {
    out += ",\"";
    out += name;
    out += "\":";
    append_uint(out, v);
  };
  out += '"';
  field("connections_accepted", connections_accepted.load());
  field("connections_open", connections_open.load());
  field("requests", requests.load());
  field("in_flight", in_flight_.load());
  field("max_in_flight", max_in_flight_.load());
  field("completions", completions.load());
  field("streams_started", streams_started.load());
  field("streams_completed", streams_completed.load());
  field("streams_cancelled", streams_cancelled.load());
  field("last_peer_close_ns", last_peer_close_ns.load());
  field("tls_handshakes", tls_handshakes.load());
  field("tls_handshake_errors", tls_handshake_errors.load());
  field("tls_sessions_reused", tls_sessions_reused.load());
  field("prefix_cache_query_bytes", prefix_cache_query_bytes.load());
  field("prefix_cache_hit_bytes", prefix_cache_hit_bytes.load());
  field("requests_queued", requests_queued.load());
  field("max_queue_length", max_queue_length.load());
  {
    std::lock_guard lock(model_mutex_);
    out += ",\"last_model\":";
    if (last_model_given_) {
      // Raw JSON string contents from a body the scanner accepted: already
      // valid inside quotes.
      out += '"';
      out += last_model_;
      out += '"';
    } else {
      out += "null";
    }
  }
  std::lock_guard lock(ids_mutex_);
  field("request_ids_dropped", request_ids_dropped_);
  out += ",\"request_ids\":[";
  bool first = true;
  for (const auto& id : request_ids_) {
    if (!first) out += ',';
    first = false;
    out += '"';
    append_json_escaped(out, id);
    out += '"';
  }
  out += "]}";
  return out;
}

}  // namespace mock
