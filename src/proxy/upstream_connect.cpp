// The upstream side of an exchange: server slot, connection, retries, and what failures cost a
// server.

#include "proxy/upstream_connect.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/tls/context.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"
#include "net/tcp_read.hpp"
#include "proxy/client_side.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace dsgw::proxy {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using net::Task;
using net::nothrow;

// A server that sends bytes past its responses is warned about this often.
constexpr auto kProtocolWarningEvery = std::chrono::seconds(60);

// "host" of "host:port" or "[v6]:port".
std::string host_of(const std::string& host_port) {
    auto colon = host_port.rfind(':');
    std::string h = host_port.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[') h = h.substr(1, h.size() - 2);
    return h;
}

struct OpenFailure {
    error_code ec;
    bool timeout = false;
    const char* what = "";  // "connect failed", "TLS handshake timed out", ...
};

// TLS to the upstream, when configured, within the connect timeout.
Task<error_code> upstream_handshake(UpstreamSide& side, Deadline& deadline,
                                    const upstream::UpstreamServer& server) {
    auto* tls = side.upstream->tls();
    auto& conn = *side.conn;
    if (!tls) {
        conn.stream.emplace(conn.socket);
        co_return error_code{};
    }
    conn.tls = std::make_unique<net::ClientTls>(conn.socket, tls->context());
    conn.stream.emplace(conn.socket, *conn.tls);
    tls->prepare(conn.tls->native_handle(), host_of(server.authority()));
    deadline.arm(Phase::connect, side.upstream->config().timeouts.connect);
    auto [ec] = co_await conn.tls->async_handshake(asio::ssl::stream_base::client, nothrow);
    deadline.disarm();
    co_return ec;
}

// A new connection to `server` in side.conn: TCP connect, then TLS when the
// upstream uses it, both within the connect timeout. Nothing on success.
Task<std::optional<OpenFailure>> open_upstream(UpstreamSide& side, ClientSide& client,
                                               upstream::UpstreamServer& server) {
    auto& deadline = client.deadline;
    side.conn = std::make_shared<upstream::UpstreamConnection>(client.worker.io(), &server);
    deadline.arm(Phase::connect, side.upstream->config().timeouts.connect);
    auto [ec] = co_await side.conn->socket.async_connect(server.endpoint(), nothrow);
    bool timeout = deadline.timed_out(Phase::connect);
    deadline.disarm();
    if (ec) co_return OpenFailure{ec, timeout, timeout ? "connect timed out" : "connect failed"};
    error_code ignored;
    side.conn->socket.set_option(tcp::no_delay(true), ignored);
    side.conn->socket.non_blocking(true, ignored);  // for Stream::write_now()
    if (!side.upstream->tls()) net::enable_read_hint(side.conn->socket);
    const auto hec = co_await upstream_handshake(side, deadline, server);
    if (hec) {
        timeout = deadline.timed_out(Phase::connect);
        co_return OpenFailure{hec, timeout,
                              timeout ? "TLS handshake timed out" : "TLS handshake failed"};
    }
    co_return std::nullopt;
}

// A slot on a server with room, at once (no coroutine: the usual case).
bool try_lease(UpstreamSide& side, const balancer::PickContext& ctx) {
    if (auto* queue = side.upstream->queue())
        side.lease = queue->try_acquire(ctx);
    else
        side.lease = upstream::ServerLease(side.upstream->balancer().pick(ctx));
    return static_cast<bool>(side.lease);
}

// When try_lease() found no server with room: no usable server is a 503;
// servers at their max_in_flight cap mean a wait in the upstream's queue (a
// full queue, or a wait that times out, is a 503 with Retry-After). Nothing
// when a slot was granted; a failure with no status when the client left.
Task<std::optional<Failure>> wait_for_server(UpstreamSide& side, ClientSide& client,
                                             const balancer::PickContext& ctx, bool request_read) {
    static constexpr std::string_view kRetryAfter = "Retry-After: 1\r\n";
    auto* queue = side.upstream->queue();
    if (!queue || !side.upstream->any_usable(ctx.now))
        co_return Failure{503, !request_read, "no healthy upstream server"};
    auto waiter =
        std::make_shared<upstream::AdmissionQueue::Waiter>(client.stream.socket().get_executor());
    waiter->ctx = ctx;
    waiter->timer.expires_after(side.upstream->config().queue.timeout);
    if (!queue->enqueue(waiter))
        co_return Failure{503, !request_read, "every upstream server is busy and the queue is full",
                          std::string(kRetryAfter)};
    side.queued = waiter;
    if (request_read) client.watch_now();  // a client that leaves gives its place up
    if (waiter->state != upstream::AdmissionQueue::Waiter::State::granted)
        co_await waiter->timer.async_wait(nothrow);
    side.queued.reset();
    side.lease = queue->leave(*waiter);
    side.book.queue_waited(Clock::now() - ctx.now);
    if (side.lease) co_return std::nullopt;
    if (client.gone) co_return Failure{};
    co_return Failure{503, !request_read, "no upstream server became free in time",
                      std::string(kRetryAfter)};
}

}  // namespace

