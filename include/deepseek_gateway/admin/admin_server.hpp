#pragma once
// The admin listener (SPEC §5): plain HTTP/1.1 with keep-alive on its own
// address, serving
//   GET /metrics   Prometheus text format 0.0.4
//   GET /healthz   200 "ok" while the process runs
//   GET /readyz    200 "ready" once told the listeners are bound and while the
//                  readiness check passes (every upstream has a usable server);
//                  503 with the reason otherwise (also while draining)
// HEAD is answered like GET without the body; another method on these paths
// gets 405, any other path 404. A peer refused by admin.access is closed at
// accept with a reset, before a byte is read.
//
// It runs on an io_context it is given (a worker's event loop), so a scrape is
// never queued behind a thread pool; a render takes the families' mutexes,
// never a lock the request path takes.

#include "deepseek_gateway/access/policy.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace dsgw::admin {

// Why the gateway is not ready, or nothing when it is. Runs on the admin
// server's io_context thread, once per /readyz request.
using ReadinessCheck = std::function<std::optional<std::string>()>;

class AdminServer {
public:
    // `metrics` must outlive the io_context's last handler of this server.
    AdminServer(boost::asio::io_context& io, const config::AdminConfig& cfg,
                metrics::Metrics& metrics);
    // Stops accepting (posted to the io_context). Destroy the server before
    // its io_context, after that io_context has stopped running or while it
    // still runs.
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Before start(); runs on the io_context thread.
    void set_readiness_check(ReadinessCheck check);

    // Binds admin.address (without SO_REUSEPORT: a second gateway on the same
    // address fails instead of sharing it), logs "admin listening on
    // HOST:PORT" and starts accepting on the io_context. Throws
    // std::system_error whose what() names admin.address and the address.
    void start();
    // From any thread: close the acceptor and every open admin connection.
    void stop();

    // From any thread: admin.metrics (at start and on reload).
    void set_metrics_enabled(bool on);

    // The bound address (the real port when admin.address has port 0).
    boost::asio::ip::tcp::endpoint local_endpoint() const;

    // From any thread. false (the initial state) until the proxy listeners
    // are bound; set it false again when draining starts.
    void set_serving(bool serving);
    // From any thread: a new admin.access (on reload).
    void update_access(access::Policy policy);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace dsgw::admin
