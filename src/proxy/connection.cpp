// One client connection's life: PROXY header, TLS handshake, the keep-alive loop of exchanges,
// drain, hang-up watch, close.
//
// The flow, in the order the data moves (docs/architecture.md):
//   Connection::run()      PROXY header (trusted proxies), TLS handshake
//   Connection::serve()    per request: read the head (limits: 431/413/400,
//                          header_timeout: 408), then one Exchange
//                          (exchange.hpp: admit, inspect, route, forward,
//                          relay, finish), while keep-alive lasts
//   Connection::close()    close_notify, lingering close, close(2)
//
// GCC 12 miscompiles `if (!co_await f())` (the resumed frame is garbage):
// bind the awaited value to a local first, as done throughout src/proxy.

#include "deepseek_gateway/proxy/session.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/net/listener.hpp"
#include "deepseek_gateway/net/refusals.hpp"
#include "deepseek_gateway/tls/context.hpp"
#include "deepseek_gateway/tls/server_stream.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"
#include "net/tcp_read.hpp"
#include "proxy/client_side.hpp"
#include "proxy/exchange.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <vector>

namespace dsgw::proxy {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using net::Task;
using net::nothrow;

// Lingering close (docs/security.md): after answering a request it has not
// read to its end, the gateway half-closes and reads what the client still
// sends, for this long and this much at most, so the client is not reset
// before it reads the answer.
constexpr auto kLingerTime = std::chrono::seconds(5);
constexpr std::uint64_t kLingerBytes = 64 * 1024 * 1024;

// The TLS context of listener `name` in the worker's configuration, or null.
std::shared_ptr<tls::ServerContext> listener_tls(app::Worker& worker, std::string_view name) {
    const auto* l = worker.runtime()->listener(name);
    return l ? l->tls : nullptr;
}

class Connection final : public std::enable_shared_from_this<Connection>,
                         public app::DrainTarget,
                         public ClientSide,
                         private util::DelayQueue::Entry,
                         private Deadline::Owner {
public:
    Connection(app::Worker& worker, net::Listener& listener, net::Socket socket,
               const access::Admission& admission, std::shared_ptr<tls::ServerContext> tls)
        : ClientSide(worker, stream_, deadline_),
          listener_(listener),
          socket_(std::move(socket)),
          tls_ctx_(std::move(tls)),
          tls_(tls_ctx_ ? std::make_unique<tls::ServerStream>(socket_, tls_ctx_->context())
                        : nullptr),
          stream_(tls_ ? net::Stream(socket_, *tls_) : net::Stream(socket_)),
          deadline_(worker.io(), *this),
          admission_(admission),
          exchange_(*this, worker.header_memory()) {
        const auto& rt = worker.runtime();
        listener_name = listener_.name();
        decision = admission.decision();
        if (const auto* l = rt->listener(listener_.name()); l && l->metrics) {
            accept_metrics_ = rt->metrics;
            lm_ = l->metrics;
            lm_->connection_opened();
        }
        error_code ec;
        // The listener judged the peer already (admission.client); asking
        // the socket again would cost a getpeername(2) per connection.
        conn_ip = admission.client;
        if (conn_ip.is_unspecified())
            conn_ip = access::normalize(socket_.remote_endpoint(ec).address());
        ip = conn_ip;
        ip_text = ip.to_string();
        socket_.set_option(tcp::no_delay(true), ec);
        // For Stream::write_now(); the TLS stream has set it already. Asio
        // would set it at the first read anyway: no extra system call.
        if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
        // TCP_INQ for the hinted reads comes from the listening socket.
        worker.session_started();
        worker.add_session(this);
    }

    ~Connection() override {
        if (lm_) lm_->connection_closed();
        worker.remove_session(this);
        listener_.connection_closed();
        worker.session_ended();
    }

    Task<void> run() {
        if (admission_.action == access::AcceptAction::read_proxy_header) {
            const bool admitted = co_await read_proxy_header();
            if (!admitted) {
                co_await close();
                co_return;
            }
        }
        const bool ready = co_await handshake();
        if (ready) co_await serve();
        co_await close();
    }

    void on_drain() override {
        if (!in_request_) {
            error_code ec;
            socket_.cancel(ec);
        }
    }

    // ---- ClientSide: the hang-up watch ---------------------------------
    //
    // Asio's async_wait costs an epoll_ctl each time it is started, so the
    // watch over a response is deferred: watch_soon() queues the connection
    // on the worker's watch queue, and only a response still under way
    // 10-20 ms later arms the real watch. Most responses never do.

    void watch_soon() override {
        watching_ = true;
        worker.watch_queue().push(*this);
    }

    void watch_now() override {
        watching_ = true;
        ++watch_gen_;
        socket_.async_wait(tcp::socket::wait_read,
                           [self = shared_from_this(), gen = watch_gen_](error_code ec) {
                               if (ec || gen != self->watch_gen_ || !self->watching_) return;
                               self->on_readable();
                           });
    }

    void stop_watch() override {
        // The pending wait, if any, completes later and is ignored.
        worker.watch_queue().remove(*this);
        watching_ = false;
        ++watch_gen_;
    }

    void on_gone() override {
        gone = true;
        exchange_.on_client_gone();
        error_code ec;
        socket_.cancel(ec);
    }

private:
    void on_due() override {
        if (watching_ && !closed_) watch_now();
    }

    // While a response is relayed, the client may only send a pipelined
    // request (read after this response) or go away.
    void on_readable() {
        bool would_block = false;
        const bool left = stream_.peer_left(would_block);
        if (would_block) {
            watch_now();
            return;
        }
        if (left) on_gone();
    }

    // ---- Deadline::Owner ------------------------------------------------

    void on_deadline(Phase phase) override {
        if (closed_) return;
        if (is_client_phase(phase)) {
            error_code ec;
            socket_.cancel(ec);
        } else {
            exchange_.cancel_upstream();
        }
    }

    std::shared_ptr<void> hold() override { return shared_from_this(); }

    // ---- the connection's life --------------------------------------------

    // The worker's current configuration for this connection's listener.
    // False when the listener was removed or moved by a reload, or the
    // worker drains: the connection then closes after its current request.
    bool refresh_runtime() {
        if (listener_.stopped()) return false;
        const auto& current = worker.runtime();
        if (current == rt && lc) return true;
        rt = current;
        const auto* l = rt->listener(listener_.name());
        lc = l ? l->config : nullptr;
        listener_index = l ? l->index : 0;
        return lc != nullptr;
    }

    // The PROXY v1/v2 header a trusted proxy sends first, before TLS and
    // HTTP, read with exact reads so that not a byte past it is taken; then
    // the allowlist is applied to the address it carries. False when the
    // connection is to be closed.
    Task<bool> read_proxy_header() {
        const auto& current = worker.runtime();
        const auto* entry = current->listener(listener_.name());
        if (!entry) co_return false;
        const config::ListenerConfig* l = entry->config;
        deadline_.arm(Phase::request_head, current->config->limits.header_timeout);
        std::vector<std::uint8_t> buf;
        access::ProxyHeader h{};
        for (;;) {
            h = access::parse_proxy_header(buf);
            if (h.status != access::ProxyStatus::need_more) break;
            const std::size_t want = h.min_total > buf.size() ? h.min_total - buf.size() : 1;
            const std::size_t have = buf.size();
            buf.resize(have + want);
            auto [ec, n] =
                co_await asio::async_read(socket_, asio::buffer(buf.data() + have, want), nothrow);
            if (ec || deadline_.timed_out(Phase::request_head)) {
                buf.resize(have + n);
                h.status = access::ProxyStatus::invalid;
                h.error = "connection closed or timed out before the PROXY header ended";
                break;
            }
        }
        deadline_.disarm();
        error_code ignored;
        auto peer = socket_.remote_endpoint(ignored);
        admission_ = access::admit_proxied(h, access::normalize(peer.address()), l->access.policy,
                                           l->access.trusted_proxies);
        if (admission_.action == access::AcceptAction::refuse) {
            net::refusal_log().log({listener_.name(), admission_.client, admission_.reason,
                                    access::normalize(peer.address()),
                                    h.error ? std::string_view(h.error) : std::string_view()});
            if (admission_.reason == access::DenyReason::bad_proxy_header ||
                l->access.on_deny == config::OnDeny::close) {
                gone = true;
                co_return false;
            }
        }
        decision = admission_.decision();
        conn_ip = admission_.client;
        ip = conn_ip;
        ip_text = ip.to_string();
        co_return true;
    }

    // TLS: the handshake, within header_timeout. False when it failed.
    Task<bool> handshake() {
        if (!tls_) co_return true;
        deadline_.arm(Phase::request_head, worker.runtime()->config->limits.header_timeout);
        const error_code ec = co_await tls_->handshake();
        deadline_.disarm();
        if (ec) {
            if (lm_ && lm_->tls_handshake_errors) lm_->tls_handshake_errors->Increment();
            spdlog::debug("listener {}: TLS handshake with {} failed: {}", listener_.name(),
                          ip_text, ec.message());
            gone = true;  // nothing to say to it, not even close_notify
            co_return false;
        }
        cert = tls::peer_subject(tls_->native_handle());
        co_return true;
    }

    // The keep-alive loop: one exchange per request.
    Task<void> serve() {
        while (!closed_) {
            if (!refresh_runtime()) co_return;
            const bool got = co_await read_request_head();
            if (!got) co_return;
            // A reload while the connection sat idle: the request is served
            // by the configuration in force when it arrived.
            auto arrived_rt = rt;
            const auto* arrived_lc = lc;
            const auto arrived_index = listener_index;
            last_request = !refresh_runtime();
            if (last_request) {
                rt = std::move(arrived_rt);
                lc = arrived_lc;
                listener_index = arrived_index;
            }
            in_request_ = true;
            co_await exchange_.run();
            in_request_ = false;
            exchange_.release();  // an idle keep-alive connection holds no arena block
            if (!exchange_.keep_alive() || gone || worker.draining() || last_request) co_return;
        }
    }

    // Reads and parses a request head. False when the connection is to be
    // closed (an error reply, if one was due, has been sent).
    Task<bool> read_request_head() {
        auto& req = exchange_.begin();
        const auto& limits = rt->config->limits;
        if (buf.size() > 0 || requests == 0)
            deadline_.arm(Phase::request_head, limits.header_timeout);
        else
            deadline_.arm(Phase::keepalive_idle, limits.client_idle);
        bool got_bytes = buf.size() > 0;
        for (;;) {
            error_code ec;
            auto used = parse_buffered(req, buf, ec);
            buf.consume(used);
            exchange_.count_in(used);
            if (ec) {
                deadline_.disarm();
                co_await exchange_.refuse_head(ec);
                co_return false;
            }
            if (req.is_header_done()) break;
            if (worker.draining() && !got_bytes) co_return false;

            auto [rec, n] = co_await stream_.read_some(buf, read_size);
            // A deadline that passed as this read completed with bytes is
            // spent all the same: the head's time is up.
            const bool head_timeout = deadline_.timed_out(Phase::request_head);
            if (rec || head_timeout) {
                deadline_.disarm();
                if (head_timeout && got_bytes && !gone) co_await exchange_.head_timed_out();
                co_return false;
            }
            buf.commit(n);
            adapt_read_size(n, read_size);
            if (!got_bytes) {
                got_bytes = true;
                if (deadline_.phase() == Phase::keepalive_idle)
                    deadline_.arm(Phase::request_head, limits.header_timeout);
            }
        }
        deadline_.disarm();
        ++requests;
        exchange_.head_read();
        co_return true;
    }

    Task<void> close() {
        closed_ = true;
        stop_watch();
        if (tls_ && !gone) {
            // close_notify (not waiting for the client's), bounded: a client
            // that reads nothing does not hold the connection open.
            deadline_.arm(Phase::client_write, std::chrono::seconds(1));
            co_await stream_.shutdown();  // any outcome ends the connection
            deadline_.disarm();
        }
        if (linger && !gone) co_await linger_close();
        // close(2) alone sends the FIN; a shutdown(2) first would only cost a
        // system call (failing when the client has gone).
        error_code ec;
        deadline_.cancel();
        socket_.close(ec);
    }

    // Lingering close (RFC 9112 §9.6, nginx's lingering_close): the answer
    // went out before the whole request was read. Closing now, with unread
    // bytes, makes the kernel reset the connection, and a client that writes
    // its whole body before it reads (Python's http.client, so the OpenAI
    // Python SDK) would get the reset instead of the answer. So: half-close,
    // then read and drop what the client still sends until it closes, for
    // kLingerTime and kLingerBytes at most. Over TLS the close_notify went
    // first; what follows is dropped undecrypted.
    Task<void> linger_close() {
        error_code ec;
        socket_.shutdown(tcp::socket::shutdown_send, ec);
        if (ec) co_return;
        deadline_.arm(Phase::linger, kLingerTime);
        std::uint64_t dropped = buf.size();
        buf.clear();
        auto& reactor = net::reactor_of(worker.io());
        while (dropped < kLingerBytes) {
            auto [rec, n] =
                co_await net::async_read_hinted(reactor, socket_, buf.prepare(kMaxRead), nothrow);
            if (rec) break;
            dropped += n;
        }
        deadline_.disarm();
        buf.clear();
    }

    net::Listener& listener_;
    net::Socket socket_;
    std::shared_ptr<tls::ServerContext> tls_ctx_;  // kept for the connection's life
    std::unique_ptr<tls::ServerStream> tls_;       // on TLS listeners
    net::Stream stream_;
    Deadline deadline_;
    std::shared_ptr<const metrics::ConfigMetrics> accept_metrics_;  // keeps lm_ valid
    const metrics::ListenerMetrics* lm_ = nullptr;  // the listener it was accepted on
    access::Admission admission_;
    Exchange exchange_;
    bool watching_ = false;
    std::uint64_t watch_gen_ = 0;
    bool in_request_ = false;
    bool closed_ = false;
};

}  // namespace

void start_session(app::Worker& worker, net::Listener& listener, net::Socket socket,
                   const access::Admission& admission) {
    auto tls = listener_tls(worker, listener.name());
    auto connection = std::make_shared<Connection>(worker, listener, std::move(socket), admission,
                                                   std::move(tls));
    // The completion handler owns the connection until the coroutine ends.
    auto* c = connection.get();
    asio::co_spawn(worker.io(), c->run(),
                   [connection = std::move(connection)](std::exception_ptr e) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               spdlog::error("connection ended by an exception: {}", ex.what());
                           }
                       }
                   });
}

}  // namespace dsgw::proxy
