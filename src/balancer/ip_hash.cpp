// Client affinity by consistent hashing (the ring nghttpx uses for its
// affinity, weighted like ketama): every server owns 160 x weight points on a
// 64-bit ring, a client goes to the owner of the first point at or after the
// hash of its address, walking clockwise past servers that are blocked or
// excluded. Adding or removing a server therefore moves only the clients of
// the points it gains or loses, and a blocked server's clients come back to it
// when it is usable again.
//
// The hashes are FNV-1a finished with splitmix64: fixed arithmetic, so the
// mapping is the same on every run, build and machine (std::hash is not), and
// a restart or an upgrade does not reshuffle every client.

#include "deepseek_gateway/balancer/balancer.hpp"

#include "eligible.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace dsgw::balancer {

namespace {

constexpr unsigned kPointsPerWeight = 160;

std::uint64_t fnv1a(const unsigned char* data, std::size_t size) {
    std::uint64_t h = 14695981039346656037ull;
    for (std::size_t i = 0; i < size; ++i) {
        h ^= data[i];
        h *= 1099511628211ull;
    }
    return h;
}

// FNV-1a alone spreads short, similar inputs ("...#1", "...#2") poorly over
// the high bits; the splitmix64 finaliser avalanches them.
std::uint64_t splitmix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

std::uint64_t stable_hash(const unsigned char* data, std::size_t size) {
    return splitmix64(fnv1a(data, size));
}

std::uint64_t stable_hash(std::string_view s) {
    return stable_hash(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

// The address bytes in network order: 4 for IPv4, 16 for IPv6.
std::uint64_t client_key(const boost::asio::ip::address& a) {
    if (a.is_v4()) {
        auto b = a.to_v4().to_bytes();
        return stable_hash(b.data(), b.size());
    }
    auto b = a.to_v6().to_bytes();
    return stable_hash(b.data(), b.size());
}

class IpHashBalancer final : public Balancer {
public:
    explicit IpHashBalancer(std::vector<UpstreamServer*> servers) : servers_(std::move(servers)) {
        std::size_t total = 0;
        for (const auto* s : servers_) total += std::size_t{kPointsPerWeight} * s->weight();
        ring_.reserve(total);
        for (std::uint32_t idx = 0; idx < servers_.size(); ++idx) {
            const auto& name = servers_[idx]->name();
            const unsigned points = kPointsPerWeight * servers_[idx]->weight();
            for (unsigned i = 0; i < points; ++i) {
                ring_.push_back({stable_hash(name + "#" + std::to_string(i)), idx});
            }
        }
        // A collision is settled by name, not by position in the list, so
        // that reordering the configured servers changes nothing.
        std::sort(ring_.begin(), ring_.end(), [this](const Point& a, const Point& b) {
            if (a.hash != b.hash) return a.hash < b.hash;
            return servers_[a.server]->name() < servers_[b.server]->name();
        });
    }

    UpstreamServer* pick(const PickContext& ctx) override {
        if (ring_.empty()) return nullptr;
        // The walk below can pass every point; make sure it ends on a hit.
        if (!detail::any_eligible(servers_, ctx)) return detail::last_resort(servers_, ctx);
        const std::uint64_t key = client_key(ctx.client);
        auto it = std::lower_bound(ring_.begin(), ring_.end(), key,
                                   [](const Point& p, std::uint64_t k) { return p.hash < k; });
        std::size_t start = static_cast<std::size_t>(it - ring_.begin());
        const std::size_t n = ring_.size();
        for (std::size_t k = 0; k < n; ++k) {
            auto* s = servers_[ring_[(start + k) % n].server];
            if (detail::eligible(s, ctx)) return s;
        }
        return detail::last_resort(servers_, ctx);  // it became unusable meanwhile
    }

private:
    struct Point {
        std::uint64_t hash;
        std::uint32_t server;  // index into servers_
    };
    std::vector<UpstreamServer*> servers_;
    std::vector<Point> ring_;  // sorted by hash
};

}  // namespace

std::unique_ptr<Balancer> make_ip_hash(std::vector<UpstreamServer*> servers) {
    return std::make_unique<IpHashBalancer>(std::move(servers));
}

}  // namespace dsgw::balancer
