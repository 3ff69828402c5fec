#pragma once
// The canonical prompt of a request (SPEC §9), cut into blocks and hashed, for
// prefix_affinity. The canonical prompt is the raw JSON text of the body's
// values, as sent: with "messages", the "tools" value (if any) and a newline,
// then for each message its "role" value, its "content" value and a newline;
// without "messages", the "prompt" value. The same conversation resent by
// the same client is the same bytes; the hash covers what a server's prefix
// cache keys on (the templated prompt), not fields such as "temperature".
//
// Block i's hash is XXH3-64 of the 16 bytes (block i-1's hash, XXH3-64 of
// block i's bytes), both little-endian, with 0 before the first block: it
// stands for the whole prefix up to block i. The last block may be short.
// XXH3's output is frozen, so every build and every gateway replica computes
// the same hashes.

#include "deepseek_gateway/llm/model_scan.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace dsgw::llm {

// One piece of the body's text as it lies in memory, in order.
struct BodyPiece {
    const char* data;
    std::size_t size;
};

// The block hashes of the canonical prompt of the body `scan` read (a
// finish() that returned true, with capture_prompt()), whose text is
// `body`. At most `max_blocks` (the prompt's further bytes are not hashed).
// False, with `out` empty, when the body has no prompt.
bool prompt_blocks(const ModelScan& scan, std::span<const BodyPiece> body, std::size_t block_bytes,
                   std::size_t max_blocks, std::vector<std::uint64_t>& out);

// The block hashes of a canonical prompt given whole (tests, benchmarks).
void hash_blocks(std::span<const char> text, std::size_t block_bytes, std::size_t max_blocks,
                 std::vector<std::uint64_t>& out);

}  // namespace dsgw::llm
