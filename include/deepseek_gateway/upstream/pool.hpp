#pragma once
// Idle keep-alive connections to upstream servers, one pool per worker thread
// (so no locks). An idle connection that becomes readable has been closed by
// the server (or sent something it should not have): it is evicted at once.

#include "deepseek_gateway/upstream/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>

namespace dsgw::upstream {

class UpstreamConnection {
public:
    UpstreamConnection(boost::asio::io_context& io, UpstreamServer* server)
        : socket(io), server(server) {}

    boost::asio::ip::tcp::socket socket;
    // Set when the upstream speaks TLS: wraps `socket`.
    std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls;
    boost::beast::flat_buffer buffer;  // bytes read but not yet parsed
    UpstreamServer* server;
    std::uint64_t requests = 0;  // requests sent on this connection
    std::size_t read_size = 4096;  // grows while reads fill it, up to 64 KiB
    std::uint64_t idle_generation = 0;
};

class UpstreamPool {
public:
    explicit UpstreamPool(boost::asio::io_context& io) : io_(io) {}
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // The most recently used idle connection to `server`, or null.
    std::shared_ptr<UpstreamConnection> take(const UpstreamServer* server);

    // Keeps `conn` for reuse, unless `max_idle` connections to that server are
    // already kept, in which case the oldest is closed.
    void put(std::shared_ptr<UpstreamConnection> conn, unsigned max_idle);

    // Closes every idle connection to `server` (it left the configuration).
    void close_server(const UpstreamServer* server);
    void close_all();

    std::size_t idle_count() const;
    std::uint64_t evicted() const { return evicted_; }

private:
    void watch(const std::shared_ptr<UpstreamConnection>& conn);
    void evict(const std::shared_ptr<UpstreamConnection>& conn);

    boost::asio::io_context& io_;
    std::unordered_map<const UpstreamServer*, std::deque<std::shared_ptr<UpstreamConnection>>>
        idle_;
    std::uint64_t evicted_ = 0;
};

}  // namespace dsgw::upstream
