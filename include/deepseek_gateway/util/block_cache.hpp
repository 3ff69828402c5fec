#pragma once
// A memory resource that keeps the blocks it is given back, up to a bound, and
// hands them out again when the same size and alignment is asked for. The
// sessions' per-exchange arenas take one block of the same size per request
// and give it back at the end of the exchange; from a free list that is a
// pop and a push, where std::pmr::unsynchronized_pool_resource cost about 300
// instructions per request (callgrind). Blocks above `max_bytes`, and blocks
// past the bound, go back to the upstream resource. Single-threaded (a
// worker's loop).

#include <cstddef>
#include <memory_resource>
#include <vector>

namespace dsgw::util {

class BlockCache final : public std::pmr::memory_resource {
public:
    // Keeps at most `max_blocks` free blocks of at most `max_bytes` each.
    BlockCache(std::size_t max_blocks, std::size_t max_bytes,
               std::pmr::memory_resource* upstream = std::pmr::new_delete_resource());
    ~BlockCache() override;
    BlockCache(const BlockCache&) = delete;
    BlockCache& operator=(const BlockCache&) = delete;

    std::size_t free_blocks() const { return free_.size(); }

private:
    struct Block {
        void* p;
        std::size_t bytes;
        std::size_t align;
    };

    void* do_allocate(std::size_t bytes, std::size_t align) override;
    void do_deallocate(void* p, std::size_t bytes, std::size_t align) override;
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        return this == &other;
    }

    std::pmr::memory_resource* upstream_;
    std::size_t max_blocks_;
    std::size_t max_bytes_;
    std::vector<Block> free_;
};

}  // namespace dsgw::util
