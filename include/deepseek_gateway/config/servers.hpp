#pragma once
// The servers an upstream's configuration stands for. A server given by IP
// address is one server; a server given by host name is one server per
// address the name resolves to (the multi-zone DNS set-up), each named
// "host:port/address" so that logs and metric labels tell them apart. The
// upstream runtime and the metrics both expand a configuration through
// server_instances(), so their lists agree index by index.

#include "deepseek_gateway/config/config.hpp"

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dsgw::config {

struct ServerInstance {
    std::string name;  // "10.0.0.5:8000", or "gpu.lan:8000/10.0.0.5" for a host name
    boost::asio::ip::address ip;
    std::uint16_t port = 0;
    unsigned weight = 1;
    std::size_t config_index = 0;  // in UpstreamConfig::servers
};

// In configuration order; a host name's addresses in the order of
// ServerConfig::resolved.
std::vector<ServerInstance> server_instances(const UpstreamConfig& u);

// The name of the server that `s` stands for at address `a`.
std::string instance_name(const ServerConfig& s, const boost::asio::ip::address& a);

// getaddrinfo() for `host`: every IPv4 and IPv6 address, sorted and without
// duplicates, so that the same answer in another order is the same set.
// Returns why it failed, or nothing on success (then `out` is not empty).
std::optional<std::string> resolve_host(const std::string& host,
                                        std::vector<boost::asio::ip::address>& out);

// "10.0.0.1, 10.0.0.2" (for log lines).
std::string join_addresses(const std::vector<boost::asio::ip::address>& addresses);

}  // namespace dsgw::config
