// net::async_read_hinted (src/net/tcp_read.hpp): a plain TCP read that tells
// Asio when it drained the socket, so the next read waits for epoll instead of
// trying a recv(2) first. Real loopback sockets; every wait is bounded.

#include <gtest/gtest.h>

#include "../../src/net/tcp_read.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
namespace ad = boost::asio::detail;

// A connected pair on loopback: `ours` is the gateway's kind of socket
// (io_context executor, non-blocking, with or without the hint), `peer` a
// plain blocking socket the test writes with.
struct Pair {
    asio::io_context io{1};
    dsgw::net::Socket ours{io};
    tcp::socket peer{io};

    // hint: set TCP_INQ on the accepted socket; on_listener: on the
    // listening socket before the accept instead (as net::Listener does).
    explicit Pair(bool hint = true, bool on_listener = false) {
        tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        if (on_listener) {
            EXPECT_TRUE(dsgw::net::enable_read_hint(acceptor.native_handle()));
        }
        peer.connect(acceptor.local_endpoint());
        tcp::socket accepted(io);
        acceptor.accept(accepted);
        ours = dsgw::net::Socket(io, tcp::v4(), accepted.release());
        ours.non_blocking(true);
        if (hint) {
            EXPECT_TRUE(dsgw::net::enable_read_hint(ours));
        }
    }

    void send(std::string_view s) { asio::write(peer, asio::buffer(s)); }

    // One hinted read into a buffer of `size`; its result lands in `out`.
    struct Pending {
        std::string buf;
        std::optional<std::tuple<error_code, std::string>> out;
    };
    std::unique_ptr<Pending> start(std::size_t size = 64) {
        auto r = std::make_unique<Pending>();
        r->buf.assign(size, '\0');
        dsgw::net::async_read_hinted(dsgw::net::reactor_of(io), ours, asio::buffer(r->buf),
                                     [r = r.get()](error_code ec, std::size_t n) {
                                         r->out.emplace(ec, r->buf.substr(0, n));
                                     });
        return r;
    }

    // Runs the io_context for at most `limit`; after `delay`, does `action`.
    void run(std::chrono::milliseconds limit, std::chrono::milliseconds delay = 0ms,
             const std::function<void()>& action = {}) {
        asio::steady_timer later(io, delay);
        if (action) later.async_wait([&](error_code) { action(); });
        io.restart();
        io.run_for(limit);
    }

    // One read, bounded: nullopt when it did not complete in time (it is
    // then cancelled).
    std::optional<std::tuple<error_code, std::string>> read(std::size_t size = 4096,
                                                            std::chrono::milliseconds limit = 2s) {
        auto r = start(size);
        run(limit);
        if (!r->out) {
            ours.cancel();
            run(1s);
            return std::nullopt;
        }
        return r->out;
    }
};

std::tuple<ad::reactor_op::status, error_code, std::string> hinted_recv(Pair& p,
                                                                        std::size_t size = 4096) {
    std::string buf(size, '\0');
    error_code ec;
    std::size_t n = 0;
    auto st = dsgw::net::detail::recv_with_hint(p.ours.native_handle(), asio::buffer(buf), ec, n);
    return {st, ec, buf.substr(0, n)};
}

void settle() {
    // Loopback delivers within the writer's send(2); this only lets a FIN
    // sent by close() land too.
    std::this_thread::sleep_for(20ms);
}

TEST(TcpReadHint, ReportsDrainedOnlyWhenNothingIsLeft) {
    Pair p;
    p.send("hello");
    settle();
    auto [st, ec, got] = hinted_recv(p);
    EXPECT_FALSE(ec);
    EXPECT_EQ(got, "hello");
    EXPECT_EQ(st, ad::reactor_op::done_and_exhausted);

    p.send("0123456789");
    settle();
    auto [st2, ec2, got2] = hinted_recv(p, 4);  // leaves 6 bytes behind
    EXPECT_FALSE(ec2);
    EXPECT_EQ(got2, "0123");
    EXPECT_EQ(st2, ad::reactor_op::done);
    auto [st3, ec3, got3] = hinted_recv(p);
    EXPECT_EQ(got3, "456789");
    EXPECT_EQ(st3, ad::reactor_op::done_and_exhausted);

    auto [st4, ec4, got4] = hinted_recv(p);
    EXPECT_EQ(st4, ad::reactor_op::not_done);  // EAGAIN: nothing there
    EXPECT_FALSE(ec4);
}

// The session reads what a read left behind to tell bytes past the end of
// an upstream response (which must close the connection) from none.
TEST(TcpReadHint, ReportsHowManyBytesAreLeftBehind) {
    Pair p;
    p.send("0123456789");
    settle();
    std::string buf(4, '\0');
    error_code ec;
    std::size_t n = 0;
    int left = -2;
    dsgw::net::detail::recv_with_hint(p.ours.native_handle(), asio::buffer(buf), ec, n, &left);
    EXPECT_EQ(n, 4u);
    EXPECT_EQ(left, 6);
    buf.assign(16, '\0');
    dsgw::net::detail::recv_with_hint(p.ours.native_handle(), asio::buffer(buf), ec, n, &left);
    EXPECT_EQ(n, 6u);
    EXPECT_EQ(left, 0);
    // A FIN alone is reported as 1 (the session tells it from a byte apart).
    p.send("ab");
    p.peer.close();
    settle();
    dsgw::net::detail::recv_with_hint(p.ours.native_handle(), asio::buffer(buf), ec, n, &left);
    EXPECT_EQ(n, 2u);
    EXPECT_EQ(left, 1);
}

