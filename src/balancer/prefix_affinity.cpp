// Cache-aware balancing (SPEC §9): a request goes to the server that served
// the longest prefix of its prompt, unless that server's load is past the
// bound; a prompt never seen goes by rendezvous hashing of its first block.
//
// The bound is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, 2018): with m requests' worth of load on n servers, a server
// may take one more while its load + 1 <= ceil(c * (m + 1) * w / W), c being
// max_load_ratio and w/W its share of the weight. So no server runs far above
// the mean however hot one prefix is, and a hot prefix spreads over several
// servers, each of which then holds it.
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
    }

    UpstreamServer* pick(const PickContext& ctx) override {
        PromptMatch* prompt = ctx.prompt;
        if (!prompt || prompt->blocks.empty()) return least_conn_->pick(ctx);
        prompt->looked_up = true;
        prompt->matched = 0;
        const std::size_t n = servers_.size();

        // The pool's load and weight, over the servers that may take it.
        double total_load = 0;
        double total_weight = 0;
        for (auto* s : servers_) {
            if (!detail::eligible(s, ctx)) continue;
            total_load += s->load(ctx.now);
            total_weight += s->weight() * s->weight_factor(ctx.now);
        }
        if (total_weight <= 0) return least_conn_->pick(ctx);  // none (or only ctx.exclude)
        const double per_weight = ratio_ * (total_load + 1) / total_weight;
        auto under_bound = [&](const UpstreamServer* s) {
            if (!detail::eligible(s, ctx)) return false;
            const double cap = std::ceil(per_weight * s->weight() * s->weight_factor(ctx.now));
            return s->load(ctx.now) + 1 <= cap;
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
        std::size_t best = n;
        for (std::size_t i = 0; i < n; ++i) {
            if (matched_[i] == 0 || (best < n && matched_[i] <= matched_[best])) continue;
            if (under_bound(servers_[i])) best = i;
        }
        if (best < n) {
            prompt->matched = matched_[best];
        } else {
            // New to every server that may take it: the highest rendezvous
            // score for the first block, weighted (-w / ln u).
            double best_score = 0;
            for (std::size_t i = 0; i < n; ++i) {
                if (!under_bound(servers_[i])) continue;
                const std::uint64_t h = detail::mix64(blocks[0] ^ keys_[i]);
                const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
                const double score = -static_cast<double>(servers_[i]->weight()) / std::log(u);
                if (best == n || score > best_score) {
                    best = i;
                    best_score = score;
                }
            }
        }
        if (best == n) return least_conn_->pick(ctx);
        remember(*prompt, best, ctx.now);
        return servers_[best];
    }

private:
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
