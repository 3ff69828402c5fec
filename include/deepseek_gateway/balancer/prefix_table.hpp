#pragma once
// What prefix_affinity remembers for one upstream (SPEC §9): for each prompt
// block hash it has seen, the server that last served it.
//
// A set-associative cache, like a CPU's: a hash has one bucket of 8 entries
// (one cache line), and a bucket that is full forgets its least recently used
// entry. Each entry is one 64-bit word (32 bits of the hash, the server, a
// coarse time stamp) read and written with relaxed atomics: no lock, so the
// workers never wait on each other. Two workers writing one bucket at once may
// lose one of the two writes: the table is a hint, and a lost entry only
// costs a server's cache one request.

#include "deepseek_gateway/upstream/server.hpp"

#include <atomic>
#include <cstdint>

namespace dsgw::balancer {

class PrefixTable {
public:
    // The largest server number an entry holds: servers past it (by index
    // in their upstream) are never remembered.
    static constexpr unsigned kMaxServers = 4095;

    // Room for `entries` hashes, rounded up to a power of two (at least 8).
    explicit PrefixTable(std::uint64_t entries);
    ~PrefixTable();
    PrefixTable(const PrefixTable&) = delete;
    PrefixTable& operator=(const PrefixTable&) = delete;

    std::uint64_t capacity() const { return (mask_ + 1) * kWays; }

    // The server (its index + 1) that last served `block`; 0 when unknown.
    unsigned find(std::uint64_t block) const;
    // Starts loading the bucket of `block` (the lookups and writes of one
    // prompt's blocks then overlap instead of waiting for memory one by one).
    void prefetch(std::uint64_t block) const { __builtin_prefetch(&buckets_[block & mask_]); }
    // Remembers that `server` (index + 1, 1..kMaxServers) served `block`,
    // at `stamp` (stamp_of()). Writes nothing when the entry already says so.
    void remember(std::uint64_t block, unsigned server, std::uint32_t stamp);

    // The time stamp of `now`: units of ~16.8 ms, 20 bits (wraps after ~4.9
    // hours; an entry older than that may look recent, which only delays its
    // eviction).
    static std::uint32_t stamp_of(upstream::Clock::time_point now);

private:
    static constexpr unsigned kWays = 8;
    struct alignas(64) Bucket {
        std::atomic<std::uint64_t> way[kWays];
    };
    Bucket* buckets_;  // mmap()ed, zero, on huge pages where the kernel gives them
    std::uint64_t mask_;
    std::size_t bytes_;
};

}  // namespace dsgw::balancer
