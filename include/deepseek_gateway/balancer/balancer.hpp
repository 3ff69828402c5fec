#pragma once
// A balancer answers one question: which server should take this request.
// It reads atomics, never blocks and never allocates on the hot path. One
// balancer instance per upstream is shared by every worker thread.

#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/upstream/server.hpp"

#include <boost/asio/ip/address.hpp>

#include <memory>
#include <vector>

namespace dsgw::balancer {

using upstream::UpstreamServer;

struct PickContext {
    // The client address (already normalized: IPv4-mapped IPv6 unmapped).
    boost::asio::ip::address client;
    // A server to avoid if any other is usable (the one a retry failed on).
    const UpstreamServer* exclude = nullptr;
    upstream::Clock::time_point now = upstream::Clock::now();
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

}  // namespace dsgw::balancer
