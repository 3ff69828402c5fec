#include "deepseek_gateway/llm/prompt_blocks.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>

namespace dsgw::llm {

namespace {

// Bytes in, a hash out at each block's end.
class Blocks {
public:
    Blocks(std::size_t block_bytes, std::size_t max_blocks, std::vector<std::uint64_t>& out)
        : block_(block_bytes), max_(max_blocks), out_(out) {
        out_.clear();
        XXH3_64bits_reset_withSeed(&state_, 0);
    }

    bool full() const { return out_.size() >= max_; }

    void add(const char* p, std::size_t n) {
        while (n != 0 && !full()) {
            const std::size_t take = std::min(n, block_ - fill_);
            XXH3_64bits_update(&state_, p, take);
            fill_ += take;
            p += take;
            n -= take;
            if (fill_ == block_) {
                const std::uint64_t h = XXH3_64bits_digest(&state_);
                out_.push_back(h);
                XXH3_64bits_reset_withSeed(&state_, h);
                fill_ = 0;
            }
        }
    }

    void finish() {
        if (fill_ != 0 && !full()) out_.push_back(XXH3_64bits_digest(&state_));
    }

private:
    XXH3_state_t state_;
    std::size_t block_;
    std::size_t max_;
    std::size_t fill_ = 0;
    std::vector<std::uint64_t>& out_;
};

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
