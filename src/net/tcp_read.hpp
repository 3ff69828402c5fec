#pragma once
// A read from a plain TCP socket that tells Asio when it has drained the
// socket, so that the next read waits for readiness instead of trying first.
//
// Asio tries every read at once (a "speculative" recv(2)) and waits for epoll
// only when that fails. A proxy reads where the data is rarely there yet: the
// upstream's response just after the request went out, the client's next
// request just after the response went out, the next SSE event just after the
// last one went out. Each of those tries is a recv(2) that fails with EAGAIN:
// two per proxied request, one per relayed event. nginx skips them: after a
// read that left nothing behind it waits for epoll's next edge.
//
// This op does the same within Asio. It reads with recvmsg(2) and asks the
// kernel, through TCP_INQ, how many bytes are left behind. When none are (and
// no FIN is waiting: the kernel then reports 1), it completes as
// "done_and_exhausted", and Asio's reactor skips the try for the socket's next
// read until epoll reports the socket again. Data that arrives after the read
// always brings a new edge (epoll is edge-triggered), so nothing is missed.
// Without TCP_INQ on the socket (enable_read_hint() failed) the kernel sends
// no count, and this is Asio's read as before.
//
// A private header of src/ (the session, the TLS stream, the listener): it
// needs Asio's detail headers, which stay out of include/.

#include "deepseek_gateway/net/socket.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/error.hpp>

#include <cstddef>
#include <memory>

namespace dsgw::net {

// Asks the kernel to report, with every read from `s`, how many bytes the read
// left behind (TCP_INQ, Linux 4.18+). Returns false when the kernel refused;
// reads then work as Asio's. Set on a listening socket, it is inherited by
// the connections accepted from it (as TCP_NODELAY is), so the listeners set
// it once instead of a setsockopt(2) per connection.
bool enable_read_hint(int fd);
inline bool enable_read_hint(Socket& s) {
    return enable_read_hint(s.native_handle());
}

namespace ad = boost::asio::detail;

namespace detail {

// recvmsg(2) into `b` without blocking. Returns not_done on EAGAIN; done with
// `ec` set on an error or at the end of the stream; done_and_exhausted when the
// read left nothing behind; done otherwise. With `left`, a read that got
// bytes stores there what the kernel reported it left behind (1 may be a
// FIN alone), or -1 when the kernel said nothing.
ad::reactor_op::status recv_with_hint(int fd, boost::asio::mutable_buffer b,
                                      boost::system::error_code& ec, std::size_t& n,
                                      int* left = nullptr);

// The socket's Asio state (descriptor and reactor registration). basic_socket
// keeps it protected; a pointer to the member, formed in a derived class, is
// the lawful way to reach it.
struct SocketAccess : Socket {
    static auto& impl(Socket& s) {
        auto member = &SocketAccess::impl_;
        return (s.*member).get_implementation();
    }
};

template <class Handler, class Reader>
class ReadOp : public ad::reactor_op {
public:
    BOOST_ASIO_DEFINE_HANDLER_PTR(ReadOp);

    ReadOp(const Reader& reader, Handler& handler, const Executor& ex)
        : ad::reactor_op(boost::system::error_code(), &ReadOp::do_perform, &ReadOp::do_complete),
          reader_(reader),
          handler_(static_cast<Handler&&>(handler)),
          work_(handler_, ex) {}

    static status do_perform(ad::reactor_op* base) {
        auto* o = static_cast<ReadOp*>(base);
        return o->reader_(o->ec_, o->bytes_transferred_);
    }

    // As Asio's reactive_socket_recv_op: free the op, then call the handler
    // (through its executor) unless the io_context is being destroyed.
    static void do_complete(void* owner, ad::operation* base, const boost::system::error_code&,
                            std::size_t) {
        auto* o = static_cast<ReadOp*>(base);
        ptr p = {std::addressof(o->handler_), o, o};
        ad::handler_work<Handler, Executor> w(std::move(o->work_));
        ad::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                             o->bytes_transferred_);
        p.h = std::addressof(handler.handler_);
        p.reset();
        if (owner) {
            ad::fenced_block b(ad::fenced_block::half);
            w.complete(handler, handler.handler_);
        }
    }

private:
    Reader reader_;
    Handler handler_;
    ad::handler_work<Handler, Executor> work_;
};

// Starts a read of `s` in `reactor` (the socket's), performed by `reader`:
// a callable `status(error_code&, std::size_t&)` that reads without blocking
// and returns not_done when nothing was there. `empty`: complete at once,
// with nothing read (as Asio does for an empty buffer).
struct InitiateRead {
    template <class Handler, class Reader>
    void operator()(Handler&& h, ad::reactor* reactor, Socket* s, const Reader& reader,
                    bool empty) const {
        using Op = ReadOp<std::decay_t<Handler>, Reader>;
        std::decay_t<Handler> handler(static_cast<Handler&&>(h));
        auto& impl = SocketAccess::impl(*s);
        const bool continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
        typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
        p.p = new (p.v) Op(reader, handler, s->get_executor());
        if (empty) {
            reactor->post_immediate_completion(p.p, continuation);
        } else {
            // The reactor completes it with bad_descriptor when the socket is
            // closed, and with operation_aborted on cancel() or close().
            reactor->start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                              continuation, true);
        }
        p.v = p.p = nullptr;
    }
};

struct PlainReader {
    int fd;
    boost::asio::mutable_buffer buffer;
    int* left;
    ad::reactor_op::status operator()(boost::system::error_code& ec, std::size_t& n) const {
        return recv_with_hint(fd, buffer, ec, n, left);
    }
};

}  // namespace detail

// The reactor of `ctx`: look it up once per connection (it costs a lock and
// a walk over the context's services), not per read.
inline ad::reactor& reactor_of(boost::asio::io_context& ctx) {
    return boost::asio::use_service<ad::reactor>(ctx);
}

// One read from `s` into `b`, as s.async_read_some(b, token), but with the
// drained-socket hint above. `reactor` is reactor_of(the socket's context).
// The socket must be open; the read itself never blocks (MSG_DONTWAIT).
// With `left`, what the read left behind in the kernel, as recv_with_hint()
// tells it (the upstream side uses it: bytes past a response's end).
template <class Token>
auto async_read_hinted(ad::reactor& reactor, Socket& s, boost::asio::mutable_buffer b, int* left,
                       Token&& token) {
    const int fd = s.is_open() ? s.native_handle() : -1;
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        detail::InitiateRead{}, token, &reactor, &s, detail::PlainReader{fd, b, left},
        b.size() == 0);
}
template <class Token>
auto async_read_hinted(ad::reactor& reactor, Socket& s, boost::asio::mutable_buffer b,
                       Token&& token) {
    return async_read_hinted(reactor, s, b, nullptr, static_cast<Token&&>(token));
}

}  // namespace dsgw::net
