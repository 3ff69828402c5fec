#pragma once
// The upstream side of one exchange: a slot on a server (leased at once, or
// after a wait in the upstream's queue), a connection to it (pooled, or
// opened: TCP, then TLS), the request head delivered, and the retry rules.
// What a failure costs a server goes through one small interface, ServerBook.

#include "deepseek_gateway/balancer/balancer.hpp"
#include "deepseek_gateway/upstream/admission.hpp"
#include "deepseek_gateway/upstream/pool.hpp"
#include "proxy/deadline.hpp"
#include "proxy/outcome.hpp"

#include <boost/asio/buffer.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace dsgw::app {
class Worker;
}
namespace dsgw::metrics {
class ConfigMetrics;
struct ServerMetrics;
}  // namespace dsgw::metrics
namespace dsgw::upstream {
class Upstream;
}

namespace dsgw::proxy {

class ClientSide;

// The bookkeeping of one upstream's servers, as nghttpx's ConnectBlocker:
// fault() counts a failure (upstream_errors_total{kind}), steps the server
// towards passive ejection when the fault says so, and logs it; success()
// resets its failure count.
class ServerBook {
public:
    ServerBook() = default;
    ServerBook(const upstream::Upstream* upstream, const metrics::ConfigMetrics* metrics,
               std::size_t upstream_index)
        : upstream_(upstream), metrics_(metrics), index_(upstream_index) {}

    // The metric handles of `server`, or null (no metrics, or not ours).
    const metrics::ServerMetrics* metrics_of(const upstream::UpstreamServer* server) const;
    void fault(upstream::UpstreamServer* server, const ServerFault& f) const;
    // A failure that only counts towards ejection (a 5xx with passive.on_5xx).
    void eject_step(upstream::UpstreamServer& server) const;
    void success(upstream::UpstreamServer& server) const { server.on_success(); }
    // A wait in the queue ended (granted or not).
    void queue_waited(Clock::duration d) const;
    // A prompt prefix_affinity looked up; `hit`: the server it went to had
    // served part of it.
    void prefix_looked_up(bool hit) const;
    // Counted, and logged at most once a minute per server: bytes after the
    // end of a response (HTTP `status`).
    void bytes_after_response(upstream::UpstreamServer* server, unsigned status) const;

private:
    const upstream::Upstream* upstream_ = nullptr;
    const metrics::ConfigMetrics* metrics_ = nullptr;
    std::size_t index_ = 0;
};

// What an exchange holds on the upstream side.
struct UpstreamSide {
    const upstream::Upstream* upstream = nullptr;
    ServerBook book;
    upstream::ServerLease lease;
    std::string_view server_name;  // the last server leased, for the access log
    std::shared_ptr<upstream::AdmissionQueue::Waiter> queued;  // while waiting for a slot
    std::shared_ptr<upstream::UpstreamConnection> conn;

    // Closes the connection (the server stops generating) and drops it.
    void abort();
    // Closes it but keeps the object: an operation on it may be under way
    // (the client hung up while the exchange waits for the server).
    void close();
    // The exchange is over: the connection goes back to `pool` when
    // `reusable` (the exchange was clean, both sides allow keep-alive, the
    // request was read to its end) and nothing came after the response (a
    // protocol error, HTTP `status`); else it is closed. The slot is given back.
    void finish(bool reusable, unsigned status, upstream::UpstreamPool& pool);
};

// Where send_at_once() stopped, for connect_and_send() to go on from.
struct SendStart {
    bool leased = false;  // side.lease holds a server (and side.conn a pooled
                          // connection to it, if the pool had one)
    bool wrote = false;   // the write to side.conn began
    bool over = false;    // ... and ended: all of it went, or `ec`
    boost::system::error_code ec;
    std::size_t done = 0;  // what of it went
};

// The usual case, with no coroutine: a server with room, a pooled
// connection to it, and `iov` written at once. True when it went so; else
// connect_and_send() goes on from `start`.
bool send_at_once(UpstreamSide& side, ClientSide& client, const balancer::PickContext& ctx,
                  const std::vector<boost::asio::const_buffer>& iov, SendStart& start);

// Leases a server (or queues for one), takes a pooled connection or opens
// one, and writes `iov` (the rewritten head and the body bytes at hand) to
// it, going on from where send_at_once() stopped. A connect failure, or a write that fails on a
// pooled connection the server had closed, is retried on another server up to `retries` times: in
// both the request cannot have reached a server. Returns the failure that ended the exchange (with
// no status when the client left), or nothing: then side.lease and side.conn hold the server and
// its connection.
net::Task<std::optional<Failure>> connect_and_send(
    UpstreamSide& side, ClientSide& client, balancer::PickContext ctx,
    const std::vector<boost::asio::const_buffer>& iov, bool request_read, SendStart start);

}  // namespace dsgw::proxy
