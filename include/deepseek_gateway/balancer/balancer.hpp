#pragma once
// A balancer answers one question: which server should take this request.
// It reads atomics, never blocks and never allocates on the hot path. One
// balancer instance per upstream is shared by every worker thread.

#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/upstream/server.hpp"

#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace dsgw::balancer {

using upstream::UpstreamServer;
class PrefixTable;

// The prompt of a request to a prefix_affinity upstream (SPEC §9): its
// canonical prompt's block hashes (llm/prompt_blocks.hpp), and what the
// balancer found for it.
struct PromptMatch {
    std::span<const std::uint64_t> blocks;
    // Set by each pick: that the prompt was looked up, and how many of its
    // leading blocks the server picked had served (0: a miss).
    bool looked_up = false;
    std::uint32_t matched = 0;
};

struct PickContext {
    // The client address (already normalized: IPv4-mapped IPv6 unmapped).
    boost::asio::ip::address client;
    // A server to avoid if any other is usable (the one a retry failed on).
    const UpstreamServer* exclude = nullptr;
    upstream::Clock::time_point now = upstream::Clock::now();
    // prefix_affinity only; null or no blocks: balanced as least_conn. Owned
    // by the exchange, which outlives every pick made for it.
    PromptMatch* prompt = nullptr;
};

class Balancer {
public:
    virtual ~Balancer() = default;
    // Returns a usable server, or nullptr when none is usable. Servers that are
    // not usable() are skipped; `exclude` is chosen only when it is the last
    // usable one.
    virtual UpstreamServer* pick(const PickContext& ctx) = 0;
};

// `servers` outlive the balancer (they are owned by the upstream runtime).
std::unique_ptr<Balancer> make_balancer(config::BalancerKind kind,
                                        std::vector<UpstreamServer*> servers);

std::unique_ptr<Balancer> make_round_robin(std::vector<UpstreamServer*> servers);
std::unique_ptr<Balancer> make_least_conn(std::vector<UpstreamServer*> servers);
std::unique_ptr<Balancer> make_ip_hash(std::vector<UpstreamServer*> servers);
// `table`: what an earlier balancer of the same upstream remembered (a reload
// that kept its servers), or null for a new one.
std::unique_ptr<Balancer> make_prefix_affinity(std::vector<UpstreamServer*> servers,
                                               const config::PrefixAffinityConfig& cfg,
                                               std::shared_ptr<PrefixTable> table);

}  // namespace dsgw::balancer
