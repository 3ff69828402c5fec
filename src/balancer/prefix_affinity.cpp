// Cache-aware balancing (SPEC §9): a request goes to the server that served
// the longest prefix of its prompt, unless that server's load is past the
// bound; a prompt never seen goes by rendezvous hashing of its first block.
//
// The bound is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, 2018), applied to the upstream's last picks (64 per server,
// at least 256): a server may take one more while its count there + 1 <=
// ceil(c * (picks + 1) * w / W), c being max_load_ratio and w/W its share of
// the weight (checked only while the pool has more than two requests per
// server, and the server more than its share); and its load (in flight, or scraped)
// at most twice its share.
// So no server takes much more than its share however hot one prefix is, and
// a hot prefix spreads over several servers, each of which then holds it.
// The bound is on recent picks rather than on requests in flight because a
// handful of requests in flight per server swing by one or two all the time:
// bounding them at 1.25x the mean sent a third of the requests away from the
// server that had their prefix (bench/prefix.sh).
//
// Rendezvous hashing (highest random weight) of the first block over the
// servers' names needs no shared state: every gateway replica with the same
// servers sends a new prefix to the same server, and a server that leaves
// moves only its own prefixes.
//
// The table is read and written without a lock (prefix_table.hpp); the load
// of each server is its shared in-flight count (and scraped load), read with
// relaxed atomics.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/balancer/prefix_table.hpp"

#include "eligible.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace dsgw::balancer {

namespace {

// FNV-1a of a server's name, mixed: its rendezvous key (the same in every
// process, unlike std::hash).
std::uint64_t name_key(std::string_view name) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : name) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return detail::mix64(h);
}

class PrefixAffinityBalancer final : public Balancer {
public:
    PrefixAffinityBalancer(std::vector<UpstreamServer*> servers,
                           const config::PrefixAffinityConfig& cfg,
                           std::shared_ptr<PrefixTable> table)
        : servers_(std::move(servers)),
          least_conn_(make_least_conn(servers_)),
          table_(table ? std::move(table) : std::make_shared<PrefixTable>(cfg.table_entries)),
          ratio_(cfg.max_load_ratio) {
        keys_.reserve(servers_.size());
        for (const auto* s : servers_) keys_.push_back(name_key(s->name()));
        window_ = std::max<std::uint64_t>(256, 64 * servers_.size());
        ring_ = std::make_unique<std::atomic<std::uint32_t>[]>(window_);
        for (std::uint64_t k = 0; k < window_; ++k)
            ring_[k].store(kEmpty, std::memory_order_relaxed);
        recent_ = std::make_unique<Count[]>(servers_.size());
    }

