#include "deepseek_gateway/config/servers.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dsgw::config {

namespace ip = boost::asio::ip;

std::string instance_name(const ServerConfig& s, const ip::address& a) {
    if (!s.host_name) return s.address.to_string();
    return s.address.to_string() + "/" + a.to_string();
}

std::vector<ServerInstance> server_instances(const UpstreamConfig& u) {
    std::vector<ServerInstance> out;
    for (std::size_t i = 0; i < u.servers.size(); ++i) {
        const auto& s = u.servers[i];
        for (const auto& a : s.resolved) {
            out.push_back({instance_name(s, a), a, s.address.port, s.weight, i});
            // An IP literal stands for itself alone.
            if (!s.host_name) break;
        }
    }
    return out;
}

std::optional<std::string> resolve_host(const std::string& host, std::vector<ip::address>& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0) return std::string(rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc));
    std::vector<ip::address> found;
    for (auto* p = res; p; p = p->ai_next) {
        if (p->ai_family == AF_INET) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(p->ai_addr);
            found.push_back(ip::address_v4(ntohl(sin->sin_addr.s_addr)));
        } else if (p->ai_family == AF_INET6) {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(p->ai_addr);
            ip::address_v6::bytes_type bytes;
            std::memcpy(bytes.data(), sin6->sin6_addr.s6_addr, bytes.size());
            found.push_back(ip::address_v6(bytes, sin6->sin6_scope_id));
        }
    }
    ::freeaddrinfo(res);
    if (found.empty()) return std::string("no IPv4 or IPv6 address");
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    out = std::move(found);
    return std::nullopt;
}

std::string join_addresses(const std::vector<ip::address>& addresses) {
    std::string out;
    for (const auto& a : addresses) {
        if (!out.empty()) out += ", ";
        out += a.to_string();
    }
    return out.empty() ? "(none)" : out;
}

}  // namespace dsgw::config
