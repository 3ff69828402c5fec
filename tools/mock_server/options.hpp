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

}  // namespace mock
