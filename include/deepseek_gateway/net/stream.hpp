#pragma once
// A connection's byte stream, plain or TLS, for the request path: both ends
// (client and upstream) read and write through it without knowing which it
// is. It keeps the fast paths: reads that tell the reactor when they drained
// the socket (net/tcp_read.hpp), writes tried at once from the caller (no trip
// through the event loop, no coroutine frame), and over TLS one record per
// gathered write, so an SSE event travels as one record, not three.

#include "deepseek_gateway/net/socket.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <tuple>
#include <vector>

namespace boost::asio::detail {
class epoll_reactor;
}
namespace boost::asio::ssl {
template <typename Stream>
class stream;
}
namespace dsgw::tls {
class ServerStream;
}
typedef struct ssl_st SSL;

namespace dsgw::net {

using IoResult = std::tuple<boost::system::error_code, std::size_t>;
// Asio's TLS stream: the gateway's side of a TLS connection to an upstream.
using ClientTls = boost::asio::ssl::stream<Socket&>;

class Stream {
public:
    // Plain TCP.
    explicit Stream(Socket& socket);
    // TLS towards a client (our own stream, tls/server_stream.hpp).
    Stream(Socket& socket, tls::ServerStream& tls);
    // TLS towards an upstream.
    Stream(Socket& socket, ClientTls& tls);
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    Socket& socket() { return socket_; }
    bool tls() const { return kind_ != Kind::plain; }
    // The OpenSSL connection, null on plain TCP.
    SSL* ssl() const;

    // One read into `buf.prepare(size)`; the caller commits what it got.
    // `left`: where a plain read stores what it left in the kernel (TCP_INQ;
    // -1 unknown, which it always is over TLS). Not a coroutine: the
    // operation's awaitable comes back as it is.
    Task<IoResult> read_some(boost::beast::flat_buffer& buf, std::size_t size, int* left = nullptr);

    // Tries to write all of `iov` now (plain, non-blocking sockets only).
    // True when nothing is left to wait for: all of it went, or `ec` says why
    // not; `done` is what went. Over TLS nothing is written here (false).
    bool write_now(std::span<const boost::asio::const_buffer> iov, boost::system::error_code& ec,
                   std::size_t& done);
    // Writes what write_now() left of `iov` (all of it over TLS: gathered
    // into one buffer first). `iov` must live until the operation ends.
    Task<IoResult> write_rest(const std::vector<boost::asio::const_buffer>& iov, std::size_t done);

    // TLS: close_notify, without waiting for the peer's. Plain: nothing.
    Task<boost::system::error_code> shutdown();

    // Bytes OpenSSL holds that the caller has not read (decrypted or not).
    bool tls_pending() const;
    // The client side while a response is relayed: bytes waiting on the
    // socket are either a pipelined request (false) or the client going away
    // (true: an end of stream, an error, or over TLS an alert record).
    // `would_block` is set when nothing is waiting at all.
    bool peer_left(bool& would_block) const;

private:
    enum class Kind { plain, server_tls, client_tls };
    Socket& socket_;
    boost::asio::detail::epoll_reactor& reactor_;
    Kind kind_;
    union {
        tls::ServerStream* server;
        ClientTls* client;
    } tls_{};
    std::string gather_;  // one TLS record's worth of a gathered write
};

}  // namespace dsgw::net
