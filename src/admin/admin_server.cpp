// The admin listener: an accept loop with the allow/deny check, and one small
// keep-alive loop per connection (read a request, answer it) with a deadline
// on every read and write. GCC 12 miscompiles `co_await` inside a condition:
// awaited values are bound to locals first.

#include "deepseek_gateway/admin/admin_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <system_error>
#include <unordered_set>

namespace dsgw::admin {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// A scraper keeps one connection; a few more cover humans with curl.
constexpr std::size_t kMaxConnections = 64;
constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr auto kIoTimeout = std::chrono::seconds(10);
constexpr std::uint32_t kHeaderLimit = 8 * 1024;
constexpr std::uint64_t kBodyLimit = 4 * 1024;

std::string endpoint_text(const tcp::endpoint& ep) {
    if (ep.address().is_v6()) return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

}  // namespace

struct AdminServer::Impl {
    Impl(asio::io_context& io, const config::AdminConfig& cfg, metrics::Metrics& m)
        : io(io), acceptor(io), endpoint(cfg.ip, cfg.address.port), policy(cfg.access), metrics(m) {}

    asio::io_context& io;
    tcp::acceptor acceptor;
    tcp::endpoint endpoint;          // configured, then bound
    access::Policy policy;           // io thread only
    metrics::Metrics& metrics;
    std::atomic<bool> metrics_on{true};
    ReadinessCheck ready_check;
    std::atomic<bool> serving{false};
    bool stopped = false;                     // io thread only
    std::unordered_set<beast::tcp_stream*> open;  // io thread only

    // Coroutines take `self` as a parameter: the frame owns it from creation.
    static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self);
    static asio::awaitable<void> serve(std::shared_ptr<Impl> self, tcp::socket socket);
    Response answer(const Request& req);
    void close_all();
};

namespace {

void log_exception(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        spdlog::error("admin: {}", ex.what());
    }
}

}  // namespace

asio::awaitable<void> AdminServer::Impl::accept_loop(std::shared_ptr<Impl> self) {
    auto& io = self->io;
    auto& open = self->open;
    asio::steady_timer backoff(io);
    while (!self->stopped) {
        auto [ec, socket] = co_await self->acceptor.async_accept(nothrow);
        if (self->stopped) break;
        if (ec) {
            if (ec == asio::error::operation_aborted) break;
            // EMFILE and friends: back off briefly instead of spinning.
            spdlog::warn("admin: accept failed: {}", ec.message());
            backoff.expires_after(std::chrono::milliseconds(50));
            auto [wec] = co_await backoff.async_wait(nothrow);
            (void)wec;
            continue;
        }
        error_code pec;
        auto peer = socket.remote_endpoint(pec);
        auto decision = pec ? access::Decision::not_allowed : self->policy.decide(peer.address());
        if (decision != access::Decision::allowed || open.size() >= kMaxConnections) {
            if (!pec)
                spdlog::debug("admin: refused {} ({})", peer.address().to_string(),
                              decision == access::Decision::allowed ? "too many connections"
                                                                    : access::to_string(decision));
            socket.set_option(asio::socket_base::linger(true, 0), pec);
            socket.close(pec);
            continue;
        }
        asio::co_spawn(io, serve(self, std::move(socket)), log_exception);
    }
}

asio::awaitable<void> AdminServer::Impl::serve(std::shared_ptr<Impl> self, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    self->open.insert(&stream);
    struct Unregister {
        Impl& impl;
        beast::tcp_stream* s;
        ~Unregister() { impl.open.erase(s); }
    } unregister{*self, &stream};

    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(kHeaderLimit);
        parser.body_limit(kBodyLimit);
        // Idle between requests; a started request gets the same bound.
        stream.expires_after(kIdleTimeout);
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
        (void)rn;
        if (self->stopped) break;
        Response res;
        bool keep_alive = false;
        if (rec) {
            if (rec == http::error::end_of_stream || rec == beast::error::timeout ||
                rec == asio::error::operation_aborted || rec == asio::error::connection_reset ||
                rec == asio::error::eof)
                break;
            res = Response(http::status::bad_request, 11);
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = "bad request\n";
            res.keep_alive(false);
            res.prepare_payload();
        } else {
            res = self->answer(parser.get());
            keep_alive = res.keep_alive();
        }
        stream.expires_after(kIoTimeout);
        auto [wec, wn] = co_await http::async_write(stream, res, nothrow);
        (void)wn;
        if (wec || !keep_alive || self->stopped) break;
    }
    error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.socket().close(ec);
}

