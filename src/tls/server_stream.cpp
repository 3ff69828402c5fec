#include "deepseek_gateway/tls/server_stream.hpp"

#include "net/tcp_read.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <climits>
#include <stdexcept>

namespace dsgw::tls {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

using net::nothrow;

ServerStream* owner(BIO* b) {
    return static_cast<ServerStream*>(BIO_get_data(b));
}

bool would_block(int e) {
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

// A socket BIO of our own, for two reasons: send(2) with MSG_NOSIGNAL (a
// client that has gone must not raise SIGPIPE), and the descriptor is looked
// up at each call, so a socket closed under a pending operation fails with
// EBADF instead of reaching whatever connection reuses its number.
int descriptor_of(BIO* b) {
    BIO_clear_retry_flags(b);
    const int fd = owner(b)->descriptor();
    if (fd < 0) owner(b)->set_sys_error(EBADF);
    return fd;
}

// send(2) with MSG_NOSIGNAL: the bytes sent, or -1 with "retry" or the error
// recorded.
int bio_write(BIO* b, const char* data, int len) {
    const int fd = descriptor_of(b);
    if (fd < 0) return -1;
    const ssize_t n = ::send(fd, data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (would_block(errno))
        BIO_set_retry_write(b);
    else
        owner(b)->set_sys_error(errno);
    return -1;
}

// recvmsg(2) with the kernel's count of what is left (net/tcp_read.hpp), so
// the read operation can tell the reactor when the socket is drained.
int bio_read(BIO* b, char* out, int len) {
    const int fd = descriptor_of(b);
    if (fd < 0) return -1;
    error_code ec;
    std::size_t n = 0;
    const auto st =
        net::detail::recv_with_hint(fd, asio::buffer(out, static_cast<std::size_t>(len)), ec, n);
    ServerStream* s = owner(b);
    if (st == net::ad::reactor_op::not_done) {  // EAGAIN
        s->set_drained(true);
        BIO_set_retry_read(b);
        return -1;
    }
    s->set_drained(st == net::ad::reactor_op::done_and_exhausted);
    if (ec == asio::error::eof) return 0;
    if (ec) {
        s->set_sys_error(ec.value());
        return -1;
    }
    return static_cast<int>(n);
}

long bio_ctrl(BIO*, int cmd, long, void*) {
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is buffered here
}

int bio_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

BIO_METHOD* socket_method() {
    static BIO_METHOD* method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "dsgw socket");
        if (!m || BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
            BIO_meth_set_ctrl(m, bio_ctrl) != 1 || BIO_meth_set_create(m, bio_create) != 1)
            throw std::runtime_error("cannot create the TLS socket BIO");
        return m;
    }();
    return method;
}

}  // namespace

ServerStream::ServerStream(net::Socket& socket, asio::ssl::context& ctx)
    : socket_(socket),
      reactor_(net::reactor_of(socket.get_executor().context())),
      ssl_(SSL_new(ctx.native_handle())) {
    if (!ssl_) throw std::runtime_error("SSL_new failed");
    BIO* bio = BIO_new(socket_method());
    if (!bio) {
        SSL_free(ssl_);
        throw std::runtime_error("BIO_new failed");
    }
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);  // the SSL owns the BIO
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One recv(2) takes all that has arrived (up to OpenSSL's 16 KiB
    // buffer), instead of one for each record's header and one for its body.
    SSL_set_read_ahead(ssl_, 1);
    SSL_set_accept_state(ssl_);
    error_code ec;
    socket_.non_blocking(true, ec);
}

ServerStream::~ServerStream() {
    SSL_free(ssl_);
}

int ServerStream::descriptor() const {
    return socket_.is_open() ? socket_.native_handle() : -1;
}

// What an SSL call's return value asks for next. Mirrors Asio's engine for
// the error codes, so callers see the same ones as with ssl::stream.
ServerStream::Step ServerStream::after(int ret, error_code& ec) {
    const int err = SSL_get_error(ssl_, ret);
    switch (err) {
        case SSL_ERROR_WANT_READ:
            return Step::wait_read;
        case SSL_ERROR_WANT_WRITE:
            return Step::wait_write;
        case SSL_ERROR_ZERO_RETURN:  // the client's close_notify
            ec = asio::error::eof;
            return Step::failed;
        case SSL_ERROR_SYSCALL:
            if (sys_error_ != 0)
                ec = error_code(sys_error_, boost::system::system_category());
            else if (ERR_peek_error() != 0)
                ec = error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
            else
                ec = asio::ssl::error::stream_truncated;  // EOF without close_notify
            return Step::failed;
        default: {
            const unsigned long e = ERR_get_error();
            if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
                ec = asio::ssl::error::stream_truncated;
            else
                ec = error_code(static_cast<int>(e), asio::error::get_ssl_category());
            return Step::failed;
        }
    }
}

