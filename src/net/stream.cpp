// net::Stream: one read and write path over plain TCP and both TLS streams.

#include "deepseek_gateway/net/stream.hpp"

#include "deepseek_gateway/tls/server_stream.hpp"
#include "net/tcp_read.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace dsgw::net {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

namespace {

// What a write that went at once left: `iov` after its first `skip` bytes,
// written by Asio. A coroutine so that the copy of the list lives on.
Task<IoResult> write_tail(Socket& s, std::span<const asio::const_buffer> iov, std::size_t skip) {
    std::vector<asio::const_buffer> rest;
    for (const auto& b : iov) {
        if (skip >= b.size()) {
            skip -= b.size();
            continue;
        }
        rest.push_back(b + skip);
        skip = 0;
    }
    auto result = co_await asio::async_write(s, rest, nothrow);
    co_return result;
}

// A TLS 1.2 alert record, or a 19-byte record (a TLS 1.3 alert: 2 bytes,
// the content type and a 16-byte tag): the client saying goodbye.
bool tls_goodbye(const unsigned char* h, long n) {
    if (n < 1) return false;
    if (h[0] == 21) return true;  // alert
    return n >= 5 && h[0] == 23 && ((h[3] << 8) | h[4]) == 19;
}

}  // namespace

Stream::Stream(Socket& socket)
    : socket_(socket), reactor_(reactor_of(socket.get_executor().context())), kind_(Kind::plain) {}

Stream::Stream(Socket& socket, tls::ServerStream& tls)
    : socket_(socket),
      reactor_(reactor_of(socket.get_executor().context())),
      kind_(Kind::server_tls) {
    tls_.server = &tls;
}

Stream::Stream(Socket& socket, ClientTls& tls)
    : socket_(socket),
      reactor_(reactor_of(socket.get_executor().context())),
      kind_(Kind::client_tls) {
    tls_.client = &tls;
}

SSL* Stream::ssl() const {
    switch (kind_) {
        case Kind::server_tls:
            return tls_.server->native_handle();
        case Kind::client_tls:
            return tls_.client->native_handle();
        case Kind::plain:
            break;
    }
    return nullptr;
}

Task<IoResult> Stream::read_some(boost::beast::flat_buffer& buf, std::size_t size, int* left) {
    auto space = buf.prepare(size);
    switch (kind_) {
        case Kind::server_tls:
            return tls_.server->read_some(space);
        case Kind::client_tls:
            return tls_.client->async_read_some(space, nothrow);
        case Kind::plain:
            break;
    }
    return async_read_hinted(reactor_, socket_, space, left, nothrow);
}

bool Stream::write_now(std::span<const asio::const_buffer> iov, error_code& ec, std::size_t& done) {
    done = 0;
    if (iov.empty()) return true;
    if (kind_ != Kind::plain || !socket_.non_blocking()) return false;
    // sendmsg(2) from here: it usually takes everything, and the caller goes
    // on without a trip through the event loop (an Asio operation completes
    // by a post, even when its first attempt succeeds).
    done = socket_.write_some(iov, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        done = 0;
    }
    return ec || done == asio::buffer_size(iov);
}

Task<IoResult> Stream::write_rest(const std::vector<asio::const_buffer>& iov, std::size_t done) {
    if (kind_ == Kind::plain) {
        std::span<const asio::const_buffer> all(iov);
        if (socket_.non_blocking()) return write_tail(socket_, all, done);
        return asio::async_write(socket_, all, nothrow);
    }
    // An SSL write makes one record per buffer: gather them into one.
    gather_.clear();
    for (const auto& b : iov) gather_.append(static_cast<const char*>(b.data()), b.size());
    if (kind_ == Kind::server_tls) return tls_.server->write(asio::buffer(gather_));
    return asio::async_write(*tls_.client, asio::buffer(gather_), nothrow);
}

Task<error_code> Stream::shutdown() {
    if (kind_ == Kind::server_tls) return tls_.server->shutdown();
    return []() -> Task<error_code> { co_return error_code{}; }();
}

bool Stream::tls_pending() const {
    SSL* s = ssl();
    return s && SSL_has_pending(s);
}

bool Stream::peer_left(bool& would_block) const {
    unsigned char head[5];
    const bool tls = kind_ != Kind::plain;
    const auto r =
        ::recv(socket_.native_handle(), head, tls ? sizeof head : 1, MSG_PEEK | MSG_DONTWAIT);
    would_block = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    if (would_block) return false;
    return r <= 0 || (tls && tls_goodbye(head, r));
}

}  // namespace dsgw::net
