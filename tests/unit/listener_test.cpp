// net::Listener with a stand-in net::ListenerHost: the access check at accept
// and the hand-off of the socket, without a worker or a session. Real
// loopback sockets on port 0; every wait is bounded.

#include "deepseek_gateway/net/listener.hpp"
#include "deepseek_gateway/access/admission.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace dsgw;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

struct Host final : net::ListenerHost {
    asio::io_context loop{1};
    config::AccessConfig access;
    bool removed = false;  // as if a reload had removed the listener
    std::vector<access::Admission> admissions;
    std::vector<net::Socket> sockets;

    asio::io_context& io() override { return loop; }
    Entry listener_entry(std::string_view name) const override {
        if (removed || name != "public") return {};
        return {&access, nullptr};
    }
    void on_connection(net::Listener&, net::Socket socket,
                       const access::Admission& admission) override {
        admissions.push_back(admission);
        sockets.push_back(std::move(socket));
    }
};

config::AccessConfig allowing(const char* range) {
    config::AccessConfig a;
    EXPECT_FALSE(a.policy.allow.add(range));
    return a;
}

bool run_until(asio::io_context& io, const std::function<bool()>& done) {
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.restart();
        io.run_for(10ms);
    }
    return done();
}

struct ListenerTest : ::testing::Test {
    Host host;
    std::optional<net::Listener> listener;
    tcp::socket client{host.loop};

    void start(config::AccessConfig acc) {
        host.access = std::move(acc);
        listener.emplace(host, "public",
                         net::bind_acceptor(host.loop, {asio::ip::make_address("127.0.0.1"), 0}),
                         16);
        listener->start();
        client.connect(listener->local_endpoint());
    }

    // Runs the loop until the client's read ends: true when the gateway
    // closed the connection (EOF or reset).
    bool client_sees_close() {
        char byte;
        std::optional<boost::system::error_code> result;
        client.async_read_some(asio::buffer(&byte, 1),
                               [&](boost::system::error_code ec, std::size_t) { result = ec; });
        return run_until(host.loop, [&] { return result.has_value(); }) && *result;
    }
};

TEST_F(ListenerTest, AnAdmittedConnectionGoesToTheHost) {
    start(allowing("127.0.0.0/8"));
    ASSERT_TRUE(run_until(host.loop, [&] { return !host.admissions.empty(); }));
    EXPECT_EQ(host.admissions[0].action, access::AcceptAction::admit);
    EXPECT_EQ(host.admissions[0].client, asio::ip::make_address("127.0.0.1"));
    EXPECT_EQ(listener->active(), 1u);
    listener->connection_closed();
    EXPECT_EQ(listener->active(), 0u);
}

TEST_F(ListenerTest, ARefusedPeerIsClosedBeforeTheHostSeesIt) {
    start(allowing("10.0.0.0/8"));  // on_deny: close
    EXPECT_TRUE(client_sees_close());
    EXPECT_TRUE(host.admissions.empty());
    EXPECT_EQ(listener->active(), 0u);
}

TEST_F(ListenerTest, ARefusalAnsweredWith403GoesToTheHost) {
    auto acc = allowing("10.0.0.0/8");
    acc.on_deny = config::OnDeny::respond_403;
    start(std::move(acc));
    ASSERT_TRUE(run_until(host.loop, [&] { return !host.admissions.empty(); }));
    EXPECT_EQ(host.admissions[0].action, access::AcceptAction::refuse);
    EXPECT_EQ(host.admissions[0].reason, access::DenyReason::not_allowed);
}

TEST_F(ListenerTest, AListenerTheHostNoLongerHasClosesWhatItAccepts) {
    host.removed = true;
    start(allowing("127.0.0.0/8"));
    EXPECT_TRUE(client_sees_close());
    EXPECT_TRUE(host.admissions.empty());
}

}  // namespace
