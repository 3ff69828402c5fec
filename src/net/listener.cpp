#include "deepseek_gateway/net/listener.hpp"

#include "deepseek_gateway/access/policy.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/proxy/session.hpp"

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
        throw std::system_error(ec.value(), std::generic_category(),
                                std::string(what) + " " + ep.address().to_string() + ":" +
                                    std::to_string(ep.port()));
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

Listener::Listener(app::Worker& worker, std::string name, tcp::acceptor acceptor,
                   std::uint64_t max_connections)
    : worker_(worker),
      name_(std::move(name)),
      acceptor_(std::move(acceptor)),
      max_connections_(max_connections) {}

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

void Listener::accept() {
    if (stopped_) return;
    if (active_ >= max_connections_) {
        paused_ = true;  // resumed by connection_closed()
        return;
    }
    acceptor_.async_accept(worker_.io(), [this, alive = alive_](boost::system::error_code ec,
                                                                 tcp::socket s) {
        if (!*alive) return;
        on_accept(ec, std::move(s));
    });
}

void Listener::on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
        if (ec == asio::error::operation_aborted || stopped_) return;
        // EMFILE and friends: back off briefly instead of spinning.
        spdlog::warn("listener {}: accept failed: {}", name_, ec.message());
        auto timer = std::make_shared<asio::steady_timer>(worker_.io(), std::chrono::milliseconds(50));
        timer->async_wait([this, timer, alive = alive_](boost::system::error_code) {
            if (*alive) accept();
        });
        return;
    }
    const auto& rt = worker_.runtime();
    const config::ListenerConfig* lc = nullptr;
    for (const auto& l : rt->config->listeners)
        if (l.name == name_) lc = &l;
    if (!lc) {  // removed by a reload while this acceptor was draining
        socket.close(ec);
        accept();
        return;
    }
    auto peer = socket.remote_endpoint(ec);
    if (ec) {
        socket.close(ec);
        accept();
        return;
    }
    auto decision = lc->access.policy.decide(peer.address());
    if (decision != access::Decision::allowed &&
        lc->access.on_deny == config::OnDeny::close) {
        spdlog::debug("listener {}: refused {} ({})", name_, peer.address().to_string(),
                      access::to_string(decision));
        // Close at once with a reset, before any byte is read or written.
        socket.set_option(asio::socket_base::linger(true, 0), ec);
        socket.close(ec);
        accept();
        return;
    }
    ++active_;
    proxy::start_session(worker_, *this, std::move(socket), decision);
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
