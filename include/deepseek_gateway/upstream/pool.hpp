#pragma once
// Idle keep-alive connections to upstream servers, one pool per worker thread
// (so no locks). An idle connection that becomes readable has been closed by
// the server (or sent something it should not have): it is evicted at once.
// The watch that notices it is armed only after the connection has been idle
// for 10-20 ms (util::DelayQueue): under load a connection is taken again
// sooner, and taking it then costs no system call.

#include "deepseek_gateway/net/socket.hpp"
#include "deepseek_gateway/net/stream.hpp"
#include "deepseek_gateway/upstream/server.hpp"
#include "deepseek_gateway/util/delay_queue.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>

namespace dsgw::upstream {

class UpstreamPool;

class UpstreamConnection final : public std::enable_shared_from_this<UpstreamConnection>,
                                 private util::DelayQueue::Entry {
public:
    UpstreamConnection(boost::asio::io_context& io, UpstreamServer* server)
        : socket(io), server(server) {}
    ~UpstreamConnection() = default;

    net::Socket socket;
    // Set when the upstream speaks TLS: wraps `socket`.
    std::unique_ptr<boost::asio::ssl::stream<net::Socket&>> tls;
    // The byte stream over `socket` (through `tls` when set), from the
    // moment the connection is open.
    std::optional<net::Stream> stream;
    boost::beast::flat_buffer buffer;  // bytes read but not yet parsed
    UpstreamServer* server;
    std::uint64_t requests = 0;  // requests sent on this connection
    std::size_t read_size = 4096;  // grows while reads fill it, up to 64 KiB
    // What the kernel still held after the last plain read (TCP_INQ; 1 may
    // be a FIN alone), -1 when unknown: with `buffer`, whether anything came
    // past the end of a response.
    int inq = -1;
    std::uint64_t idle_generation = 0;

private:
    friend class UpstreamPool;
    void on_due() override;
    UpstreamPool* pool_ = nullptr;  // while idle in a pool
};

class UpstreamPool {
public:
    explicit UpstreamPool(boost::asio::io_context& io) : io_(io), watch_later_(io, kWatchDelay) {}
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
    friend class UpstreamConnection;
    static constexpr std::chrono::milliseconds kWatchDelay{10};
    // No longer idle in this pool: stops its watch (queued or armed).
    void unwatch(UpstreamConnection& conn);
    void watch(const std::shared_ptr<UpstreamConnection>& conn);
    void evict(const std::shared_ptr<UpstreamConnection>& conn);

    boost::asio::io_context& io_;
    util::DelayQueue watch_later_;
    std::unordered_map<const UpstreamServer*, std::deque<std::shared_ptr<UpstreamConnection>>>
        idle_;
    std::uint64_t evicted_ = 0;
};

}  // namespace dsgw::upstream
