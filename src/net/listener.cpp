#include "deepseek_gateway/net/listener.hpp"

#include "deepseek_gateway/access/admission.hpp"
#include "deepseek_gateway/access/policy.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/net/refusals.hpp"
#include "net/tcp_read.hpp"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <system_error>

namespace dsgw::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

tcp::acceptor bind_acceptor(asio::io_context& io, const tcp::endpoint& ep) {
    tcp::acceptor a(io);
    boost::system::error_code ec;
    auto fail = [&](const char* what) {
        // what(): "cannot bind 127.0.0.1:80: Permission denied"
        const auto host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]"
                                               : ep.address().to_string();
        throw std::system_error(ec.value(), std::generic_category(),
                                std::string(what) + " " + host + ":" + std::to_string(ep.port()));
    };
    a.open(ep.protocol(), ec);
    if (ec) fail("cannot open socket for");
    a.set_option(tcp::acceptor::reuse_address(true), ec);
    int one = 1;
    ::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ep.address().is_v6()) {
        // "[::]" means both families, as operators expect from nginx.
        a.set_option(asio::ip::v6_only(false), ec);
    }
    a.bind(ep, ec);
    if (ec) fail("cannot bind");
    a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) fail("cannot listen on");
    return a;
}

Listener::Listener(ListenerHost& host, std::string name, tcp::acceptor acceptor,
                   std::uint64_t max_connections)
    : host_(host),
      name_(std::move(name)),
      acceptor_(std::move(acceptor)),
      max_connections_(max_connections) {
    // Inherited by every accepted connection: reads learn whether they
    // drained the socket (net/tcp_read.hpp).
    if (acceptor_.is_open()) enable_read_hint(acceptor_.native_handle());
}

Listener::~Listener() { *alive_ = false; }

tcp::endpoint Listener::local_endpoint() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec);
}

void Listener::start() { accept(); }

void Listener::stop() {
    stopped_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
}

void Listener::set_max_connections(std::uint64_t n) {
    if (n == 0) return;
    max_connections_ = n;
    if (paused_ && !stopped_ && active_ < max_connections_) {
        paused_ = false;
        accept();
    }
}

void Listener::accept() {
    if (stopped_) return;
    if (active_ >= max_connections_) {
        paused_ = true;  // resumed by connection_closed()
        return;
    }
    // The peer's address comes with accept(2): no getpeername(2) per connection.
    acceptor_.async_accept(host_.io(), peer_,
                           [this, alive = alive_](boost::system::error_code ec, Socket s) {
                               if (!*alive) return;
                               on_accept(ec, std::move(s));
                           });
}

void Listener::on_accept(boost::system::error_code ec, Socket socket) {
    if (ec) {
        if (ec == asio::error::operation_aborted || stopped_) return;
        // EMFILE and friends: back off briefly instead of spinning.
        spdlog::warn("listener {}: accept failed: {}", name_, ec.message());
        auto timer =
            std::make_shared<asio::steady_timer>(host_.io(), std::chrono::milliseconds(50));
        timer->async_wait([this, timer, alive = alive_](boost::system::error_code) {
            if (*alive) accept();
        });
        return;
    }
    if (stopped_) {  // accepted just before stop(): it arrived too late
        socket.close(ec);
        return;
    }
    const auto entry = host_.listener_entry(name_);
    if (!entry.access) {  // removed by a reload while this acceptor was draining
        socket.close(ec);
        accept();
        return;
    }
    const auto& acc = *entry.access;
    auto admission = access::admit_connection(peer_.address(), acc.policy, acc.trusted_proxies,
                                              acc.proxy_protocol);
    const metrics::ListenerMetrics* lm = entry.metrics;
    if (admission.action == access::AcceptAction::refuse) {
        refusal_log().log({name_, admission.client, admission.reason, std::nullopt, {}});
        if (lm) lm->denied_by(admission.reason);
        // A PROXY header from an untrusted peer, or on_deny: close: close at
        // once with a reset, before any byte is read or written. Otherwise
        // the session answers 403.
        if (admission.reason == access::DenyReason::bad_proxy_header ||
            acc.on_deny == config::OnDeny::close) {
            socket.set_option(asio::socket_base::linger(true, 0), ec);
            socket.close(ec);
            accept();
            return;
        }
    }
    ++active_;
    host_.on_connection(*this, std::move(socket), admission);
    accept();
}

void Listener::connection_closed() {
    --active_;
    if (paused_ && !stopped_ && active_ < max_connections_) {
        paused_ = false;
        accept();
    }
}

}  // namespace dsgw::net
