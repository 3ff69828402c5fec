#include "net/tcp_read.hpp"

#include <boost/asio/io_context.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstring>

namespace dsgw::net {

bool enable_read_hint(int fd) {
    const int on = 1;
    return ::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, sizeof on) == 0;
}

namespace detail {

ad::reactor_op::status recv_with_hint(int fd, boost::asio::mutable_buffer b,
                                      boost::system::error_code& ec, std::size_t& n, int* left) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    iovec iov{b.data(), b.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    for (;;) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t r = ::recvmsg(fd, &msg, MSG_DONTWAIT);
        if (r > 0) {
            ec = {};
            n = static_cast<std::size_t>(r);
            if (left) *left = -1;
            // TCP_CM_INQ: bytes still queued, or 1 when only a FIN is (so a
            // close is never mistaken for "drained").
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ &&
                    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                    int queued = 0;
                    std::memcpy(&queued, CMSG_DATA(c), sizeof queued);
                    if (left) *left = queued;
                    if (queued == 0) return ad::reactor_op::done_and_exhausted;
                }
            }
            return ad::reactor_op::done;
        }
        n = 0;
        if (r == 0) {
            ec = boost::asio::error::eof;
            return ad::reactor_op::done;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return ad::reactor_op::not_done;
        ec = boost::system::error_code(errno, boost::asio::error::get_system_category());
        return ad::reactor_op::done;
    }
}

}  // namespace detail
}  // namespace dsgw::net
