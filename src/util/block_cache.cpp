#include "deepseek_gateway/util/block_cache.hpp"

namespace dsgw::util {

BlockCache::BlockCache(std::size_t max_blocks, std::size_t max_bytes,
                       std::pmr::memory_resource* upstream)
    : upstream_(upstream), max_blocks_(max_blocks), max_bytes_(max_bytes) {
    free_.reserve(max_blocks_);
}

BlockCache::~BlockCache() {
    for (const auto& b : free_) upstream_->deallocate(b.p, b.bytes, b.align);
}

void* BlockCache::do_allocate(std::size_t bytes, std::size_t align) {
    // The last block given back is the likeliest to fit (and to be in cache).
    for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
        if (it->bytes != bytes || it->align != align) continue;
        void* p = it->p;
        free_.erase(std::next(it).base());
        return p;
    }
    return upstream_->allocate(bytes, align);
}

void BlockCache::do_deallocate(void* p, std::size_t bytes, std::size_t align) {
    if (bytes <= max_bytes_ && free_.size() < max_blocks_) {
        free_.push_back({p, bytes, align});
        return;
    }
    upstream_->deallocate(p, bytes, align);
}

}  // namespace dsgw::util
