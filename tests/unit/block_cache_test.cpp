// util::BlockCache: the free list under the sessions' per-exchange arenas.

#include "deepseek_gateway/util/block_cache.hpp"

#include <gtest/gtest.h>

#include <memory_resource>
#include <set>

namespace {

using dsgw::util::BlockCache;

// Counts what goes to and comes back from the upstream resource.
class Counting final : public std::pmr::memory_resource {
public:
    int allocations = 0;
    int deallocations = 0;
    int outstanding() const { return allocations - deallocations; }

private:
    void* do_allocate(std::size_t n, std::size_t align) override {
        ++allocations;
        return std::pmr::new_delete_resource()->allocate(n, align);
    }
    void do_deallocate(void* p, std::size_t n, std::size_t align) override {
        ++deallocations;
        std::pmr::new_delete_resource()->deallocate(p, n, align);
    }
    bool do_is_equal(const memory_resource& o) const noexcept override { return this == &o; }
};

TEST(BlockCache, ABlockGivenBackIsHandedOutAgain) {
    Counting up;
    BlockCache cache(4, 4096, &up);
    void* a = cache.allocate(2048, 16);
    cache.deallocate(a, 2048, 16);
    EXPECT_EQ(cache.free_blocks(), 1u);
    EXPECT_EQ(cache.allocate(2048, 16), a);
    EXPECT_EQ(cache.free_blocks(), 0u);
    EXPECT_EQ(up.allocations, 1);
    cache.deallocate(a, 2048, 16);
}

TEST(BlockCache, OnlyTheSameSizeAndAlignmentIsReused) {
    Counting up;
    BlockCache cache(4, 4096, &up);
    void* a = cache.allocate(2048, 16);
    cache.deallocate(a, 2048, 16);
    void* b = cache.allocate(1024, 16);
    void* c = cache.allocate(2048, 64);
    EXPECT_NE(b, a);
    EXPECT_NE(c, a);
    EXPECT_EQ(up.allocations, 3);
    EXPECT_EQ(cache.allocate(2048, 16), a);
    cache.deallocate(a, 2048, 16);
    cache.deallocate(b, 1024, 16);
    cache.deallocate(c, 2048, 64);
}

TEST(BlockCache, KeepsNoMoreThanItsBoundAndNothingLarge) {
    Counting up;
    {
        BlockCache cache(2, 4096, &up);
        void* blocks[3];
        for (auto& b : blocks) b = cache.allocate(2048, 16);
        for (auto* b : blocks) cache.deallocate(b, 2048, 16);
        EXPECT_EQ(cache.free_blocks(), 2u);
        EXPECT_EQ(up.deallocations, 1) << "the third block went back upstream";
        void* big = cache.allocate(8192, 16);
        cache.deallocate(big, 8192, 16);
        EXPECT_EQ(cache.free_blocks(), 2u);
        EXPECT_EQ(up.deallocations, 2) << "a block above max_bytes is not kept";
    }
    EXPECT_EQ(up.outstanding(), 0) << "the cache gives its blocks back when it goes";
}

// As the session uses it: an arena per exchange, released at its end.
TEST(BlockCache, ArenasReleasedAfterEachExchangeReuseOneBlock) {
    Counting up;
    BlockCache cache(64, 8192, &up);
    std::pmr::monotonic_buffer_resource arena(2048, &cache);
    std::set<void*> seen;
    for (int exchange = 0; exchange < 100; ++exchange) {
        seen.insert(arena.allocate(300, 1));
        EXPECT_NE(arena.allocate(600, 8), nullptr);
        arena.release();
    }
    EXPECT_EQ(up.allocations, 1);
    EXPECT_EQ(seen.size(), 1u) << "the same first block every time";
}

}  // namespace
