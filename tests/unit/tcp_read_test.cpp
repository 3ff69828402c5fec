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

    explicit Pair(bool hint = true) {
        tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
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

    // One hinted read, run on the io_context for at most `limit`. nullopt when
    // it did not complete in time (the read is then cancelled).
    std::optional<std::tuple<error_code, std::string>> read(std::size_t size = 4096,
                                                            std::chrono::milliseconds limit = 2s) {
        std::string buf(size, '\0');
        std::optional<std::tuple<error_code, std::string>> out;
        dsgw::net::async_read_hinted(
            dsgw::net::reactor_of(io), ours, asio::buffer(buf),
            [&](error_code ec, std::size_t n) { out.emplace(ec, buf.substr(0, n)); });
        io.restart();
        io.run_for(limit);
        if (!out) {
            ours.cancel();
            io.restart();
            io.run_for(1s);
            return std::nullopt;
        }
        return out;
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

TEST(TcpReadHint, WithoutTheSocketOptionNothingIsCalledDrained) {
    Pair p(false);
    p.send("hello");
    settle();
    auto [st, ec, got] = hinted_recv(p);
    EXPECT_EQ(got, "hello");
    EXPECT_EQ(st, ad::reactor_op::done);
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

    std::string buf(64, '\0');
    std::optional<std::tuple<error_code, std::string>> out;
    dsgw::net::async_read_hinted(
        dsgw::net::reactor_of(p.io), p.ours, asio::buffer(buf),
        [&](error_code ec, std::size_t n) { out.emplace(ec, buf.substr(0, n)); });
    asio::steady_timer later(p.io, 50ms);
    later.async_wait([&](error_code) { p.send("second"); });
    p.io.restart();
    p.io.run_for(2s);
    ASSERT_TRUE(out) << "the read waiting after a draining read never completed";
    EXPECT_FALSE(std::get<0>(*out));
    EXPECT_EQ(std::get<1>(*out), "second");
}

TEST(TcpRead, ARestLeftBehindIsReadAtOnce) {
    Pair p;
    p.send("abcdefgh");
    settle();
    auto r1 = p.read(3);
    ASSERT_TRUE(r1);
    EXPECT_EQ(std::get<1>(*r1), "abc");
    auto r2 = p.read(64, 500ms);  // no new data arrives: it must not wait for any
    ASSERT_TRUE(r2) << "the rest of the data was left unread";
    EXPECT_EQ(std::get<1>(*r2), "defgh");
}

TEST(TcpRead, CloseAfterTheLastBytesEndsTheStreamAtOnce) {
    // The read is already waiting when the last bytes and the FIN land
    // together, so epoll reports them as one edge and one recv takes both.
    // The next read must see the end of the stream without another edge.
    Pair p;
    std::string buf(64, '\0');
    std::optional<std::tuple<error_code, std::string>> out;
    dsgw::net::async_read_hinted(
        dsgw::net::reactor_of(p.io), p.ours, asio::buffer(buf),
        [&](error_code ec, std::size_t n) { out.emplace(ec, buf.substr(0, n)); });
    p.io.poll();  // its first try finds nothing: it waits for epoll
    ASSERT_FALSE(out);
    p.send("bye");
    p.peer.close();
    settle();
    p.io.restart();
    p.io.run_for(2s);
    ASSERT_TRUE(out);
    EXPECT_EQ(std::get<1>(*out), "bye");
    auto r2 = p.read(4096, 500ms);
    ASSERT_TRUE(r2) << "end of stream not seen: the read waited for an edge that never came";
    EXPECT_EQ(std::get<0>(*r2), asio::error::eof);
}

TEST(TcpRead, CloseWhileWaitingAfterADrainingReadEndsTheStream) {
    Pair p;
    p.send("x");
    ASSERT_TRUE(p.read());
    std::string buf(64, '\0');
    std::optional<error_code> out;
    dsgw::net::async_read_hinted(dsgw::net::reactor_of(p.io), p.ours, asio::buffer(buf),
                                 [&](error_code ec, std::size_t) { out = ec; });
    asio::steady_timer later(p.io, 50ms);
    later.async_wait([&](error_code) { p.peer.close(); });
    p.io.restart();
    p.io.run_for(2s);
    ASSERT_TRUE(out);
    EXPECT_EQ(*out, asio::error::eof);
}

TEST(TcpRead, CancelAndCloseAbortAPendingRead) {
    Pair p;
    for (bool close : {false, true}) {
        std::string buf(64, '\0');
        std::optional<error_code> out;
        dsgw::net::async_read_hinted(dsgw::net::reactor_of(p.io), p.ours, asio::buffer(buf),
                                     [&](error_code ec, std::size_t) { out = ec; });
        asio::steady_timer later(p.io, 20ms);
        later.async_wait([&](error_code) {
            if (close)
                p.ours.close();
            else
                p.ours.cancel();
        });
        p.io.restart();
        p.io.run_for(2s);
        ASSERT_TRUE(out) << (close ? "close" : "cancel");
        EXPECT_EQ(*out, asio::error::operation_aborted) << (close ? "close" : "cancel");
    }
    // And on a closed socket a read fails at once.
    std::string buf(8, '\0');
    std::optional<error_code> out;
    dsgw::net::async_read_hinted(dsgw::net::reactor_of(p.io), p.ours, asio::buffer(buf),
                                 [&](error_code ec, std::size_t) { out = ec; });
    p.io.restart();
    p.io.run_for(1s);
    ASSERT_TRUE(out);
    EXPECT_EQ(*out, asio::error::bad_descriptor);
}

TEST(TcpRead, AnEmptyBufferCompletesAtOnceWithNothing) {
    Pair p;
    std::optional<std::tuple<error_code, std::size_t>> out;
    dsgw::net::async_read_hinted(dsgw::net::reactor_of(p.io), p.ours, asio::mutable_buffer(),
                                 [&](error_code ec, std::size_t n) { out.emplace(ec, n); });
    p.io.restart();
    p.io.run_for(1s);
    ASSERT_TRUE(out);
    EXPECT_FALSE(std::get<0>(*out));
    EXPECT_EQ(std::get<1>(*out), 0u);
}

TEST(TcpRead, AHandlerNeverCalledIsFreedWithTheContext) {
    // A read still pending when its io_context goes away is destroyed, not
    // called (ASan checks the memory goes back).
    bool called = false;
    {
        Pair p;
        std::string buf(8, '\0');
        dsgw::net::async_read_hinted(dsgw::net::reactor_of(p.io), p.ours, asio::buffer(buf),
                                     [&](error_code, std::size_t) { called = true; });
        p.io.run_for(10ms);
    }
    EXPECT_FALSE(called);
}

}  // namespace
