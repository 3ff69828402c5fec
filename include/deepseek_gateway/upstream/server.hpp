#pragma once
// One inference server of an upstream pool: its address and the little shared
// state every worker thread reads and updates with atomics (in-flight count,
// connect backoff). Nothing here takes a lock.

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace dsgw::upstream {

using Clock = std::chrono::steady_clock;

class UpstreamServer {
public:
    UpstreamServer(std::string name, boost::asio::ip::tcp::endpoint endpoint, unsigned weight);

    const std::string& name() const { return name_; }  // "host:port" as configured
    const boost::asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }
    unsigned weight() const { return weight_; }

    std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

    // A server that just failed a connect is skipped by the balancers until its
    // backoff passes (doubling per consecutive failure: 1s, 2s, 4s ... 30s).
    bool usable(Clock::time_point now = Clock::now()) const;
    void on_connect_failure(Clock::time_point now = Clock::now());
    void on_connect_success();

private:
    friend class ServerLease;
    std::string name_;
    boost::asio::ip::tcp::endpoint endpoint_;
    unsigned weight_;
    std::atomic<std::int64_t> in_flight_{0};
    std::atomic<std::int64_t> blocked_until_ns_{0};
    std::atomic<std::uint32_t> consecutive_failures_{0};
};

// Holds one in-flight slot on a server; the destructor gives it back, so a
// cancelled or failed request can never leak a count.
class ServerLease {
public:
    ServerLease() = default;
    explicit ServerLease(UpstreamServer* s) : server_(s) {
        if (server_) server_->in_flight_.fetch_add(1, std::memory_order_relaxed);
    }
    ServerLease(ServerLease&& o) noexcept : server_(o.server_) { o.server_ = nullptr; }
    ServerLease& operator=(ServerLease&& o) noexcept {
        if (this != &o) {
            release();
            server_ = o.server_;
            o.server_ = nullptr;
        }
        return *this;
    }
    ServerLease(const ServerLease&) = delete;
    ServerLease& operator=(const ServerLease&) = delete;
    ~ServerLease() { release(); }

    UpstreamServer* get() const { return server_; }
    UpstreamServer* operator->() const { return server_; }
    explicit operator bool() const { return server_ != nullptr; }
    void release() {
        if (server_) server_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
        server_ = nullptr;
    }

private:
    UpstreamServer* server_ = nullptr;
};

}  // namespace dsgw::upstream