TEST(TcpReadHint, DataFollowedByCloseIsNotCalledDrained) {
    // The recv that returns the last bytes also takes the FIN off the queue;
    // had it said "drained", the next read would wait for an edge that never
    // comes. The kernel reports 1 left for a pending FIN.
    Pair p;
    p.send("last words");
    p.peer.close();
    settle();
    auto [st, ec, got] = hinted_recv(p);
    EXPECT_EQ(got, "last words");
    EXPECT_EQ(st, ad::reactor_op::done);
    auto [st2, ec2, got2] = hinted_recv(p);
    EXPECT_EQ(ec2, asio::error::eof);
    EXPECT_EQ(st2, ad::reactor_op::done);
}

TEST(TcpReadHint, ComesFromTheSocketOrItsListeningSocketOrNotAtAll) {
    // net::Listener sets TCP_INQ once on the listening socket and relies on
    // the kernel copying it to each accepted connection. Without it, no read
    // is ever called drained (and reads work as Asio's).
    struct Case {
        const char* name;
        bool on_socket, on_listener;
        ad::reactor_op::status expected;
    };
    for (const Case& c : {Case{"on the socket", true, false, ad::reactor_op::done_and_exhausted},
                          Case{"inherited", false, true, ad::reactor_op::done_and_exhausted},
                          Case{"absent", false, false, ad::reactor_op::done}}) {
        Pair p(c.on_socket, c.on_listener);
        p.send("hello");
        settle();
        auto [st, ec, got] = hinted_recv(p);
        EXPECT_EQ(got, "hello") << c.name;
        EXPECT_EQ(st, c.expected) << c.name;
    }
}

TEST(TcpRead, ReadsWhatArrivesLaterAfterADrainingRead) {
    // After a draining read the next one skips its try and waits for epoll:
    // data sent while it waits must still complete it.
    Pair p;
    p.send("first");
    auto r1 = p.read();
    ASSERT_TRUE(r1);
    EXPECT_FALSE(std::get<0>(*r1));
    EXPECT_EQ(std::get<1>(*r1), "first");

    auto r2 = p.start();
    p.run(2s, 50ms, [&] { p.send("second"); });
    ASSERT_TRUE(r2->out) << "the read waiting after a draining read never completed";
    EXPECT_FALSE(std::get<0>(*r2->out));
    EXPECT_EQ(std::get<1>(*r2->out), "second");
}

TEST(TcpRead, ARestLeftBehindIsReadAtOnce) {
    // The read is already waiting when the data lands, so epoll's edge is
    // spent on it; it takes 3 of 8 bytes. The next read must take the rest
    // at once: no new data, so no new edge, will come.
    Pair p;
    auto r1 = p.start(3);
    p.io.poll();  // its first try finds nothing: it waits for epoll
    ASSERT_FALSE(r1->out);
    p.send("abcdefgh");
    settle();
    p.run(2s);
    ASSERT_TRUE(r1->out);
    EXPECT_EQ(std::get<1>(*r1->out), "abc");
    auto r2 = p.read(64, 500ms);
    ASSERT_TRUE(r2) << "the rest of the data was left unread";
    EXPECT_EQ(std::get<1>(*r2), "defgh");
}

TEST(TcpRead, CloseAfterTheLastBytesEndsTheStreamAtOnce) {
    // The read is already waiting when the last bytes and the FIN land
    // together, so epoll reports them as one edge and one recv takes both.
    // The next read must see the end of the stream without another edge.
    Pair p;
    auto r1 = p.start();
    p.io.poll();  // its first try finds nothing: it waits for epoll
    ASSERT_FALSE(r1->out);
    p.send("bye");
    p.peer.close();
    settle();
    p.run(2s);
    ASSERT_TRUE(r1->out);
    EXPECT_EQ(std::get<1>(*r1->out), "bye");
    auto r2 = p.read(4096, 500ms);
    ASSERT_TRUE(r2) << "end of stream not seen: the read waited for an edge that never came";
    EXPECT_EQ(std::get<0>(*r2), asio::error::eof);
}

TEST(TcpRead, CloseWhileWaitingAfterADrainingReadEndsTheStream) {
    Pair p;
    p.send("x");
    ASSERT_TRUE(p.read());
    auto r = p.start();
    p.run(2s, 50ms, [&] { p.peer.close(); });
    ASSERT_TRUE(r->out);
    EXPECT_EQ(std::get<0>(*r->out), asio::error::eof);
}

TEST(TcpRead, CancelAndCloseAbortAPendingRead) {
    Pair p;
    for (bool close : {false, true}) {
        auto r = p.start();
        p.run(2s, 20ms, [&] {
            if (close)
                p.ours.close();
            else
                p.ours.cancel();
        });
        ASSERT_TRUE(r->out) << (close ? "close" : "cancel");
        EXPECT_EQ(std::get<0>(*r->out), asio::error::operation_aborted)
            << (close ? "close" : "cancel");
    }
    // And on a closed socket a read fails at once.
    auto r = p.start(8);
    p.run(1s);
    ASSERT_TRUE(r->out);
    EXPECT_EQ(std::get<0>(*r->out), asio::error::bad_descriptor);
}

TEST(TcpRead, AnEmptyBufferCompletesAtOnceWithNothing) {
    Pair p;
    auto r = p.start(0);
    p.run(1s);
    ASSERT_TRUE(r->out);
    EXPECT_FALSE(std::get<0>(*r->out));
    EXPECT_EQ(std::get<1>(*r->out), "");
}

TEST(TcpRead, AHandlerNeverCalledIsFreedWithTheContext) {
    // A read still pending when its io_context goes away is destroyed, not
    // called (ASan checks the memory goes back).
    std::unique_ptr<Pair::Pending> r;
    {
        Pair p;
        r = p.start(8);
        p.run(10ms);
    }
    EXPECT_FALSE(r->out);
}

}  // namespace