    UpstreamServer* pick(const PickContext& ctx) override {
        PromptMatch* prompt = ctx.prompt;
        if (!prompt || prompt->blocks.empty()) return least_conn_->pick(ctx);
        prompt->looked_up = true;
        prompt->matched = 0;
        const std::size_t n = servers_.size();

        // The bound, over the servers that may take the request: its share
        // of the upstream's recent picks, and its load.
        double total_load = 0;
        double total_weight = 0;
        std::size_t eligible = 0;
        for (auto* s : servers_) {
            if (!detail::eligible(s, ctx)) continue;
            ++eligible;
            total_load += s->load(ctx.now);
            total_weight += s->weight() * s->weight_factor(ctx.now);
        }
        if (total_weight <= 0) return least_conn_->pick(ctx);  // none (or only ctx.exclude)
        const double picks = static_cast<double>(
            std::min<std::uint64_t>(cursor_.load(std::memory_order_relaxed), window_));
        // Up to two requests per server the pool is idle, whatever the
        // shares: counts that small (a request just finished, a scrape a
        // second old) move by one or two with every request and say nothing
        // about a lasting skew.
        const bool busy = total_load + 1 > 2.0 * static_cast<double>(eligible);
        auto under_bound = [&](std::size_t i) {
            const UpstreamServer* s = servers_[i];
            if (!detail::eligible(s, ctx)) return false;
            const double part = s->weight() * s->weight_factor(ctx.now) / total_weight;
            // In flight (or scraped), at most twice its fair share, and
            // always one more than its share: a burst may ride, a pile-up
            // may not.
            const double share = (total_load + 1) * part;
            const double load = s->load(ctx.now) + 1;
            if (load > std::max(std::ceil(2 * share), std::ceil(share) + 1)) return false;
            // In a busy pool, a server busier than its share takes no more
            // than the ratio of its fair share of the recent picks: a lasting
            // skew, not a passing one. An idle pool keeps every prefix where
            // it is.
            if (!busy || load <= std::ceil(share)) return true;
            const double recent = recent_[i].n.load(std::memory_order_relaxed) + 1;
            return recent <= std::ceil(ratio_ * (picks + 1) * part);
        };

        // The longest prefix each server last served: the leading blocks the
        // table knows, up to the first it does not (a server's cache needs
        // every block before the ones it reuses).
        matched_.assign(n, 0);
        const auto& blocks = prompt->blocks;
        for (const auto block : blocks) table_->prefetch(block);
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const unsigned s = table_->find(blocks[i]);
            if (s == 0 || s > n) break;
            matched_[s - 1] = static_cast<std::uint32_t>(i + 1);
        }
        // The servers in order of preference: the longest match first, then
        // the highest rendezvous score of the first block (weighted: -w / ln u).
        // The first under the bound takes the request.
        std::size_t best = n;
        double best_score = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (best < n && matched_[i] < matched_[best]) continue;
            const std::uint64_t h = detail::mix64(blocks[0] ^ keys_[i]);
            const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
            const double score = -static_cast<double>(servers_[i]->weight()) / std::log(u);
            if (best < n && matched_[i] == matched_[best] && score <= best_score) continue;
            if (!under_bound(i)) continue;
            best = i;
            best_score = score;
        }
        auto* chosen = best < n ? servers_[best] : least_conn_->pick(ctx);
        if (!chosen) return nullptr;
        if (best == n) best = index_of(chosen);
        prompt->matched = matched_[best];
        note_pick(best);
        remember(*prompt, best, ctx.now);
        return chosen;
    }

private:
    std::size_t index_of(const UpstreamServer* s) const {
        for (std::size_t i = 0; i < servers_.size(); ++i)
            if (servers_[i] == s) return i;
        return 0;
    }

    // The window of recent picks: slot k holds the server of pick k (mod the
    // window), recent_ how many slots each server holds. Two atomic updates a
    // pick, no lock; a race between two picks at most miscounts one slot for
    // a moment.
    void note_pick(std::size_t i) {
        const std::uint64_t k = cursor_.fetch_add(1, std::memory_order_relaxed);
        const auto old =
            ring_[k % window_].exchange(static_cast<std::uint32_t>(i), std::memory_order_relaxed);
        if (old != kEmpty) recent_[old].n.fetch_sub(1, std::memory_order_relaxed);
        recent_[i].n.fetch_add(1, std::memory_order_relaxed);
    }

    void remember(const PromptMatch& prompt, std::size_t server, upstream::Clock::time_point now) {
        const auto stamp = PrefixTable::stamp_of(now);
        for (const auto block : prompt.blocks)
            table_->remember(block, static_cast<unsigned>(server + 1), stamp);
    }

    std::vector<UpstreamServer*> servers_;
    std::unique_ptr<Balancer> least_conn_;
    std::shared_ptr<PrefixTable> table_;
    double ratio_;
    std::vector<std::uint64_t> keys_;  // rendezvous key of each server
    static constexpr std::uint32_t kEmpty = UINT32_MAX;
    std::uint64_t window_;  // picks in the window: 64 per server, at least 256
    std::unique_ptr<std::atomic<std::uint32_t>[]> ring_;
    struct alignas(64) Count {
        std::atomic<std::int64_t> n{0};
    };
    std::unique_ptr<Count[]> recent_;
    std::atomic<std::uint64_t> cursor_{0};
    static thread_local std::vector<std::uint32_t> matched_;
};

thread_local std::vector<std::uint32_t> PrefixAffinityBalancer::matched_;

}  // namespace

std::unique_ptr<Balancer> make_prefix_affinity(std::vector<UpstreamServer*> servers,
                                               const config::PrefixAffinityConfig& cfg,
                                               std::shared_ptr<PrefixTable> table) {
    return std::make_unique<PrefixAffinityBalancer>(std::move(servers), cfg, std::move(table));
}

}  // namespace dsgw::balancer
