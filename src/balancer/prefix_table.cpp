#include "deepseek_gateway/balancer/prefix_table.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <new>

namespace dsgw::balancer {

namespace {

// An entry: the hash's top 32 bits, the server (12 bits, 0 = empty), the
// stamp (20 bits).
constexpr unsigned kServerShift = 20;
constexpr std::uint64_t kStampMask = (1u << 20) - 1;

std::uint64_t tag_of(std::uint64_t h) {
    return h >> 32;
}
unsigned server_of(std::uint64_t w) {
    return static_cast<unsigned>((w >> kServerShift) & PrefixTable::kMaxServers);
}

}  // namespace

PrefixTable::PrefixTable(std::uint64_t entries) {
    const std::uint64_t buckets = std::bit_ceil(std::max<std::uint64_t>(entries / kWays, 1));
    mask_ = buckets - 1;
    bytes_ = buckets * sizeof(Bucket);
    // Anonymous memory: zero (every way empty), committed as it is touched,
    // and on 2 MiB pages where transparent huge pages allow it: a lookup is
    // one cache miss, not also a TLB miss.
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, bytes_, MADV_HUGEPAGE);
    buckets_ = static_cast<Bucket*>(p);
}

PrefixTable::~PrefixTable() {
    munmap(buckets_, bytes_);
}

unsigned PrefixTable::find(std::uint64_t block) const {
    const auto& b = buckets_[block & mask_];
    const std::uint64_t tag = tag_of(block);
    for (const auto& way : b.way) {
        const std::uint64_t w = way.load(std::memory_order_relaxed);
        if ((w >> 32) == tag && server_of(w) != 0) return server_of(w);
    }
    return 0;
}

void PrefixTable::remember(std::uint64_t block, unsigned server, std::uint32_t stamp) {
    if (server == 0 || server > kMaxServers) return;
    auto& b = buckets_[block & mask_];
    const std::uint64_t word =
        tag_of(block) << 32 | std::uint64_t{server} << kServerShift | (stamp & kStampMask);
    std::atomic<std::uint64_t>* victim = nullptr;
    std::uint64_t oldest = 0;
    for (auto& way : b.way) {
        const std::uint64_t w = way.load(std::memory_order_relaxed);
        if (server_of(w) == 0) {
            if (!victim || oldest <= kStampMask) {  // the first empty way wins
                victim = &way;
                oldest = kStampMask + 1;
            }
            continue;
        }
        if ((w >> 32) == (word >> 32)) {
            if (w != word) way.store(word, std::memory_order_relaxed);
            return;
        }
        const std::uint64_t age = (stamp - w) & kStampMask;
        if (!victim || age > oldest) {
            victim = &way;
            oldest = age;
        }
    }
    victim->store(word, std::memory_order_relaxed);
}

std::uint32_t PrefixTable::stamp_of(upstream::Clock::time_point now) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(ns.count()) >> 24) & kStampMask);
}

}  // namespace dsgw::balancer
