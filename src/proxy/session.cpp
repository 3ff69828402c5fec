// One client connection, from the first byte of its first request to close.
//
// The flow of one request, in the order the data moves:
//   read_request_head()    client -> parser; limits (431/413), smuggling shapes (400)
//   send_upstream_request() pick a server, take a pooled connection or connect,
//                          write the rewritten head and the body bytes already
//                          buffered in one write; retried on another server only
//                          when the request cannot have reached an upstream
//   stream_request_body()  the rest of the body, piece by piece
//   relay_response()       upstream head -> rewritten head -> client, then each
//                          body piece as soon as it is read (SSE tokens are not
//                          held back), with back-pressure from the client
//   finish_exchange()      pool the upstream connection if it is clean, log
//
// Deadlines are per operation (one timer per session, re-armed before each
// step): header_timeout, client_idle, connect, first_byte, idle between chunks.
// While the response is awaited and relayed, the client socket is watched: a
// client that hangs up closes the upstream connection at once, so the
// inference server stops generating.
//
// GCC 12 miscompiles `if (!co_await f())` (the resumed frame is garbage): bind
// the awaited value to a local first, as done throughout this file.

#include "deepseek_gateway/proxy/session.hpp"

#include "deepseek_gateway/access/api_keys.hpp"
#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/net/listener.hpp"
#include "deepseek_gateway/net/refusals.hpp"
#include "deepseek_gateway/proxy/errors.hpp"
#include "deepseek_gateway/proxy/forward.hpp"
#include "deepseek_gateway/proxy/request_target.hpp"
#include "deepseek_gateway/tls/context.hpp"
#include "deepseek_gateway/tls/server_stream.hpp"
#include "deepseek_gateway/util/clock.hpp"
#include "net/tcp_read.hpp"
#include "proxy/relay_parser.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <memory_resource>
#include <optional>
#include <span>

namespace dsgw::proxy {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = util::Clock;  // tests move it (util/clock.hpp)
using error_code = boost::system::error_code;
using TlsStream = asio::ssl::stream<net::Socket&>;
using net::Task;
using IoResult = std::tuple<error_code, std::size_t>;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable_t<net::Executor>{});

constexpr std::size_t kMinRead = 4096;
constexpr std::size_t kMaxRead = 64 * 1024;
constexpr std::uint32_t kUpstreamHeaderLimit = 64 * 1024;
// The arena's first block: a typical request and response head fit in it.
constexpr std::size_t kArenaChunk = 2048;
constexpr std::string_view kLastChunk = "0\r\n\r\n";
// Interim (1xx) responses passed on per exchange; one more is a 502.
constexpr unsigned kMaxInterim = 16;
// Lingering close (docs/security.md): after answering a request it has not
// read to its end, the gateway half-closes and reads what the client still
// sends, for this long and this much at most, so the client is not reset
// before it reads the answer.
constexpr auto kLingerTime = std::chrono::seconds(5);
constexpr std::uint64_t kLingerBytes = 64 * 1024 * 1024;
// A server that sends bytes past its responses is warned about this often.
constexpr auto kProtocolWarningEvery = std::chrono::seconds(60);
constexpr std::string_view kCrlf = "\r\n";

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// The two TLS streams: Asio's towards upstreams, our own towards clients
// (see tls/server_stream.hpp).
Task<IoResult> tls_read(TlsStream& t, asio::mutable_buffer b) {
    return t.async_read_some(b, nothrow);
}
Task<IoResult> tls_read(tls::ServerStream& t, asio::mutable_buffer b) {
    return t.read_some(b);
}
Task<IoResult> tls_write(TlsStream& t, asio::const_buffer b) {
    return asio::async_write(t, b, nothrow);
}
Task<IoResult> tls_write(tls::ServerStream& t, asio::const_buffer b) {
    return t.write(b);
}

// One read from a plain or a TLS stream. Not a coroutine: it returns the
// operation's awaitable as it is, so no frame is allocated for it (our TLS
// stream's read is a coroutine of its own).
// `left`: where a plain read stores what it left in the kernel (upstream
// connections: UpstreamConnection::inq).
template <class Tls>
Task<IoResult> read_some(net::ad::reactor& reactor, net::Socket& s, Tls* tls,
                         beast::flat_buffer& buf, std::size_t read_size, int* left = nullptr) {
    auto space = buf.prepare(read_size);
    if (tls) return tls_read(*tls, space);
    return net::async_read_hinted(reactor, s, space, left, nothrow);
}

// A plain write: sendmsg(2) at once, from here. It usually takes everything,
// and then the caller goes on without a trip through the event loop (an Asio
// operation completes by a post, even when its first attempt succeeds) and
// without a coroutine frame. Returns the bytes written; `ec` is set on an
// error (a full socket buffer is none). Only for sockets in non-blocking mode
// (set when the connection opens).
std::size_t write_at_once(net::Socket& s, std::span<const asio::const_buffer> iov, error_code& ec) {
    std::size_t n = s.write_some(iov, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        n = 0;
    }
    return n;
}

// What write_at_once() left: `iov` after its first `skip` bytes.
Task<IoResult> write_rest(net::Socket& s, std::span<const asio::const_buffer> iov,
                          std::size_t skip) {
    std::vector<asio::const_buffer> rest;
    for (const auto& b : iov) {
        if (skip >= b.size()) {
            skip -= b.size();
            continue;
        }
        rest.push_back(b + skip);
        skip = 0;
    }
    auto result = co_await asio::async_write(s, rest, nothrow);  // `rest` lives on here
    co_return result;
}

Task<IoResult> write_now(net::Socket& s, std::span<const asio::const_buffer> iov) {
    error_code ec;
    const std::size_t n = write_at_once(s, iov, ec);
    if (ec || n == asio::buffer_size(iov)) co_return IoResult{ec, n};
    auto [aec, m] = co_await write_rest(s, iov, n);
    co_return IoResult{aec, n + m};
}

// Writes every buffer of `iov` (a view: the operation does not copy the
// vector). Over TLS they are first gathered into one buffer: an SSL write
// makes one record per buffer, and an SSE event (chunk size line, event,
// CRLF) must travel as one record, not three.
template <class Tls>
Task<IoResult> write_all(net::Socket& s, Tls* tls, const std::vector<asio::const_buffer>& iov,
                         std::string& gather) {
    if (!tls) {
        std::span<const asio::const_buffer> all(iov);
        if (s.non_blocking()) return write_now(s, all);
        return asio::async_write(s, all, nothrow);
    }
    gather.clear();
    for (const auto& b : iov) gather.append(static_cast<const char*>(b.data()), b.size());
    return tls_write(*tls, asio::buffer(gather));
}

