// Small JSON helpers: escaping, a top-level request scanner, number output.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace mock {

// Append s as the contents of a JSON string (no surrounding quotes). Bytes
// >= 0x80 are written as \u00XX (Latin-1), so the output is always valid
// ASCII JSON and the original bytes are recoverable.
void append_json_escaped(std::string& out, std::string_view s);

inline void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

inline void append_hex(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  out.append(buf, r.ptr);
}

// What the mock needs from a completion request body.
struct CompletionFields {
  bool stream = false;
  // Raw (still escaped) contents of the "model" string, or empty.
  std::string_view model;
  bool model_given = false;  // a string "model" was present (maybe empty)
  bool include_usage = false;  // "stream_options":{"include_usage":true}
};

// Decode the raw contents of a JSON string (as CompletionFields::model holds
// them) into UTF-8. Returns false on a bad escape.
bool json_unescape(std::string_view raw, std::string& out);

// Scan the top level of a JSON object. Returns false on malformed input.
// An empty (or all-whitespace) body is accepted and yields the defaults.
bool scan_completion_request(std::string_view body, CompletionFields& out);

// FNV-1a 64-bit.
inline constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline std::uint64_t fnv1a64(std::uint64_t h, const unsigned char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace mock
