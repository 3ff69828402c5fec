#pragma once
// TLS on an accepted client connection, with OpenSSL reading and writing the
// socket itself (as nginx and HAProxy do). Asio's ssl::stream goes through a
// BIO pair instead: every byte is copied once more, and each connection
// carries four 17 KiB buffers (about 68 KiB) for as long as it is open. Here
// OpenSSL's own buffers are all there is, and SSL_MODE_RELEASE_BUFFERS frees
// them while the connection is idle.
//
// The socket stays an Asio socket, so cancel() and close() on it end a
// pending operation with operation_aborted as they do for plain connections.
// A read is an operation in Asio's reactor that calls SSL_read itself when
// the socket is readable (see net/tcp_read.hpp): no recv(2) that finds
// nothing, and no epoll_ctl(2) per wait. Waiting to write (rare: a full
// socket buffer) and the handshake's waits are async_waits. The operations
// may run one read and one write at a time (full duplex), from the socket's
// own thread.

#include "deepseek_gateway/net/socket.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <tuple>

namespace boost::asio::detail {
class epoll_reactor;
}

namespace dsgw::tls {

class ServerStream {
public:
    using IoResult = std::tuple<boost::system::error_code, std::size_t>;

    // The socket must outlive the stream; it is made non-blocking here.
    ServerStream(net::Socket& socket, boost::asio::ssl::context& ctx);
    ~ServerStream();
    ServerStream(const ServerStream&) = delete;
    ServerStream& operator=(const ServerStream&) = delete;

    SSL* native_handle() { return ssl_; }

    net::Task<boost::system::error_code> handshake();
    // Like a socket's read_some: some bytes, or an error. The end of the
    // stream is asio::error::eof after the client's close_notify, and
    // ssl::error::stream_truncated without one.
    net::Task<IoResult> read_some(boost::asio::mutable_buffer buf);
    // Writes all of `buf` (one TLS record per 16 KiB).
    net::Task<IoResult> write(boost::asio::const_buffer buf);
    // Sends close_notify and does not wait for the client's (nginx does the
    // same): the connection is closed right after.
    net::Task<boost::system::error_code> shutdown();

    // For the BIO: the socket's descriptor (-1 once closed), the errno of
    // the last failed socket call, and whether the last recv left the socket
    // empty (no bytes, no FIN).
    int descriptor() const;
    void set_sys_error(int e) { sys_error_ = e; }
    void set_drained(bool d) { drained_ = d; }

    // For the read operation, called by the reactor: one SSL_read into
    // `buf`. Returns 0 when it must wait for the socket to be readable; 1 when
    // done (`ec` set on an error, or to would_block when it must wait for the
    // socket to be writable); 2 when done and neither the socket nor
    // OpenSSL's buffer holds anything more.
    int perform_read(boost::asio::mutable_buffer buf, boost::system::error_code& ec,
                     std::size_t& n);

private:
    enum class Step { done, wait_read, wait_write, failed };
    Step after(int ret, boost::system::error_code& ec);
    net::Task<boost::system::error_code> wait(Step step);

    net::Socket& socket_;
    boost::asio::detail::epoll_reactor& reactor_;
    SSL* ssl_;
    int sys_error_ = 0;
    bool drained_ = false;
};

}  // namespace dsgw::tls