net::Task<error_code> ServerStream::wait(Step step) {
    auto [ec] = co_await socket_.async_wait(
        step == Step::wait_read ? tcp::socket::wait_read : tcp::socket::wait_write, nothrow);
    co_return ec;
}

net::Task<error_code> ServerStream::handshake() {
    for (;;) {
        ERR_clear_error();
        sys_error_ = 0;
        const int r = SSL_do_handshake(ssl_);
        if (r == 1) co_return error_code{};
        error_code ec;
        const Step step = after(r, ec);
        if (step == Step::failed) co_return ec;
        ec = co_await wait(step);
        if (ec) co_return ec;
    }
}

int ServerStream::perform_read(asio::mutable_buffer buf, error_code& ec, std::size_t& n) {
    ERR_clear_error();
    sys_error_ = 0;
    drained_ = false;
    n = 0;
    const std::size_t want = buf.size() > INT_MAX ? INT_MAX : buf.size();
    const int r = SSL_read_ex(ssl_, buf.data(), want, &n);
    if (r == 1) {
        ec = {};
        return drained_ && SSL_has_pending(ssl_) == 0 ? 2 : 1;
    }
    n = 0;
    switch (after(r, ec)) {
        case Step::wait_read:
            return 0;
        case Step::wait_write:
            ec = asio::error::would_block;
            return 1;
        default:
            return 1;  // failed, `ec` set
    }
}

namespace {

struct SslReader {
    ServerStream* stream;
    asio::mutable_buffer buffer;
    net::ad::reactor_op::status operator()(error_code& ec, std::size_t& n) const {
        return static_cast<net::ad::reactor_op::status>(stream->perform_read(buffer, ec, n));
    }
};

}  // namespace

net::Task<ServerStream::IoResult> ServerStream::read_some(asio::mutable_buffer buf) {
    for (;;) {
        auto [ec, n] =
            co_await asio::async_initiate<decltype(nothrow), void(error_code, std::size_t)>(
                net::detail::InitiateRead{}, nothrow, &reactor_, &socket_, SslReader{this, buf},
                buf.size() == 0);
        if (ec != asio::error::would_block) co_return IoResult{ec, n};
        // SSL_read has to write first (a TLS 1.3 key update, say) and the
        // socket's buffer is full.
        ec = co_await wait(Step::wait_write);
        if (ec) co_return IoResult{ec, 0};
    }
}

net::Task<ServerStream::IoResult> ServerStream::write(asio::const_buffer buf) {
    const auto* p = static_cast<const unsigned char*>(buf.data());
    std::size_t done = 0;
    while (done < buf.size()) {
        ERR_clear_error();
        sys_error_ = 0;
        std::size_t n = 0;
        const int r = SSL_write_ex(ssl_, p + done, buf.size() - done, &n);
        if (r == 1) {
            done += n;
            continue;
        }
        error_code ec;
        const Step step = after(r, ec);
        if (step == Step::failed) co_return IoResult{ec, done};
        ec = co_await wait(step);
        if (ec) co_return IoResult{ec, done};
    }
    co_return IoResult{error_code{}, done};
}

net::Task<error_code> ServerStream::shutdown() {
    if (SSL_in_init(ssl_)) co_return error_code{};  // no handshake, nothing to close
    // Marked as received, SSL_shutdown is done once our close_notify is out.
    SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_RECEIVED_SHUTDOWN);
    for (;;) {
        ERR_clear_error();
        sys_error_ = 0;
        const int r = SSL_shutdown(ssl_);
        if (r >= 0) co_return error_code{};
        error_code ec;
        const Step step = after(r, ec);
        if (step == Step::failed) co_return ec;
        ec = co_await wait(step);
        if (ec) co_return ec;
    }
}

}  // namespace dsgw::tls