// Whether the server sent anything past the end of the response that just
// ended: bytes buffered (by us, or by OpenSSL on a TLS connection), or left in
// the kernel by the last plain read. Such a connection is never reused (the
// bytes would be taken for the next request's response, maybe another
// client's). `fin` is set when a FIN alone is waiting: the server is
// closing, which is no fault.
static bool bytes_after_response(upstream::UpstreamConnection& conn, bool& fin) {
    fin = false;
    if (conn.buffer.size() > 0 || conn.inq > 1) return true;
    // Over TLS the kernel count is unknown (-1); what OpenSSL holds,
    // decrypted or not, is bytes after the response too.
    if (conn.stream->tls_pending()) return true;
    if (conn.inq != 1) return false;
    char c;  // TCP_INQ says 1 for one byte and for a FIN alone
    const auto r = ::recv(conn.socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    fin = r == 0;
    return r > 0;
}

void UpstreamSide::finish(bool reusable, unsigned status, upstream::UpstreamPool& pool) {
    if (conn) {
        bool fin = false;
        if (reusable && bytes_after_response(*conn, fin)) {
            book.bytes_after_response(lease.get(), status);
            reusable = false;
        }
        if (reusable && !fin)
            pool.put(std::move(conn), upstream->config().keepalive);
        else
            abort();
        conn.reset();
    }
    lease.release();
}

void UpstreamSide::close() {
    if (!conn) return;
    error_code ec;
    conn->socket.close(ec);
}

void UpstreamSide::abort() {
    if (!conn) return;
    error_code ec;
    conn->socket.close(ec);
    conn.reset();
}

const metrics::ServerMetrics* ServerBook::metrics_of(const upstream::UpstreamServer* server) const {
    if (!metrics_ || !upstream_ || !server) return nullptr;
    const auto& servers = upstream_->servers();
    for (std::size_t s = 0; s < servers.size(); ++s)
        if (servers[s].get() == server) return metrics_->server(index_, s);
    return nullptr;
}

void ServerBook::fault(upstream::UpstreamServer* server, const ServerFault& f) const {
    if (const auto* sm = metrics_of(server)) sm->error(f.kind);
    const std::string name = server ? server->name() : std::string("-");
    if (f.quiet)
        spdlog::debug("upstream {} server {}: {}: {}", upstream_->name(), name, f.what,
                      f.ec.message());
    else if (f.ec)
        spdlog::warn("upstream {} server {}: {}: {}", upstream_->name(), name, f.what,
                     f.ec.message());
    else
        spdlog::warn("upstream {} server {}: {}", upstream_->name(), name, f.what);
    if (!f.eject || !server) return;
    if (!server->on_failure(Clock::now(), upstream_->failure_threshold())) return;
    // Logged once per ejection, not per request: a dead server under load
    // must not flood the log.
    if (f.quiet)
        spdlog::warn("upstream {} server {}: ejected after {} consecutive failures (last: {}: {})",
                     upstream_->name(), name, upstream_->failure_threshold(), f.what,
                     f.ec.message());
    else
        spdlog::warn("upstream {} server {}: ejected after {} consecutive failures",
                     upstream_->name(), name, upstream_->failure_threshold());
}

void ServerBook::queue_waited(Clock::duration d) const {
    if (metrics_)
        metrics_->upstream(index_)->queue_wait->observe(std::chrono::duration<double>(d).count());
}

void ServerBook::prefix_looked_up(bool hit) const {
    if (!metrics_) return;
    const auto* m = metrics_->upstream(index_);
    m->prefix_lookups->Increment();
    if (hit) m->prefix_hits->Increment();
}

void ServerBook::eject_step(upstream::UpstreamServer& server) const {
    if (server.on_failure(Clock::now(), upstream_->failure_threshold()))
        spdlog::warn("upstream {} server {}: ejected after {} consecutive failures",
                     upstream_->name(), server.name(), upstream_->failure_threshold());
}

void ServerBook::bytes_after_response(upstream::UpstreamServer* server, unsigned status) const {
    if (const auto* sm = metrics_of(server)) sm->error(metrics::UpstreamErrorKind::protocol);
    if (server && server->may_warn(Clock::now(), kProtocolWarningEvery))
        spdlog::warn(
            "upstream {} server {}: bytes after the end of a response (HTTP {}); "
            "the connection is closed, not reused (warned once a minute)",
            upstream_->name(), server->name(), status);
}

bool send_at_once(UpstreamSide& side, ClientSide& client, const balancer::PickContext& ctx,
                  const std::vector<asio::const_buffer>& iov, SendStart& start) {
    if (!try_lease(side, ctx)) return false;
    auto* server = side.lease.get();
    side.server_name = server->name();
    start.leased = true;
    side.conn = client.worker.pool().take(server);
    if (!side.conn) return false;
    start.wrote = true;
    start.over = side.conn->stream->write_now(iov, start.ec, start.done);
    if (!start.over || start.ec) return false;
    ++side.conn->requests;
    return true;
}

Task<std::optional<Failure>> connect_and_send(UpstreamSide& side, ClientSide& client,
                                              balancer::PickContext ctx,
                                              const std::vector<asio::const_buffer>& iov,
                                              bool request_read, SendStart start) {
    const auto& ucfg = side.upstream->config();
    unsigned attempts = 0;
    std::optional<Failure> last;
    for (;;) {
        if (start.leased) {
            start.leased = false;  // send_at_once() leased it
        } else {
            ctx.now = Clock::now();
            if (!try_lease(side, ctx)) {
                // A retry that finds no other server answers with the last failure.
                if (attempts > 0) {
                    if (!last) last = Failure{502, !request_read, "upstream failed"};
                    co_return *last;
                }
                auto failure = co_await wait_for_server(side, client, ctx, request_read);
                if (failure) co_return failure;
            }
            side.server_name = side.lease->name();
            side.conn = client.worker.pool().take(side.lease.get());
        }
        auto* server = side.lease.get();
        const bool reused = side.conn != nullptr;
        if (!side.conn) {
            const auto open = co_await open_upstream(side, client, *server);
            if (client.gone) co_return Failure{};
            if (open) {
                const ServerFault fault{metrics::UpstreamErrorKind::connect,
                                        open->what,
                                        open->ec,
                                        /*eject=*/true,
                                        /*retryable=*/true,
                                        /*quiet=*/true};
                side.book.fault(server, fault);
                side.abort();
                // A connect or handshake that never completes is a timeout (504).
                last = Failure{open->timeout ? 504u : 502u, !request_read,
                               std::string("upstream ") + open->what};
                if (fault.retryable && attempts < ucfg.retries) {
                    ++attempts;
                    ctx.exclude = server;
                    side.lease.release();
                    continue;
                }
                co_return *last;
            }
        }
        auto& stream = *side.conn->stream;
        error_code ec;
        std::size_t done = 0;
        bool over = false;
        if (start.wrote) {  // send_at_once() began it
            start.wrote = false;
            over = start.over;
            ec = start.ec;
            done = start.done;
        } else {
            over = stream.write_now(iov, ec, done);
        }
        if (!over) {
            client.deadline.arm(Phase::upstream_write, ucfg.timeouts.idle);
            auto [wec, n] = co_await stream.write_rest(iov, done);
            client.deadline.disarm();
            ec = wec;
        }
        if (client.gone) co_return Failure{};
        if (ec) {
            side.abort();
            // A pooled connection the server had closed: the request never
            // reached it, so another server may take it.
            if (reused && attempts < ucfg.retries) {
                ++attempts;
                side.lease.release();
                continue;
            }
            co_return Failure{502, true, "upstream failed while the request was sent"};
        }
        ++side.conn->requests;
        co_return std::nullopt;
    }
}

}  // namespace dsgw::proxy
