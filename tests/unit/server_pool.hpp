#pragma once
// A pool of UpstreamServers for the balancer tests (balancer_test.cpp,
// prefix_affinity_test.cpp).

#include "deepseek_gateway/upstream/server.hpp"

#include <memory>
#include <string>
#include <vector>

namespace dsgw::test {

using upstream::UpstreamServer;

// Servers named 127.0.0.1:9001, :9002, ... with the given weights.
struct Pool {
    std::vector<std::unique_ptr<UpstreamServer>> owned;
    std::vector<UpstreamServer*> servers;

    explicit Pool(std::vector<unsigned> weights) {
        for (std::size_t i = 0; i < weights.size(); ++i) {
            auto port = static_cast<unsigned short>(9001 + i);
            owned.push_back(std::make_unique<UpstreamServer>(
                "127.0.0.1:" + std::to_string(port),
                boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port),
                weights[i]));
            servers.push_back(owned.back().get());
        }
    }
    UpstreamServer* operator[](std::size_t i) const { return servers[i]; }
    std::size_t index_of(const UpstreamServer* s) const {
        for (std::size_t i = 0; i < servers.size(); ++i) {
            if (servers[i] == s) return i;
        }
        return servers.size();
    }
    // `servers` without the i-th one.
    std::vector<UpstreamServer*> without(std::size_t i) const {
        auto v = servers;
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        return v;
    }
};

}  // namespace dsgw::test