// "host" of "host:port" or "[v6]:port".
std::string host_of(const std::string& host_port) {
    auto colon = host_port.rfind(':');
    std::string h = host_port.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[') h = h.substr(1, h.size() - 2);
    return h;
}

// While a response is relayed, the client may only send a pipelined request
// or go away. Over TLS the bytes are encrypted, so peek at the record header:
// an alert record (TLS 1.2) or a 19-byte record (a TLS 1.3 alert: 2 bytes, the
// content type and a 16-byte tag) is the client saying goodbye.
bool tls_goodbye(const unsigned char* h, long n) {
    if (n < 1) return false;
    if (h[0] == 21) return true;  // alert
    return n >= 5 && h[0] == 23 && ((h[3] << 8) | h[4]) == 19;
}

void adapt_read_size(std::size_t n, std::size_t& read_size) {
    if (n == read_size && read_size < kMaxRead) read_size *= 2;
}

class ClientSession final : public std::enable_shared_from_this<ClientSession>,
                            public app::DrainTarget,
                            private util::DelayQueue::Entry {
public:
    ClientSession(app::Worker& worker, net::Listener& listener, net::Socket socket,
                  const access::Admission& admission)
        : worker_(worker),
          reactor_(net::reactor_of(worker.io())),
          listener_(listener),
          client_(std::move(socket)),
          timer_(worker.io()),
          admission_(admission),
          decision_(admission.decision()),
          arena_(kArenaChunk, &worker.header_memory()),
          interim_arena_(kArenaChunk, &worker.header_memory()) {
        const auto& rt = worker_.runtime();
        if (const auto* l = rt->listener(listener_.name())) {
            if (l->tls) {
                tls_ctx_ = l->tls;
                client_tls_ = std::make_unique<tls::ServerStream>(client_, tls_ctx_->context());
            }
            if (l->metrics) {
                accept_metrics_ = rt->metrics;
                lm_ = l->metrics;
                lm_->connection_opened();
            }
        }
        error_code ec;
        // The listener judged the peer already (admission.client); asking
        // the socket again would cost a getpeername(2) per connection.
        conn_ip_ = admission.client;
        if (conn_ip_.is_unspecified())
            conn_ip_ = access::normalize(client_.remote_endpoint(ec).address());
        client_ip_ = conn_ip_;
        client_ip_text_ = client_ip_.to_string();
        client_.set_option(tcp::no_delay(true), ec);
        // For write_now(); the TLS stream has set it already. Asio would set
        // it at the first read anyway, so this costs no extra system call.
        if (!client_.non_blocking()) client_.non_blocking(true, ec);
        // TCP_INQ for net::async_read_hinted and the TLS stream's reads comes
        // from the listening socket (net::Listener).
        worker_.session_started();
        worker_.add_session(this);
    }

    ~ClientSession() override {
        if (lm_) lm_->connection_closed();
        worker_.remove_session(this);
        listener_.connection_closed();
        worker_.session_ended();
    }

    Task<void> run() {
        if (admission_.action == access::AcceptAction::read_proxy_header) {
            const bool admitted = co_await read_proxy_header();
            if (!admitted) {
                co_await close_client();
                co_return;
            }
        }
        const bool ready = co_await handshake();
        if (ready) co_await serve();
        co_await close_client();
    }

    void on_drain() override {
        if (!in_request_) {
            error_code ec;
            client_.cancel(ec);
        }
    }

private:
    enum class Phase {
        none,
        request_head,    // header_timeout
        keepalive_idle,  // client_idle, waiting for the next request
        request_body,    // client_idle between body pieces
        client_write,    // client_idle while the client does not read
        linger,          // kLingerTime for what the client sends after our answer
        connect,         // upstream connect
        upstream_write,  // upstream idle while it does not read
        first_byte,      // upstream first_byte
        response_body,   // upstream idle between chunks
    };

    static bool is_client_phase(Phase p) {
        return p == Phase::request_head || p == Phase::keepalive_idle ||
               p == Phase::request_body || p == Phase::client_write || p == Phase::linger;
    }

    // ---- deadlines ------------------------------------------------------

    void arm(Phase p, Clock::duration d) {
        phase_ = p;
        timed_out_ = Phase::none;
        deadline_ = Clock::now() + d;
        // A pending wait that ends sooner re-checks the deadline when it
        // fires; only an earlier deadline needs the timer moved.
        if (timer_waiting_ && timer_.expiry() <= deadline_) return;
        timer_.expires_at(deadline_);
        start_timer_wait();
    }

    void disarm() {
        phase_ = Phase::none;
        deadline_ = Clock::time_point::max();
    }

    bool timed_out(Phase p) const { return timed_out_ == p; }

    void start_timer_wait() {
        timer_waiting_ = true;
        ++timer_gen_;
        timer_.async_wait([self = shared_from_this(), gen = timer_gen_](error_code ec) {
            if (gen != self->timer_gen_) return;  // superseded by a re-arm
            self->timer_waiting_ = false;
            if (ec || self->closed_) return;
            self->on_timer();
        });
    }

    void on_timer() {
        if (deadline_ == Clock::time_point::max()) return;
        if (Clock::now() < deadline_) {
            timer_.expires_at(deadline_);
            start_timer_wait();
            return;
        }
        timed_out_ = phase_;
        deadline_ = Clock::time_point::max();
        error_code ec;
        if (is_client_phase(phase_)) {
            client_.cancel(ec);
        } else if (conn_) {
            conn_->socket.cancel(ec);
        }
    }

    // ---- client watch ---------------------------------------------------
    //
    // Asio's async_wait costs an epoll_ctl each time it is started, so the
    // watch over a response is deferred: watch_client_soon() queues the
    // session on the worker's watch queue, and only a response still under
    // way 10-20 ms later arms the real watch. Most completions never do.

    void watch_client_soon() {
        watching_ = true;
        worker_.watch_queue().push(*this);
    }

    void on_due() override {
        if (watching_ && !closed_) watch_client();
    }

    void watch_client() {
        watching_ = true;
        ++watch_gen_;
        client_.async_wait(tcp::socket::wait_read,
                           [self = shared_from_this(), gen = watch_gen_](error_code ec) {
                               if (ec || gen != self->watch_gen_ || !self->watching_) return;
                               self->on_client_readable();
                           });
    }

    void stop_watch() {
        // The pending wait, if any, completes later and is ignored.
        worker_.watch_queue().remove(*this);
        watching_ = false;
        ++watch_gen_;
    }

    void on_client_readable() {
        unsigned char head[5];
        auto r = ::recv(client_.native_handle(), head, client_tls_ ? sizeof head : 1,
                        MSG_PEEK | MSG_DONTWAIT);
        if (r > 0 && !(client_tls_ && tls_goodbye(head, r)))
            return;  // a pipelined request: read after this response
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            watch_client();
            return;
        }
        on_client_gone();
    }

    void on_client_gone() {
        client_gone_ = true;
        keep_alive_ = false;
        if (queued_) queued_->timer.cancel();
        error_code ec;
        if (conn_) conn_->socket.close(ec);  // the inference server stops now
        client_.cancel(ec);
    }

    // ---- the connection loop --------------------------------------------

    const config::Config& cfg() const { return *rt_->config; }

    // The worker's current configuration for this connection's listener.
    // False when the listener was removed or moved by a reload, or the worker
    // drains: the connection then closes after its current request.
    bool refresh_runtime() {
        if (listener_.stopped()) return false;
        const auto& current = worker_.runtime();
        if (current == rt_ && lc_) return true;
        rt_ = current;
        const auto* l = rt_->listener(listener_.name());
        lc_ = l ? l->config : nullptr;
        return lc_ != nullptr;
    }

    // The PROXY v1/v2 header a trusted proxy sends first, before TLS and
    // HTTP, read with exact reads so that not a byte past it is taken; then
    // the allowlist is applied to the address it carries. False when the
    // connection is to be closed.
    Task<bool> read_proxy_header() {
        const auto& rt = worker_.runtime();
        const auto* l = rt->listener(listener_.name());
        const config::ListenerConfig* lc = l ? l->config : nullptr;
        if (!lc) co_return false;
        arm(Phase::request_head, rt->config->limits.header_timeout);
        std::vector<std::uint8_t> buf;
        access::ProxyHeader h{};
        for (;;) {
            h = access::parse_proxy_header(buf);
            if (h.status != access::ProxyStatus::need_more) break;
            const std::size_t want = h.min_total > buf.size() ? h.min_total - buf.size() : 1;
            const std::size_t have = buf.size();
            buf.resize(have + want);
            auto [ec, n] =
                co_await asio::async_read(client_, asio::buffer(buf.data() + have, want), nothrow);
            if (ec) {
                buf.resize(have + n);
                h.status = access::ProxyStatus::invalid;
                h.error = "connection closed or timed out before the PROXY header ended";
                break;
            }
        }
        disarm();
        error_code ignored;
        auto peer = client_.remote_endpoint(ignored);
        admission_ = access::admit_proxied(h, access::normalize(peer.address()),
                                           lc->access.policy, lc->access.trusted_proxies);
        if (admission_.action == access::AcceptAction::refuse) {
            net::refusal_log().log({listener_.name(), admission_.client, admission_.reason,
                                    access::normalize(peer.address()),
                                    h.error ? std::string_view(h.error) : std::string_view()});
            if (admission_.reason == access::DenyReason::bad_proxy_header ||
                lc->access.on_deny == config::OnDeny::close) {
                client_gone_ = true;
                co_return false;
            }
        }
        decision_ = admission_.decision();
        conn_ip_ = admission_.client;
        client_ip_ = conn_ip_;
        client_ip_text_ = client_ip_.to_string();
        co_return true;
    }

    // TLS: the handshake, within header_timeout. False when it failed.
    Task<bool> handshake() {
        if (!client_tls_) co_return true;
        const auto& rt = worker_.runtime();
        arm(Phase::request_head, rt->config->limits.header_timeout);
        const error_code ec = co_await client_tls_->handshake();
        disarm();
        if (ec) {
            if (lm_ && lm_->tls_handshake_errors) lm_->tls_handshake_errors->Increment();
            spdlog::debug("listener {}: TLS handshake with {} failed: {}", listener_.name(),
                          client_ip_text_, ec.message());
            client_gone_ = true;  // nothing to say to it, not even close_notify
            co_return false;
        }
        client_cert_ = tls::peer_subject(client_tls_->native_handle());
        co_return true;
    }

    Task<void> serve() {
        while (!closed_) {
            if (!refresh_runtime()) co_return;
            const bool got = co_await read_request_head();
            if (!got) co_return;
            // A reload while the connection sat idle: the request is served
            // by the configuration in force when it arrived.
            auto arrived_rt = rt_;
            const auto* arrived_lc = lc_;
            last_request_ = !refresh_runtime();
            if (last_request_) {
                rt_ = std::move(arrived_rt);
                lc_ = arrived_lc;
            }
            in_request_ = true;
            co_await handle_request();
            in_request_ = false;
            release_heads();  // an idle keep-alive connection holds no arena block
            if (!keep_alive_ || client_gone_ || worker_.draining() || last_request_) co_return;
        }
    }

    void reset_request_state() {
        keep_alive_ = true;
        response_started_ = false;
        status_ = 0;
        bytes_in_ = 0;
        bytes_out_ = 0;
        first_byte_ms_ = -1;
        server_name_ = {};
        release_heads();
        interim_count_ = 0;
        sent_continue_ = false;
    }

    // Both heads are gone: their memory goes back to the worker.
    void release_heads() {
        res_.reset();
        req_.reset();
        arena_.release();
        if (interim_count_ > 0) interim_arena_.release();
    }

    // Reads and parses a request head. Returns false when the connection is
    // to be closed (an error response, if one was due, has been sent).
    Task<bool> read_request_head() {
        reset_request_state();
        const auto& limits = cfg().limits;
        req_.emplace(&arena_);
        req_->header_limit(static_cast<std::uint32_t>(
            std::min<std::uint64_t>(limits.max_header_bytes, UINT32_MAX)));
        req_->body_limit(limits.max_request_body);
        req_->eager(false);

        const bool first = requests_ == 0;
        if (client_buf_.size() > 0 || first)
            arm(Phase::request_head, limits.header_timeout);
        else
            arm(Phase::keepalive_idle, limits.client_idle);
        bool got_bytes = client_buf_.size() > 0;

        for (;;) {
            error_code ec;
            auto used = parse_buffered(*req_, client_buf_, ec);
            client_buf_.consume(used);
            bytes_in_ += used;
            if (ec) {
                disarm();
                co_await reject_request(ec);
                co_return false;
            }
            if (req_->is_header_done()) break;
            if (worker_.draining() && !got_bytes) co_return false;

            auto [rec, n] = co_await read_some(reactor_, client_, client_tls_.get(), client_buf_,
                                               client_read_size_);
            if (rec) {
                bool head_timeout = timed_out(Phase::request_head);
                disarm();
                if (head_timeout && got_bytes && !client_gone_)
                    co_await send_error(408, "request head not received in time", true);
                co_return false;
            }
            client_buf_.commit(n);
            adapt_read_size(n, client_read_size_);
            if (!got_bytes) {
                got_bytes = true;
                if (phase_ == Phase::keepalive_idle)
                    arm(Phase::request_head, limits.header_timeout);
            }
        }
        disarm();
        ++requests_;
        started_ = Clock::now();
        started_wall_ = std::chrono::system_clock::now();
        co_return true;
    }

    Task<void> reject_request(error_code ec) {
        if (ec == http::error::header_limit)
            co_await send_error(431, "request header fields too large", true);
        else if (ec == http::error::body_limit)
            co_await send_error(413, "request body too large", true);
        else
            co_await send_error(400, "malformed request: " + ec.message(), true);
        log_request();
    }

    // Framing and routing shapes the parser does not refuse by itself
    // (docs/security.md): a transfer coding other than exactly "chunked",
    // Transfer-Encoding given twice or in an HTTP/1.0 request (RFC 9112
    // §6.1), a missing, repeated or invalid Host (§3.2), a target that is
    // none of the forms allowed for its method (§3.2.1-3.2.4).
    std::optional<std::string_view> check_request_shape() {
        const auto& h = req_->head();
        int te_count = 0;
        for (const auto& f : h) {
            if (f.known != Known::transfer_encoding) continue;
            ++te_count;
            if (!beast::iequals(f.value, "chunked")) return "unsupported transfer coding";
        }
        if (te_count > 1) return "repeated Transfer-Encoding";
        if (te_count > 0 && h.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
        const auto hosts = h.count(Known::host);
        if (hosts > 1) return "more than one Host header";
        if (h.version() >= 11 && hosts != 1) return "HTTP/1.1 request needs a Host header";
        if (hosts == 1 && !valid_host(h[Known::host])) return "invalid Host header";
        if (h.method() == http::verb::connect) return "CONNECT is not supported";
        target_ = check_target(h.method_string(), h.target());
        if (!target_.error.empty()) return target_.error;
        return std::nullopt;
    }

    // ---- metrics ----------------------------------------------------------

    std::size_t listener_index() const {
        return static_cast<std::size_t>(lc_ - rt_->config->listeners.data());
    }

    // The handles of the server the lease is on, or null.
    const metrics::ServerMetrics* server_metrics() const {
        if (!rt_ || !rt_->metrics || !lease_ || !upstream_) return nullptr;
        const auto& servers = upstream_->servers();
        for (std::size_t s = 0; s < servers.size(); ++s)
            if (servers[s].get() == lease_.get())
                return rt_->metrics->server(lc_->upstream_index, s);
        return nullptr;
    }

    void count_error(metrics::UpstreamErrorKind kind) const {
        if (const auto* sm = server_metrics()) sm->error(kind);
    }

    void count_denied(access::DenyReason reason) const {
        if (rt_ && rt_->metrics && lc_) rt_->metrics->listener(listener_index())->denied_by(reason);
    }

    // Per request: the client behind trusted proxies (X-Forwarded-For) is
    // judged by the allowlist, then the API key, when the listener asks for
    // one. False when the request was refused (and answered, or the
    // connection is to be closed).
    Task<bool> check_client() {
        const auto& acc = lc_->access;
        const auto& h = req_->head();
        if (!acc.trusted_proxies.empty()) {
            std::vector<std::string_view> xff;
            for (const auto& f : h)
                if (f.known == Known::x_forwarded_for) xff.push_back(f.value);
            auto fc = access::resolve_forwarded_for(conn_ip_, xff, acc.trusted_proxies);
            const auto d = access::judge_request(fc, acc.policy);
            client_ip_ = fc.address;
            client_ip_text_ = client_ip_.to_string();
            forwarded_for_ = std::move(fc.forwarded_for);
            if (d != access::Decision::allowed) {
                net::refusal_log().log({listener_.name(), client_ip_, access::to_deny_reason(d),
                                        conn_ip_, {}});
                count_denied(access::to_deny_reason(d));
                if (acc.on_deny == config::OnDeny::respond_403)
                    co_await send_error(403, "access denied", true);
                keep_alive_ = false;
                log_request();
                co_return false;
            }
        }
        if (lc_->auth.enabled()) {
            std::vector<std::string_view> values;
            for (const auto& f : h)
                if (f.known == Known::authorization) values.push_back(f.value);
            auto ar = access::authenticate(*lc_->auth.keys, values);
            if (ar.outcome != access::AuthOutcome::ok) {
                net::refusal_log().log({listener_.name(), client_ip_,
                                        access::to_deny_reason(ar.outcome), std::nullopt, {}});
                count_denied(access::to_deny_reason(ar.outcome));
                const std::string challenge =
                    std::string("WWW-Authenticate: ") + access::www_authenticate(ar.outcome) + "\r\n";
                co_await send_error(401,
                                    ar.outcome == access::AuthOutcome::missing_key
                                        ? "missing API key: send Authorization: Bearer <key>"
                                        : "invalid API key",
                                    !req_->is_done(), challenge);
                log_request();
                co_return false;
            }
            api_key_name_ = ar.name;
        }
        co_return true;
    }

    Task<void> handle_request() {
        if (auto bad = check_request_shape()) {
            co_await send_error(400, std::string(*bad), true);
            log_request();
            co_return;
        }
        if (decision_ != access::Decision::allowed) {
            co_await send_error(403, "access denied", true);
            log_request();
            co_return;
        }
        forwarded_for_.clear();
        api_key_name_ = {};
        // Most listeners have neither: no coroutine frame for nothing.
        if (!lc_->access.trusted_proxies.empty() || lc_->auth.enabled()) {
            const bool client_ok = co_await check_client();
            if (!client_ok) co_return;
        }
        keep_alive_ = req_->keep_alive();
        upstream_ = &rt_->upstream(lc_->upstream_index);

        const auto& head = req_->head();
        if (req_->chunked())
            req_framing_ = Framing::chunked;
        else if (req_->content_length())
            req_framing_ = Framing::content_length;
        else
            req_framing_ = Framing::none;

        if (!req_->is_done() && head.version() >= 11) {
            auto expect = head[Known::expect];
            if (beast::iequals(expect, "100-continue")) {
                static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
                iov_.clear();
                iov_.emplace_back(kContinue.data(), kContinue.size());
                auto [ec, n] = co_await write_all(client_, client_tls_.get(), iov_, tls_gather_);
                if (ec) co_return;
                sent_continue_ = true;
            }
        }

        head_out_.clear();
        ForwardContext fctx{client_ip_text_, client_tls_ ? "https" : "http", head[Known::host]};
        fctx.forwarded_for = forwarded_for_;
        fctx.strip_authorization = lc_->auth.enabled() && !lc_->auth.forward;
        if (target_.form == TargetForm::absolute) {
            fctx.origin_form = target_.path;
            fctx.authority = target_.authority;
        }
        std::string default_host;
        if (fctx.default_host.empty()) {
            default_host = upstream_->servers().empty() ? "" : upstream_->servers()[0]->authority();
            fctx.default_host = default_host;
        }
        build_upstream_request_head(head, fctx, req_framing_,
                                    req_->content_length().value_or(0), head_out_);

        // Body bytes that came with the head go out in the same write.
        req_->eager(true);
        req_->clear_pieces();
        error_code ec;
        pending_consume_ = parse_buffered(*req_, client_buf_, ec);
        if (ec) {
            co_await reject_request(ec);
            co_return;
        }

        const bool sent = co_await send_upstream_request();
        // The body bytes that went with the head (or that a 502/503 answered).
        client_buf_.consume(pending_consume_);
        bytes_in_ += pending_consume_;
        pending_consume_ = 0;
        if (!sent) {
            finish_exchange(false);
            co_return;
        }

        if (!req_->is_done()) {
            const bool body_sent = co_await stream_request_body();
            if (!body_sent) {
                finish_exchange(false);
                co_return;
            }
        }
        bool clean = co_await relay_response();
        finish_exchange(clean);
    }

    // ---- upstream side --------------------------------------------------

    // Appends the framed body pieces the request parser holds to iov_.
    void frame_pieces(Framing framing, bool last, const std::pmr::vector<asio::const_buffer>& pieces,
                      std::size_t bytes) {
        if (framing == Framing::chunked) {
            if (bytes > 0) {
                auto n = std::snprintf(chunk_line_, sizeof chunk_line_, "%zx\r\n", bytes);
                iov_.emplace_back(chunk_line_, static_cast<std::size_t>(n));
                iov_.insert(iov_.end(), pieces.begin(), pieces.end());
                iov_.emplace_back(kCrlf.data(), kCrlf.size());
            }
            if (last) iov_.emplace_back(kLastChunk.data(), kLastChunk.size());
        } else if (framing != Framing::none) {
            iov_.insert(iov_.end(), pieces.begin(), pieces.end());
        }
    }

    // Writes iov_ to a plain socket on the spot (see write_at_once()). True
    // when nothing is left to wait for: all of it went, or `ec` says why not;
    // `done` is what went. Over TLS nothing is written here.
    bool send_now(net::Socket& s, bool tls, error_code& ec, std::size_t& done) {
        done = 0;
        if (iov_.empty()) return true;
        if (tls || !s.non_blocking()) return false;
        done = write_at_once(s, iov_, ec);
        return ec || done == asio::buffer_size(iov_);
    }

    // What send_now() left of iov_ (all of it over TLS), under the write
    // timeout.
    template <class Tls>
    Task<IoResult> write_rest_of_iov(net::Socket& s, Tls* tls, std::size_t done, Phase phase,
                                     Clock::duration timeout) {
        arm(phase, timeout);
        IoResult r;
        if (tls)
            r = co_await write_all(s, tls, iov_, tls_gather_);
        else if (s.non_blocking())
            r = co_await write_rest(s, iov_, done);
        else
            r = co_await write_all(s, static_cast<Tls*>(nullptr), iov_, tls_gather_);
        disarm();
        co_return r;
    }

    // The request head and/or the body pieces the parser holds, framed.
    void frame_upstream(bool with_head) {
        iov_.clear();
        if (with_head) iov_.emplace_back(head_out_.data(), head_out_.size());
        frame_pieces(req_framing_, req_->is_done(), req_->pieces(), req_->piece_bytes());
    }

    // Writes iov_ upstream; the callers on the request path call
    // send_now() first themselves, so a write that goes at once costs no
    // coroutine.
    Task<error_code> finish_upstream_write(std::size_t done) {
        auto [ec, n] =
            co_await write_rest_of_iov(conn_->socket, conn_->tls.get(), done, Phase::upstream_write,
                                       upstream_->config().timeouts.idle);
        co_return ec;
    }

    void note_upstream_failure(const char* what, const error_code& ec) {
        spdlog::warn("upstream {} server {}: {}: {}", upstream_->name(),
                     lease_ ? lease_->name() : std::string("-"), what, ec.message());
    }
    void note_upstream_failure(const char* what) {
        spdlog::warn("upstream {} server {}: {}", upstream_->name(),
                     lease_ ? lease_->name() : std::string("-"), what);
    }

    // Takes an in-flight slot on a server into lease_ when a usable server
    // has room (no coroutine: the usual case).
    bool try_lease(const balancer::PickContext& ctx) {
        if (auto* queue = upstream_->queue())
            lease_ = queue->try_acquire(ctx);
        else
            lease_ = upstream::ServerLease(upstream_->balancer().pick(ctx));
        return static_cast<bool>(lease_);
    }

    // When try_lease() found no server with room: answers the client when
    // no server is usable, else (servers at their max_in_flight cap) waits
    // in the upstream's queue. False when the exchange is over: an error was
    // sent (503 with Retry-After for a full queue or a wait that timed out),
    // or the client left while waiting.
    Task<bool> acquire_server(const balancer::PickContext& ctx, unsigned attempts) {
        auto* queue = upstream_->queue();
        if (attempts > 0) {
            co_await send_error(last_error_status_, last_error_message_, !req_->is_done());
            co_return false;
        }
        if (!queue || !upstream_->any_usable(ctx.now)) {
            co_await send_error(503, "no healthy upstream server", !req_->is_done());
            co_return false;
        }
        static constexpr std::string_view kRetryAfter = "Retry-After: 1\r\n";
        auto waiter = std::make_shared<upstream::AdmissionQueue::Waiter>(client_.get_executor());
        waiter->ctx = ctx;
        waiter->timer.expires_after(upstream_->config().queue.timeout);
        if (!queue->enqueue(waiter)) {
            co_await send_error(503, "every upstream server is busy and the queue is full",
                                !req_->is_done(), kRetryAfter);
            co_return false;
        }
        queued_ = waiter;
        if (req_->is_done()) watch_client();  // a client that leaves gives its place up
        if (waiter->state != upstream::AdmissionQueue::Waiter::State::granted)
            co_await waiter->timer.async_wait(nothrow);
        queued_.reset();
        lease_ = queue->leave(*waiter);
        if (rt_->metrics)
            rt_->metrics->upstream(lc_->upstream_index)
                ->queue_wait->observe(std::chrono::duration<double>(Clock::now() - ctx.now).count());
        if (lease_) co_return true;
        if (client_gone_) co_return false;
        co_await send_error(503, "no upstream server became free in time", !req_->is_done(),
                            kRetryAfter);
        co_return false;
    }

    // Picks a server and delivers the request head (and the body bytes at
    // hand). Returns false when the exchange is over (an error was sent, or
    // the client left).
    Task<bool> send_upstream_request() {
        const auto& ucfg = upstream_->config();
        const upstream::UpstreamServer* failed = nullptr;
        unsigned attempts = 0;
        for (;;) {
            balancer::PickContext ctx{client_ip_, failed, Clock::now()};
            bool acquired = try_lease(ctx);
            if (!acquired) acquired = co_await acquire_server(ctx, attempts);
            if (!acquired) co_return false;
            auto* server = lease_.get();
            server_name_ = server->name();
            conn_ = worker_.pool().take(server);
            const bool reused = conn_ != nullptr;
            if (!conn_) {
                const auto failure = co_await open_upstream(*server);
                if (client_gone_) co_return false;
                if (failure) {
                    count_error(metrics::UpstreamErrorKind::connect);
                    const bool ejected =
                        server->on_failure(Clock::now(), upstream_->failure_threshold());
                    // Logged once per ejection, not per request: a dead server
                    // under load must not flood the log.
                    spdlog::debug("upstream {} server {}: {}: {}", upstream_->name(),
                                  server->name(), failure->what, failure->ec.message());
                    if (ejected)
                        spdlog::warn("upstream {} server {}: ejected after {} consecutive failures "
                                     "(last: {}: {})",
                                     upstream_->name(), server->name(),
                                     upstream_->failure_threshold(), failure->what,
                                     failure->ec.message());
                    error_code ignored;
                    conn_->socket.close(ignored);
                    conn_.reset();
                    // A connect or handshake that never completes is a timeout (504).
                    last_error_status_ = failure->timeout ? 504 : 502;
                    last_error_message_ = std::string("upstream ") + failure->what;
                    if (attempts < ucfg.retries) {
                        ++attempts;
                        failed = server;
                        lease_.release();
                        continue;
                    }
                    co_await send_error(last_error_status_, last_error_message_,
                                        !req_->is_done());
                    co_return false;
                }
            }
            frame_upstream(true);
            error_code ec;
            std::size_t done = 0;
            if (!send_now(conn_->socket, conn_->tls != nullptr, ec, done))
                ec = co_await finish_upstream_write(done);
            if (client_gone_) co_return false;
            if (ec) {
                error_code ignored;
                conn_->socket.close(ignored);
                conn_.reset();
                // A pooled connection the server had closed: the request
                // never reached it, so another server may take it.
                if (reused && attempts < ucfg.retries) {
                    ++attempts;
                    lease_.release();
                    continue;
                }
                co_await send_error(502, "upstream failed while the request was sent", true);
                co_return false;
            }
            ++conn_->requests;
            req_->clear_pieces();
            co_return true;
        }
    }

    struct OpenFailure {
        error_code ec;
        bool timeout = false;
        const char* what = "";  // "connect failed", "TLS handshake timed out", ...
    };

    // A new connection to `server` in conn_: TCP connect, then TLS when the
    // upstream uses it, both within the connect timeout. Nothing on success.
    Task<std::optional<OpenFailure>> open_upstream(upstream::UpstreamServer& server) {
        conn_ = std::make_shared<upstream::UpstreamConnection>(worker_.io(), &server);
        arm(Phase::connect, upstream_->config().timeouts.connect);
        auto [ec] = co_await conn_->socket.async_connect(server.endpoint(), nothrow);
        bool timeout = timed_out(Phase::connect);
        disarm();
        if (ec)
            co_return OpenFailure{ec, timeout, timeout ? "connect timed out" : "connect failed"};
        error_code ignored;
        conn_->socket.set_option(tcp::no_delay(true), ignored);
        conn_->socket.non_blocking(true, ignored);  // for write_now()
        if (!upstream_->tls()) net::enable_read_hint(conn_->socket);
        const auto hec = co_await upstream_handshake(server);
        if (hec) {
            timeout = timed_out(Phase::connect);
            co_return OpenFailure{hec, timeout,
                                  timeout ? "TLS handshake timed out" : "TLS handshake failed"};
        }
        co_return std::nullopt;
    }

    // TLS to the upstream, when configured, within the connect timeout.
    Task<error_code> upstream_handshake(const upstream::UpstreamServer& server) {
        auto* tls = upstream_->tls();
        if (!tls) co_return error_code{};
        conn_->tls = std::make_unique<TlsStream>(conn_->socket, tls->context());
        tls->prepare(conn_->tls->native_handle(), host_of(server.authority()));
        arm(Phase::connect, upstream_->config().timeouts.connect);
        auto [ec] = co_await conn_->tls->async_handshake(asio::ssl::stream_base::client, nothrow);
        disarm();
        co_return ec;
    }

    Task<bool> stream_request_body() {
        const auto& limits = cfg().limits;
        while (!req_->is_done()) {
            arm(Phase::request_body, limits.client_idle);
            auto [rec, n] = co_await read_some(reactor_, client_, client_tls_.get(), client_buf_,
                                               client_read_size_);
            const bool timeout = timed_out(Phase::request_body);
            disarm();
            if (rec) {
                abort_upstream();
                if (timeout) co_await send_error(408, "request body not received in time", true);
                co_return false;
            }
            client_buf_.commit(n);
            adapt_read_size(n, client_read_size_);
            error_code ec;
            req_->clear_pieces();
            auto used = parse_buffered(*req_, client_buf_, ec);
            if (ec) {
                abort_upstream();
                co_await reject_request(ec);
                co_return false;
            }
            frame_upstream(false);
            error_code wec;
            std::size_t done = 0;
            if (!send_now(conn_->socket, conn_->tls != nullptr, wec, done))
                wec = co_await finish_upstream_write(done);
            client_buf_.consume(used);
            bytes_in_ += used;
            if (wec) {
                abort_upstream();
                if (!client_gone_)
                    co_await send_error(502, "upstream failed while the request was sent", true);
                co_return false;
            }
        }
        req_->clear_pieces();
        co_return true;
    }

    void abort_upstream() {
        keep_alive_ = keep_alive_ && req_->is_done();
        if (conn_) {
            error_code ec;
            conn_->socket.close(ec);
            conn_.reset();
        }
    }

    // ---- response -------------------------------------------------------

    void new_response_parser(std::pmr::memory_resource* mr) {
        res_.emplace(mr);
        res_->header_limit(kUpstreamHeaderLimit);
        res_->body_limit(std::nullopt);
        res_->eager(false);
        if (req_->head().method() == http::verb::head) res_->skip(true);
    }

    // Reads the upstream's response head. Returns false after answering the
    // client with 502/504 (or when the client left).
    Task<bool> read_response_head() {
        const auto& ucfg = upstream_->config();
        const auto sent = Clock::now();
        new_response_parser(&arena_);
        arm(Phase::first_byte, ucfg.timeouts.first_byte);
        bool any_byte = conn_->buffer.size() > 0;
        for (;;) {
            error_code ec;
            auto used = parse_buffered(*res_, conn_->buffer, ec);
            conn_->buffer.consume(used);
            if (ec) {
                disarm();
                note_upstream_failure("bad response", ec);
                count_error(metrics::UpstreamErrorKind::protocol);
                abort_upstream();
                co_await send_error(502, "upstream sent an invalid response", !req_->is_done());
                co_return false;
            }
            if (res_->is_header_done()) {
                auto code = res_->head().result_int();
                if (code >= 100 && code < 200 && code != 101) {
                    const bool go_on = co_await forward_interim();
                    if (!go_on) co_return false;
                    arm(Phase::first_byte, ucfg.timeouts.first_byte);  // the real one's
                    continue;
                }
                break;
            }
            auto [rec, n] = co_await read_some(reactor_, conn_->socket, conn_->tls.get(),
                                               conn_->buffer, conn_->read_size, &conn_->inq);
            if (rec) {
                const bool timeout = timed_out(Phase::first_byte) || timed_out(Phase::response_body);
                disarm();
                if (client_gone_) co_return false;
                count_error(timeout ? metrics::UpstreamErrorKind::timeout
                                    : metrics::UpstreamErrorKind::reset);
                passive_failure();
                abort_upstream();
                if (timeout) {
                    note_upstream_failure("no response in time", rec);
                    co_await send_error(504, "upstream timed out before responding", false);
                } else {
                    note_upstream_failure(any_byte ? "response cut" : "closed before responding",
                                          rec);
                    co_await send_error(502, "upstream closed the connection before responding",
                                        false);
                }
                co_return false;
            }
            if (!any_byte) {
                any_byte = true;
                first_byte_ms_ = ms_between(sent, Clock::now());
                arm(Phase::response_body, ucfg.timeouts.idle);
            }
            conn_->buffer.commit(n);
            adapt_read_size(n, conn_->read_size);
        }
        disarm();
        if (res_->head().result_int() == 101) {
            note_upstream_failure("101 Switching Protocols (not supported)");
            count_error(metrics::UpstreamErrorKind::protocol);
            abort_upstream();
            co_await send_error(502, "upstream tried to switch protocols", true);
            co_return false;
        }
        co_return true;
    }

    // An interim (1xx) response is passed on to an HTTP/1.1 client (RFC 9110
    // §15.2; an HTTP/1.0 client gets none), except a 100 Continue when the
    // gateway sent its own. Its head is then dropped and the next one parsed
    // in memory of its own, released each time, so a flood of them cannot
    // grow the process; past kMaxInterim the exchange ends with a 502. False
    // when the exchange is over.
    Task<bool> forward_interim() {
        if (++interim_count_ > kMaxInterim) {
            note_upstream_failure("too many interim responses");
            count_error(metrics::UpstreamErrorKind::protocol);
            abort_upstream();
            co_await send_error(502, "upstream sent too many interim responses", true);
            co_return false;
        }
        const auto code = res_->head().result_int();
        if (req_->head().version() >= 11 && !(code == 100 && sent_continue_)) {
            head_out_.clear();
            build_interim_response_head(res_->head(), head_out_);
            iov_.clear();
            iov_.emplace_back(head_out_.data(), head_out_.size());
            const auto ec = co_await write_client();
            if (ec) {
                on_client_gone();
                co_return false;
            }
        }
        res_.reset();
        interim_arena_.release();
        new_response_parser(&interim_arena_);
        co_return true;
    }

    // A failure the server is to blame for (connect, reset or timeout before
    // the first byte, a 5xx when passive.on_5xx) counts toward its ejection.
    void passive_failure() {
        if (!lease_) return;
        if (lease_->on_failure(Clock::now(), upstream_->failure_threshold()))
            spdlog::warn("upstream {} server {}: ejected after {} consecutive failures",
                         upstream_->name(), lease_->name(), upstream_->failure_threshold());
    }

    Framing choose_response_framing() {
        const auto code = res_->head().result_int();
        if (req_->head().method() == http::verb::head || code == 204 || code == 304 ||
            (code >= 100 && code < 200))
            return Framing::none;
        if (res_->content_length()) return Framing::content_length;
        if (req_->head().version() >= 11) return Framing::chunked;
        return Framing::close;
    }

    // What send_now() left of iov_ for the client, under the write timeout.
    Task<error_code> finish_client_write(std::size_t done) {
        auto [ec, n] = co_await write_rest_of_iov(client_, client_tls_.get(), done,
                                                  Phase::client_write, cfg().limits.client_idle);
        bytes_out_ += n;
        co_return ec;
    }

    // Writes iov_ to the client. The response relay calls send_now() and
    // finish_client_write() itself, so a write that goes at once costs no
    // coroutine there.
    Task<error_code> write_client() {
        error_code ec;
        std::size_t done = 0;
        const bool over = send_now(client_, client_tls_ != nullptr, ec, done);
        bytes_out_ += done;
        if (!over) ec = co_await finish_client_write(done);
        co_return ec;
    }

    // Returns true when the exchange ended cleanly (the upstream connection
    // may be reused).
    Task<bool> relay_response() {
        watch_client_soon();
        const bool head_ok = co_await read_response_head();
        if (!head_ok) {
            stop_watch();
            co_return false;
        }
        const auto framing = choose_response_framing();
        if (framing == Framing::close) keep_alive_ = false;
        if (worker_.draining() || last_request_) keep_alive_ = false;
        status_ = res_->head().result_int();
        if (status_ >= 500 && upstream_->config().passive.on_5xx)
            passive_failure();
        else
            lease_->on_success();
        if (const auto* sm = server_metrics())
            sm->response(status_, first_byte_ms_ >= 0 ? first_byte_ms_ / 1000.0 : -1);
        head_out_.clear();
        build_client_response_head(res_->head(), framing, res_->content_length().value_or(0),
                                   keep_alive_, req_->head().version(), head_out_);
        if (framing == Framing::chunked || framing == Framing::close) {
            // A long stream: keep no idle client buffer for its lifetime.
            if (client_buf_.size() == 0) client_buf_.shrink_to_fit();
        }

        res_->eager(true);
        bool with_head = true;
        bool invalid = false;  // the body's framing is broken
        const auto idle = upstream_->config().timeouts.idle;
        for (;;) {
            res_->clear_pieces();
            error_code ec;
            auto used = parse_buffered(*res_, conn_->buffer, ec);
            if (ec) {
                note_upstream_failure("bad response body", ec);
                count_error(metrics::UpstreamErrorKind::protocol);
                invalid = true;
                break;
            }
            iov_.clear();
            if (with_head) iov_.emplace_back(head_out_.data(), head_out_.size());
            frame_pieces(framing, res_->is_done(), res_->pieces(), res_->piece_bytes());
            error_code wec;
            std::size_t done = 0;
            const bool over = send_now(client_, client_tls_ != nullptr, wec, done);
            bytes_out_ += done;
            if (!over) wec = co_await finish_client_write(done);
            conn_->buffer.consume(used);
            if (wec) {
                on_client_gone();
                break;
            }
            response_started_ = true;
            with_head = false;
            if (res_->is_done()) break;

            arm(Phase::response_body, idle);
            auto [rec, n] = co_await read_some(reactor_, conn_->socket, conn_->tls.get(),
                                               conn_->buffer, conn_->read_size, &conn_->inq);
            const bool timeout = timed_out(Phase::response_body);
            disarm();
            const bool ended = rec == asio::error::eof || rec == asio::ssl::error::stream_truncated;
            if (ended && res_->need_eof()) {
                error_code eec;
                res_->put_eof(eec);  // a close-delimited body ends here
                continue;
            }
            if (rec) {
                if (!client_gone_) {
                    note_upstream_failure(timeout ? "stream idle too long" : "stream cut", rec);
                    count_error(timeout ? metrics::UpstreamErrorKind::timeout
                                        : metrics::UpstreamErrorKind::reset);
                }
                break;
            }
            conn_->buffer.commit(n);
            adapt_read_size(n, conn_->read_size);
        }
        stop_watch();
        if (!res_->is_done()) {
            // The client saw a partial response: it must not take it as whole.
            keep_alive_ = false;
            abort_upstream();
            // Broken before a byte of it was sent: the client can be told.
            if (invalid && with_head)
                co_await send_error(502, "upstream sent an invalid response", true);
            co_return false;
        }
        co_return true;
    }

    // Whether the upstream sent anything past the end of the response that
    // just ended: bytes buffered (by us, or by OpenSSL on a TLS connection),
    // or left in the kernel by the last plain read.
    // Such a connection is never reused (the bytes would be taken for the
    // next request's response, maybe another client's). `fin` is set when a
    // FIN alone is waiting: the server is closing, which is no fault.
    bool bytes_after_response(bool& fin) const {
        fin = false;
        if (conn_->buffer.size() > 0 || conn_->inq > 1) return true;
        // Over TLS the kernel count is unknown (-1); what OpenSSL holds,
        // decrypted or not, is bytes after the response too.
        if (conn_->tls && SSL_has_pending(conn_->tls->native_handle())) return true;
        if (conn_->inq != 1) return false;
        char c;  // TCP_INQ says 1 for one byte and for a FIN alone
        const auto r = ::recv(conn_->socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        fin = r == 0;
        return r > 0;
    }

    void on_bytes_after_response() {
        count_error(metrics::UpstreamErrorKind::protocol);
        if (lease_ && lease_->may_warn(Clock::now(), kProtocolWarningEvery))
            spdlog::warn(
                "upstream {} server {}: bytes after the end of a response (HTTP {}); "
                "the connection is closed, not reused (warned once a minute)",
                upstream_->name(), lease_->name(), status_);
    }

    void finish_exchange(bool clean) {
        if (conn_) {
            bool fin = false;
            if (clean && res_ && bytes_after_response(fin)) {
                on_bytes_after_response();
                clean = false;
            }
            if (clean && !fin && res_ && res_->keep_alive() && req_->is_done())
                worker_.pool().put(std::move(conn_), upstream_->config().keepalive);
            else {
                error_code ec;
                conn_->socket.close(ec);
            }
            conn_.reset();
        }
        lease_.release();
        if (client_gone_ && status_ == 0) status_ = 499;
        log_request();
    }

    // ---- responses of our own -------------------------------------------

    Task<void> send_error(unsigned status, std::string message, bool close,
                          std::string_view extra_headers = {}) {
        status_ = status;
        if (response_started_ || client_gone_) {
            keep_alive_ = false;
            co_return;
        }
        if (close) keep_alive_ = false;
        // Closing before the request was read to its end (or with more of
        // it buffered): linger, so the client reads this answer.
        if (!keep_alive_ && (!req_ || !req_->is_done() || client_buf_.size() > pending_consume_))
            linger_ = true;
        error_body_ = make_error_response(status, message, !keep_alive_, extra_headers);
        iov_.clear();
        iov_.emplace_back(error_body_.data(), error_body_.size());
        auto ec = co_await write_client();
        response_started_ = true;
        if (ec) keep_alive_ = false;
    }

    void log_request() {
        worker_.note_request();
        if (rt_ && rt_->metrics && lc_ && req_) {
            const auto i = listener_index();
            rt_->metrics->requests(i)->record(
                status_, std::chrono::duration<double>(Clock::now() - started_).count());
            rt_->metrics->listener(i)->bytes(bytes_in_, bytes_out_);
        }
        auto& log = worker_.access_log();
        if (!log.enabled() || !req_) return;
        const auto& h = req_->head();
        log::AccessRecord r;
        r.time = started_wall_;
        r.listener = listener_.name();
        r.client = client_ip_text_;
        r.method = h.method_string();
        r.path = h.target();
        r.status = status_;
        r.upstream = upstream_ ? std::string_view(upstream_->name()) : std::string_view();
        r.server = server_name_;
        r.bytes_in = bytes_in_;
        r.bytes_out = bytes_out_;
        r.duration_ms = ms_between(started_, Clock::now());
        r.first_byte_ms = first_byte_ms_;
        r.client_cert = client_cert_;
        r.api_key = api_key_name_;
        log.write(r);
    }

    Task<void> close_client() {
        closed_ = true;
        stop_watch();
        if (client_tls_ && !client_gone_) {
            // close_notify (not waiting for the client's), bounded: a client
            // that reads nothing does not hold the connection open.
            arm(Phase::client_write, std::chrono::seconds(1));
            co_await client_tls_->shutdown();  // any outcome ends the connection
            disarm();
        }
        if (linger_ && !client_gone_) co_await linger();
        // close(2) alone sends the FIN; a shutdown(2) first would only cost a
        // system call (failing when the client has gone).
        error_code ec;
        timer_.cancel();
        client_.close(ec);
    }

    // Lingering close (RFC 9112 §9.6, nginx's lingering_close): the answer
    // went out before the whole request was read. Closing now, with unread
    // bytes, makes the kernel reset the connection, and a client that writes
    // its whole body before it reads (Python's http.client, so the OpenAI
    // Python SDK) would get the reset instead of the answer. So: half-close,
    // then read and drop what the client still sends until it closes, for
    // kLingerTime and kLingerBytes at most. Over TLS the close_notify went
    // first; what follows is dropped undecrypted.
    Task<void> linger() {
        error_code ec;
        client_.shutdown(tcp::socket::shutdown_send, ec);
        if (ec) co_return;
        arm(Phase::linger, kLingerTime);
        std::uint64_t dropped = client_buf_.size();
        client_buf_.clear();
        while (dropped < kLingerBytes) {
            auto [rec, n] = co_await net::async_read_hinted(reactor_, client_,
                                                            client_buf_.prepare(kMaxRead), nothrow);
            if (rec) break;
            dropped += n;
        }
        disarm();
        client_buf_.clear();
    }

    app::Worker& worker_;
    net::ad::reactor& reactor_;  // the worker's, for net::async_read_hinted
    net::Listener& listener_;
    net::Socket client_;
    std::shared_ptr<tls::ServerContext> tls_ctx_;  // kept for the session's life
    std::unique_ptr<tls::ServerStream> client_tls_;  // TLS over client_ on TLS listeners
    std::string client_cert_;                       // verified mTLS subject
    std::string tls_gather_;
    util::Timer timer_;
    std::shared_ptr<const metrics::ConfigMetrics> accept_metrics_;  // keeps lm_ valid
    const metrics::ListenerMetrics* lm_ = nullptr;  // the listener it was accepted on
    access::Admission admission_;
    access::Decision decision_;
    boost::asio::ip::address conn_ip_;  // socket peer, or the PROXY header's source
    std::string forwarded_for_;          // X-Forwarded-For to send (behind trusted proxies)
    std::string_view api_key_name_;      // the API key's name, for the access log
    boost::asio::ip::address client_ip_;
    std::string client_ip_text_;

    std::shared_ptr<const app::Runtime> rt_;
    const config::ListenerConfig* lc_ = nullptr;
    const upstream::Upstream* upstream_ = nullptr;

    beast::flat_buffer client_buf_;
    std::size_t client_read_size_ = kMinRead;
    // The two heads of the current exchange (fields, target, reason, body
    // piece lists) are allocated here; released when the next request starts.
    std::pmr::monotonic_buffer_resource arena_;
    // The response heads after an interim (1xx) one (forward_interim()).
    std::pmr::monotonic_buffer_resource interim_arena_;
    std::optional<RelayParser<true>> req_;
    std::optional<RelayParser<false>> res_;
    Framing req_framing_ = Framing::none;
    Target target_;
    std::size_t pending_consume_ = 0;

    upstream::ServerLease lease_;
    std::shared_ptr<upstream::AdmissionQueue::Waiter> queued_;
    std::shared_ptr<upstream::UpstreamConnection> conn_;

    std::string head_out_;
    std::string error_body_;
    std::vector<asio::const_buffer> iov_;
    char chunk_line_[24];

    // deadline state
    Clock::time_point deadline_ = Clock::time_point::max();
    Phase phase_ = Phase::none;
    Phase timed_out_ = Phase::none;
    bool timer_waiting_ = false;
    std::uint64_t timer_gen_ = 0;

    // client watch
    bool watching_ = false;
    std::uint64_t watch_gen_ = 0;

    bool client_gone_ = false;
    bool keep_alive_ = true;
    bool in_request_ = false;
    bool last_request_ = false;  // the listener left the configuration
    bool closed_ = false;
    bool response_started_ = false;
    bool sent_continue_ = false;  // our own 100 Continue went to the client
    bool linger_ = false;         // close_client() reads what the client still sends
    unsigned interim_count_ = 0;
    std::uint64_t requests_ = 0;

    // per request, for the access log
    unsigned status_ = 0;
    unsigned last_error_status_ = 502;
    std::string last_error_message_;
    std::uint64_t bytes_in_ = 0;
    std::uint64_t bytes_out_ = 0;
    double first_byte_ms_ = -1;
    std::string_view server_name_;
    Clock::time_point started_;
    std::chrono::system_clock::time_point started_wall_;
};

}  // namespace

void start_session(app::Worker& worker, net::Listener& listener, net::Socket socket,
                   const access::Admission& admission) {
    auto session =
        std::make_shared<ClientSession>(worker, listener, std::move(socket), admission);
    // The completion handler owns the session until the coroutine ends.
    auto* s = session.get();
    asio::co_spawn(worker.io(), s->run(), [session = std::move(session)](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("session ended by an exception: {}", ex.what());
            }
        }
    });
}

}  // namespace dsgw::proxy