Response AdminServer::Impl::answer(const Request& req) {
    auto target = std::string_view(req.target().data(), req.target().size());
    auto path = target.substr(0, target.find('?'));
    const bool head = req.method() == http::verb::head;
    const bool get = req.method() == http::verb::get || head;

    Response res(http::status::ok, req.version());
    res.keep_alive(req.keep_alive());
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    auto text = [&](http::status s, std::string body) {
        res.result(s);
        res.body() = std::move(body);
    };

    if (path != "/metrics" && path != "/healthz" && path != "/readyz") {
        text(http::status::not_found, "not found; try /metrics, /healthz or /readyz\n");
    } else if (!get) {
        text(http::status::method_not_allowed, "method not allowed\n");
        res.set(http::field::allow, "GET, HEAD");
    } else if (path == "/metrics" && !metrics_on.load(std::memory_order_relaxed)) {
        text(http::status::not_found, "metrics are off (admin.metrics: false)\n");
    } else if (path == "/metrics") {
        res.set(http::field::content_type,
                std::string_view(metrics::kContentType.data(), metrics::kContentType.size()));
        res.body() = metrics.render();
    } else if (path == "/healthz") {
        text(http::status::ok, "ok\n");
    } else if (!serving.load(std::memory_order_acquire)) {
        text(http::status::service_unavailable, "not ready: not serving (starting or draining)\n");
    } else if (auto why = ready_check ? ready_check() : std::nullopt) {
        text(http::status::service_unavailable, "not ready: " + *why + "\n");
    } else {
        text(http::status::ok, "ready\n");
    }
    res.prepare_payload();
    if (head) res.body().clear();  // Content-Length stays that of the GET
    return res;
}

void AdminServer::Impl::close_all() {
    stopped = true;
    error_code ec;
    acceptor.close(ec);
    std::vector<beast::tcp_stream*> streams(open.begin(), open.end());
    for (auto* s : streams) s->socket().close(ec);
}

AdminServer::AdminServer(asio::io_context& io, const config::AdminConfig& cfg,
                         metrics::Metrics& metrics)
    : impl_(std::make_shared<Impl>(io, cfg, metrics)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::set_readiness_check(ReadinessCheck check) { impl_->ready_check = std::move(check); }

void AdminServer::start() {
    auto& a = impl_->acceptor;
    const auto ep = impl_->endpoint;
    error_code ec;
    auto fail = [&](const char* what) {
        throw std::system_error(ec.value(), std::generic_category(),
                                std::string("admin.address: ") + what + " " + endpoint_text(ep));
    };
    a.open(ep.protocol(), ec);
    if (ec) fail("cannot open a socket for");
    a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (ep.address().is_v6()) a.set_option(asio::ip::v6_only(false), ec);  // "[::]": both families
    a.bind(ep, ec);
    if (ec) fail("cannot bind");
    a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) fail("cannot listen on");
    impl_->endpoint = a.local_endpoint(ec);
    spdlog::info("admin listening on {}", endpoint_text(impl_->endpoint));
    asio::co_spawn(impl_->io, Impl::accept_loop(impl_), log_exception);
}

void AdminServer::stop() {
    asio::dispatch(impl_->io, [impl = impl_] { impl->close_all(); });
}

tcp::endpoint AdminServer::local_endpoint() const { return impl_->endpoint; }

void AdminServer::set_serving(bool serving) {
    impl_->serving.store(serving, std::memory_order_release);
}

void AdminServer::set_metrics_enabled(bool on) {
    impl_->metrics_on.store(on, std::memory_order_relaxed);
}

void AdminServer::update_access(access::Policy policy) {
    asio::dispatch(impl_->io, [impl = impl_, p = std::move(policy)]() mutable {
        impl->policy = std::move(p);
    });
}

}  // namespace dsgw::admin
