// The simulated prefix cache (--prefix-cache-blocks): which blocks of prompt
// text an inference server would still hold in its KV cache. See README.md,
// "Prefix cache".
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mock {

// The prompt text of a completion request body, what the cache sees:
// /v1/chat/completions: "tools" (serialized) when present, then each
// message's role and content (a string as is, an array of parts: their
// "text"s, anything else serialized); /v1/completions: "prompt" (a string
// as is, anything else serialized). Empty when the body is not a JSON object.
void prompt_text(std::string_view body, bool chat, std::string& out);

// An LRU of block keys, shared by every thread (one mutex). A prompt is cut
// into full blocks of block_bytes (a trailing partial block is never
// cached); block i's key is a hash of its bytes chained with block i-1's
// key, so a key stands for the whole prefix up to the end of its block.
class PrefixCache {
 public:
  PrefixCache(std::uint64_t capacity_blocks, std::uint32_t block_bytes);

  bool enabled() const { return capacity_ > 0; }
  std::uint32_t block_bytes() const { return block_bytes_; }

  // Looks the prompt up: the bytes of its longest run of leading blocks
  // found in the cache. Then every full block of it is inserted or touched,
  // its first block the most recent, so the ends of prompts are evicted
  // before their beginnings (as vLLM frees a request's blocks).
  std::uint64_t lookup_and_insert(std::string_view prompt);

  void clear();
  std::uint64_t size();

 private:
  using Lru = std::list<std::uint64_t>;  // front: most recently used

  const std::uint64_t capacity_;
  const std::uint32_t block_bytes_;
  std::mutex mu_;
  Lru lru_;
  std::unordered_map<std::uint64_t, Lru::iterator> index_;
  std::vector<std::uint64_t> keys_;  // scratch, under mu_
};

}  // namespace mock
