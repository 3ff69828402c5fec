// Command line of deepseek-mock-server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mock {

struct Options {
  std::string listen_host = "127.0.0.1";  // without brackets
  std::uint16_t listen_port = 0;
  std::string id;                          // empty: the bound port
  unsigned threads = 1;
  std::uint32_t tokens = 20;
  std::uint32_t token_delay_ms = 0;
  std::uint32_t first_token_delay_ms = 0;
  unsigned fail_status = 0;                // 0: no failure
  std::int64_t close_after_tokens = -1;    // -1: never
  bool hang = false;
  std::uint32_t idle_close_ms = 0;         // 0: keep idle connections open
  std::uint64_t response_bytes = 0;        // 0: natural size
  bool quiet = false;
  // --models: the models served and listed at GET /v1/models; a completion
  // naming another gets vLLM's 404. Empty: "deepseek-mock" is listed and any
  // model is accepted.
  std::vector<std::string> models;
  // HTTPS on the listen address when both are set (PEM files).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;               // require client certificates signed by it
  // Simulated inference server (README "Prefix cache"): a prefix cache of
  // this many blocks (0: none), its block size in bytes of prompt text, the
  // prefill time per KiB of prompt not found in it, and at most max_batch
  // completions running at once (0: no limit), the others waiting in a FIFO.
  std::uint64_t prefix_cache_blocks = 0;
  std::uint32_t cache_block_bytes = 64;
  std::uint64_t prefill_us_per_kib = 0;
  std::uint64_t max_batch = 0;
};

// Outcome of parsing argv: either options, or a message and an exit code
// (0 for --help, 2 for a bad command line).
struct ParseResult {
  std::optional<Options> options;
  std::string message;
  int exit_code = 0;
};

ParseResult parse_options(int argc, char** argv);

// Parse a decimal unsigned integer that must fit in [lo, hi]; the whole
// string must be digits. Used for flags and for the X-Mock-* headers.
bool parse_uint(std::string_view s, std::uint64_t lo, std::uint64_t hi, std::uint64_t& out);

// Limits shared by the flags and the per-request headers.
inline constexpr std::uint64_t kMaxTokens = 10'000'000;
inline constexpr std::uint64_t kMaxDelayMs = 24ull * 3600 * 1000;
inline constexpr std::uint64_t kMaxResponseBytes = 1ull << 30;
inline constexpr std::uint64_t kMaxCacheBlocks = 1'000'000'000;
inline constexpr std::uint64_t kMaxCacheBlockBytes = 65536;
inline constexpr std::uint64_t kMaxPrefillUsPerKib = 10'000'000;
inline constexpr std::uint64_t kMaxBatch = 1'000'000;

}  // namespace mock
