#pragma once
// One event loop per thread. A worker owns its io_context, its listeners'
// acceptors, the client sessions accepted on them and its upstream connection
// pool: a client connection and its upstream connection live on the same
// thread, so nothing on the request path takes a lock.

#include "deepseek_gateway/log/access_log.hpp"
#include "deepseek_gateway/upstream/pool.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_set>
#include <vector>

namespace dsgw::net {
class Listener;
}

namespace dsgw::app {

// An io_context whose pending handlers (and the sessions they own) can be
// destroyed while the worker's other members are still alive.
class EventLoop : public boost::asio::io_context {
public:
    using boost::asio::io_context::io_context;
    void destroy_handlers() { shutdown(); }
};

class DrainTarget {
public:
    virtual ~DrainTarget() = default;
    // Called on the worker thread when draining starts: close the connection
    // now if it is between requests, else after the current response.
    virtual void on_drain() = 0;
};

class Worker {
public:
    Worker(unsigned index, std::shared_ptr<const upstream::Runtime> runtime,
           std::shared_ptr<log::AccessLog> access_log);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    unsigned index() const { return index_; }
    boost::asio::io_context& io() { return io_; }
    upstream::UpstreamPool& pool() { return pool_; }

    // Read on the worker thread only; replaced by post()ing set_runtime().
    const std::shared_ptr<const upstream::Runtime>& runtime() const { return runtime_; }
    void set_runtime(std::shared_ptr<const upstream::Runtime> rt,
                     std::shared_ptr<log::AccessLog> access_log);
    log::AccessLog& access_log() { return *access_log_; }

    void add_listener(std::unique_ptr<net::Listener> l);

    // Runs the event loop on a new thread.
    void start();
    // From any thread: stop accepting; open sessions finish their current
    // request and close. `on_idle` runs (on the worker thread) once no session
    // is left.
    void drain(std::function<void()> on_idle);
    // From any thread: stop the event loop now.
    void stop();
    void join();

    bool draining() const { return draining_; }
    void session_started() { ++sessions_; }
    void session_ended();
    std::uint64_t sessions() const { return sessions_; }

    // Every open client session, so a drain can close idle keep-alive
    // connections at once. Registered for the life of the connection.
    void add_session(DrainTarget* s) { sessions_open_.insert(s); }
    void remove_session(DrainTarget* s) { sessions_open_.erase(s); }

private:
    unsigned index_;
    EventLoop io_{1};
    upstream::UpstreamPool pool_{io_};
    std::shared_ptr<const upstream::Runtime> runtime_;
    std::shared_ptr<log::AccessLog> access_log_;
    std::vector<std::unique_ptr<net::Listener>> listeners_;
    std::thread thread_;
    bool draining_ = false;
    std::uint64_t sessions_ = 0;
    std::function<void()> on_idle_;
    std::unordered_set<DrainTarget*> sessions_open_;
};

}  // namespace dsgw::app
