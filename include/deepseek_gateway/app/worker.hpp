#pragma once
// One event loop per thread. A worker owns its io_context, its listeners'
// acceptors, the client sessions accepted on them and its upstream connection
// pool: a client connection and its upstream connection live on the same
// thread, so nothing on the request path takes a lock.
//
// Everything here runs on the worker thread except where a comment says "from
// any thread": the App reaches a worker by post()ing to io().

#include "deepseek_gateway/log/access_log.hpp"
#include "deepseek_gateway/net/listener.hpp"
#include "deepseek_gateway/upstream/pool.hpp"
#include "deepseek_gateway/util/block_cache.hpp"
#include "deepseek_gateway/util/delay_queue.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <memory_resource>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace dsgw::app {

class Runtime;

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
    // Called on the worker thread when draining starts (SIGTERM), or when the
    // session's listener is removed or moved by a reload: close the
    // connection now if it is between requests, else after the current
    // response.
    virtual void on_drain() = 0;
};

// What a reload changes on one worker (built by the App, applied on the
// worker thread by Worker::reconfigure()).
struct ListenerChanges {
    // Listeners that stop accepting (removed, or moved to another address),
    // by name. Their open connections finish their current request.
    std::vector<std::string> unbind;
    // New acceptors, already bound (for a moved listener: same name, new
    // address). Started after `unbind` is applied.
    std::vector<std::unique_ptr<net::Listener>> bind;
    // limits.max_connections divided between the workers, for every listener.
    std::uint64_t max_connections = 0;
};

// Final: io() and the other net::ListenerHost calls through a Worker& are
// direct calls.
class Worker final : public net::ListenerHost {
public:
    Worker(unsigned index, std::shared_ptr<const Runtime> runtime,
           std::shared_ptr<log::AccessLog> access_log);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    unsigned index() const { return index_; }
    boost::asio::io_context& io() override { return io_; }
    upstream::UpstreamPool& pool() { return pool_; }
    // Client watches wait here before they are armed (see proxy/connection.cpp).
    util::DelayQueue& watch_queue() { return watch_queue_; }
    // Blocks for the sessions' per-exchange arenas, recycled on this thread.
    std::pmr::memory_resource& header_memory() { return header_memory_; }

    // The configuration new requests use. Sessions copy it per request; the
    // copy shares a control block local to this worker, so the worker can tell
    // when none of its sessions uses an old runtime any more.
    const std::shared_ptr<const Runtime>& runtime() const { return runtime_; }
    // Swaps in a new runtime and access log; idle pooled connections to
    // servers that left the configuration are closed now, and again once no
    // session of this worker still runs a request on the old runtime.
    void set_runtime(std::shared_ptr<const Runtime> rt, std::shared_ptr<log::AccessLog> access_log);
    // A reload: set_runtime(), then the listener changes.
    void reconfigure(std::shared_ptr<const Runtime> rt, std::shared_ptr<log::AccessLog> access_log,
                     ListenerChanges changes);
    log::AccessLog& access_log() { return *access_log_; }

    // Before start(): a listener bound at start-up.
    void add_listener(std::unique_ptr<net::Listener> l);

    // net::ListenerHost: a listener's access lists and metrics in the current
    // runtime, and its accepted connections, each made a session.
    Entry listener_entry(std::string_view name) const override;
    void on_connection(net::Listener& listener, net::Socket socket,
                       const access::Admission& admission) override;

    // Runs the event loop on a new thread.
    void start();
    // From any thread: stop accepting; open sessions finish their current
    // request and close; idle pooled connections are closed (also those that
    // finishing requests give back). `on_idle` runs (on the worker thread)
    // once no session is left.
    void drain(std::function<void()> on_idle);
    // From any thread: stop the event loop now.
    void stop();
    void join();

    bool draining() const { return draining_; }

    // Sessions report their life here. The counters are read from any thread
    // (systemd STATUS=), relaxed: they are statistics, not synchronisation.
    void session_started() { sessions_.fetch_add(1, std::memory_order_relaxed); }
    void session_ended();
    std::uint64_t sessions() const { return sessions_.load(std::memory_order_relaxed); }
    // One per request served (any status).
    void note_request() { requests_.fetch_add(1, std::memory_order_relaxed); }
    std::uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }

    // Every open client session, so a drain can close idle keep-alive
    // connections at once. Registered for the life of the connection. A
    // session registers from its constructor, which on_connection() runs
    // (proxy::start_session) between accepting_from(&listener) and
    // accepting_from(nullptr): that is how the worker knows each session's
    // listener without the session having to say.
    void add_session(DrainTarget* s) { sessions_open_.emplace(s, accepting_); }
    void remove_session(DrainTarget* s) { sessions_open_.erase(s); }
    void accepting_from(const net::Listener* l) { accepting_ = l; }

    // Listeners accepting now (for tests and status).
    std::size_t listener_count() const { return listeners_.size(); }

private:
    void retire_listener(std::unique_ptr<net::Listener> l);
    void purge_retired_listeners();
    void sweep_retired_runtimes();
    void call_on_idle_if_done();

    unsigned index_;
    // One thread runs it, and every socket of the worker is used from that
    // thread only (other threads post()), so the reactor needs no lock per
    // socket operation. Posting and timers stay locked: other threads post.
    EventLoop io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    upstream::UpstreamPool pool_{io_};
    // 10 ms: a client that hangs up is noticed within 20 ms (issue 2 asks
    // for 100 ms), and a request answered sooner never arms a watch.
    util::DelayQueue watch_queue_{io_, std::chrono::milliseconds(10)};
    // Up to 64 free blocks of up to 8 KiB: the arenas' first blocks (2 KiB
    // and what the arena adds for itself), reused without a pool's search.
    util::BlockCache header_memory_{64, 8 * 1024};
    std::shared_ptr<const Runtime> runtime_;
    std::shared_ptr<log::AccessLog> access_log_;
    std::vector<std::unique_ptr<net::Listener>> listeners_;
    // Stopped listeners that still have open connections (sessions refer to
    // their listener): freed when the last one closes.
    std::vector<std::unique_ptr<net::Listener>> retired_listeners_;
    // Runtimes replaced by a reload that a session may still be using: the
    // pool is swept of their servers' connections once they are unused.
    std::vector<std::shared_ptr<const Runtime>> retired_runtimes_;
    boost::asio::steady_timer sweep_timer_{io_};
    bool sweep_armed_ = false;
    std::thread thread_;
    bool draining_ = false;
    bool tearing_down_ = false;
    std::atomic<std::uint64_t> sessions_{0};
    std::atomic<std::uint64_t> requests_{0};
    std::function<void()> on_idle_;
    std::unordered_map<DrainTarget*, const net::Listener*> sessions_open_;
    const net::Listener* accepting_ = nullptr;
};

}  // namespace dsgw::app
