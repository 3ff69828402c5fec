#include "deepseek_gateway/llm/prompt_blocks.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace dsgw::llm {

namespace {

// Bytes in, a hash out at each block's end. A block that lies whole in one
// piece is hashed where it is; one cut across pieces is gathered first.
class Blocks {
public:
    Blocks(std::size_t block_bytes, std::size_t max_blocks, std::vector<std::uint64_t>& out)
        : block_(block_bytes), max_(max_blocks), out_(out) {
        out_.clear();
        if (staging_.size() < block_) staging_.resize(block_);
    }

    bool full() const { return out_.size() >= max_; }

    void add(const char* p, std::size_t n) {
        while (n != 0 && !full()) {
            if (fill_ == 0 && n >= block_) {
                push(XXH3_64bits(p, block_));
                p += block_;
                n -= block_;
                continue;
            }
            const std::size_t take = std::min(n, block_ - fill_);
            std::memcpy(staging_.data() + fill_, p, take);
            fill_ += take;
            p += take;
            n -= take;
            if (fill_ == block_) {
                push(XXH3_64bits(staging_.data(), block_));
                fill_ = 0;
            }
        }
    }

    void finish() {
        if (fill_ != 0 && !full()) push(XXH3_64bits(staging_.data(), fill_));
    }

private:
    // Block i's hash: XXH3-64 of (block i-1's hash, this block's own hash),
    // both 8 bytes little-endian; 0 stands before the first block.
    void push(std::uint64_t own) {
        unsigned char pair[16];
        for (int i = 0; i < 8; ++i) {
            pair[i] = static_cast<unsigned char>(prev_ >> (8 * i));
            pair[8 + i] = static_cast<unsigned char>(own >> (8 * i));
        }
        prev_ = XXH3_64bits(pair, sizeof pair);
        out_.push_back(prev_);
    }

    std::size_t block_;
    std::size_t max_;
    std::size_t fill_ = 0;
    std::uint64_t prev_ = 0;
    std::vector<std::uint64_t>& out_;
    static thread_local std::vector<char> staging_;
};

thread_local std::vector<char> Blocks::staging_;

// The text [begin, end) of the body, from its pieces.
class Text {
public:
    explicit Text(std::span<const BodyPiece> body) : body_(body) {}

    void copy(ModelScan::Span s, Blocks& to) {
        if (s.begin < at_) {  // before the cursor ("tools" after "messages"): from the start
            piece_ = 0;
            at_ = 0;
        }
        while (piece_ < body_.size() && s.begin < s.end && !to.full()) {
            const auto& p = body_[piece_];
            const std::uint64_t piece_end = at_ + p.size;
            if (s.begin >= piece_end) {
                at_ = piece_end;
                ++piece_;
                continue;
            }
            const std::uint64_t e = std::min(s.end, piece_end);
            to.add(p.data + (s.begin - at_), static_cast<std::size_t>(e - s.begin));
            s.begin = e;
        }
    }

private:
    std::span<const BodyPiece> body_;
    std::size_t piece_ = 0;
    std::uint64_t at_ = 0;  // offset of body_[piece_] in the text
};

}  // namespace

bool prompt_blocks(const ModelScan& scan, std::span<const BodyPiece> body, std::size_t block_bytes,
                   std::size_t max_blocks, std::vector<std::uint64_t>& out) {
    Blocks blocks(block_bytes, max_blocks, out);
    Text text(body);
    static constexpr char kNewline = '\n';
    if (scan.has_messages()) {
        if (!scan.tools().empty()) {
            text.copy(scan.tools(), blocks);
            blocks.add(&kNewline, 1);
        }
        for (const auto& m : scan.messages()) {
            if (blocks.full()) break;
            text.copy(m.role, blocks);
            text.copy(m.content, blocks);
            blocks.add(&kNewline, 1);
        }
    } else if (!scan.prompt().empty()) {
        text.copy(scan.prompt(), blocks);
    }
    blocks.finish();
    return !out.empty();
}

void hash_blocks(std::span<const char> text, std::size_t block_bytes, std::size_t max_blocks,
                 std::vector<std::uint64_t>& out) {
    Blocks blocks(block_bytes, max_blocks, out);
    blocks.add(text.data(), text.size());
    blocks.finish();
}

}  // namespace dsgw::llm
