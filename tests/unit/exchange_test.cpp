// One client connection's exchanges (src/proxy/connection.cpp and
// exchange.cpp), driven step by step in-process (exchange_fixture.hpp):
// retries, HEAD, interim responses,
// 100-continue, the per-phase timeouts on the fake clock, client hang-ups and
// every reply the gateway makes itself.

#include "exchange_fixture.hpp"

#include "deepseek_gateway/access/api_keys.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

namespace dsgw::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kGet = "GET /v1/models HTTP/1.1\r\nHost: gw.test\r\n\r\n";
constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

std::string post(std::string_view body) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: gw.test\r\nContent-Type: "
           "application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

// Body bytes after the head in what an upstream connection received.
std::size_t body_bytes(const Endpoint& e) {
    const auto end = e.input().find("\r\n\r\n");
    return end == std::string::npos ? 0 : e.input().size() - end - 4;
}

// ---- the ordinary exchange (the bench itself) ---------------------------------

TEST_F(ExchangeTest, ForwardsAndPoolsTheUpstreamConnection) {
    start();
    auto& client = connect_client();
    client.send(kGet);
    auto& a = accept_upstream();
    auto req = next_request(a);
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.target, "/v1/models");
    EXPECT_EQ(req.header("Host").value_or(""), "gw.test");
    EXPECT_EQ(req.header("X-Forwarded-For").value_or(""), "127.0.0.1");
    a.send(kOk);
    auto res = next_response(client);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "hello");
    EXPECT_FALSE(res.header("Connection"));

    // The same client connection, the same (pooled) upstream connection.
    client.send(kGet);
    next_request(a);
    a.send(kOk);
    EXPECT_EQ(next_response(client).status, 200);
    settle();
    EXPECT_EQ(upstream_.connections(), 1u);
    EXPECT_EQ(pool_idle(), 1u);

    const auto log = access_log();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log_number(log[0], "status"), 200);
    EXPECT_EQ(log_number(log[0], "bytes_in"), static_cast<long long>(kGet.size()));
    EXPECT_EQ(log_number(log[0], "bytes_out"), static_cast<long long>(res.raw.size()));
    EXPECT_EQ(log_string(log[0], "server"), upstream_.address());
}

// ---- retries ------------------------------------------------------------------

// A pooled connection the server reset while idle fails at the first write:
// the request cannot have reached the server, so it goes again on a new
// connection and the client never knows.
TEST_F(ExchangeTest, RetriesOnANewConnectionWhenThePooledOneWasReset) {
    start();
    auto& client = connect_client();
    client.send(kGet);
    auto& a = accept_upstream();
    next_request(a);
    a.send(kOk);
    ASSERT_EQ(next_response(client).status, 200);
    ASSERT_EQ(pool_idle(), 1u);

    // The reset reaches the gateway's socket before the next request does;
    // the event loop does not run meanwhile, so the pool's idle watch
    // cannot evict the connection first.
    const int gw_side = gateway_fd(a);
    ASSERT_GE(gw_side, 0);
    a.reset();
    ASSERT_TRUE(wait_kernel([&] { return tcp_closed(gw_side); }, "the reset at the gateway"));

    client.send(post("{\"n\":2}"));
    auto& b = accept_upstream();
    auto req = next_request(b);
    EXPECT_EQ(req.body, "{\"n\":2}");
    b.send(kOk);
    auto res = next_response(client);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "hello");
    EXPECT_EQ(pool_evicted(), 0u);  // taken and failed, not evicted: the retry path
    EXPECT_EQ(upstream_.connections(), 2u);
}

// The usual fate of a connection the server closed: the pool notices it
// while it is idle (10-20 ms later, on the fake clock) and drops it.
TEST_F(ExchangeTest, APooledConnectionTheServerClosedIsEvicted) {
    start();
    auto& client = connect_client();
    client.send(kGet);
    auto& a = accept_upstream();
    next_request(a);
    a.send(kOk);
    ASSERT_EQ(next_response(client).status, 200);
    a.close();
    advance(50ms);
    ASSERT_TRUE(run_until([&] { return pool_evicted() == 1; }, "the eviction"));
    EXPECT_EQ(pool_idle(), 0u);

    client.send(kGet);
    auto& b = accept_upstream();
    next_request(b);
    b.send(kOk);
    EXPECT_EQ(next_response(client).status, 200);
}

// Once the request went out, a failure is the client's answer: the server
// may have acted on it.
TEST_F(ExchangeTest, NoRetryOnceTheRequestWasSent) {
    start({.retries = 3});
    auto& client = connect_client();
    client.send(post("{\"prompt\":\"x\"}"));
    auto& a = accept_upstream();
    EXPECT_EQ(next_request(a).body, "{\"prompt\":\"x\"}");
    a.reset();
    auto res = next_response(client);
    expect_error(res, 502, "upstream closed the connection before responding", false);
    settle();
    EXPECT_EQ(upstream_.connections(), 1u);
    const auto log = access_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log_number(log[0], "status"), 502);
}

TEST_F(ExchangeTest, NoRetryWhenTheUpstreamFailsDuringTheBody) {
    start({.retries = 3});
    auto& client = connect_client();
    const std::string body(100, 'b');
    const std::string request = post(body);
    client.send(request.substr(0, request.size() - 60));  // the head and 40 body bytes
    auto& a = accept_upstream();
    ASSERT_TRUE(run_until([&] { return body_bytes(a) == 40; }, "the head and 40 body bytes"));
    const int gw_side = gateway_fd(a);
    ASSERT_GE(gw_side, 0);
    a.reset();
    ASSERT_TRUE(wait_kernel([&] { return tcp_closed(gw_side); }, "the reset at the gateway"));
    client.send(request.substr(request.size() - 60));
    auto res = next_response(client);
    expect_error(res, 502, "upstream failed while the request was sent", true);
    settle();
    EXPECT_EQ(upstream_.connections(), 1u);
}

// A connect failure reaches no server: another one gets the request.
TEST_F(ExchangeTest, ConnectFailureIsRetriedOnAnotherServer) {
    start({.servers = {refused_address_, upstream_.address()}, .retries = 1});
    // Round robin: one of two requests goes to the refused server first.
    auto& client = connect_client();
    for (int i = 0; i < 2; ++i) {
        client.send(kGet);
        auto& a = i == 0 ? accept_upstream() : upstream_.conn(0);  // then pooled
        next_request(a);
        a.send(kOk);
        EXPECT_EQ(next_response(client).status, 200);
    }
    EXPECT_EQ(upstream_.connections(), 1u);
}

// ---- HEAD, interim responses, 100-continue ---------------------------------------

TEST_F(ExchangeTest, HeadResponseHasNoBodyAndTheConnectionGoesOn) {
    start();
    auto& client = connect_client();
    client.send("HEAD /v1/models HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    auto& a = accept_upstream();
    EXPECT_EQ(next_request(a).method, "HEAD");
    a.send("HTTP/1.1 200 OK\r\nContent-Length: 42\r\nContent-Type: application/json\r\n\r\n");
    auto head = next_response(client, MessageKind::response_to_head);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Content-Length").value_or(""), "42");
    EXPECT_FALSE(head.header("Transfer-Encoding"));
    EXPECT_EQ(client.input(), "");

    // A body byte after the HEAD response would end up in front of this one.
    client.send(kGet);
    EXPECT_EQ(next_request(a).method, "GET");
    a.send(kOk);
    auto res = next_response(client);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "hello");
    EXPECT_EQ(upstream_.connections(), 1u);
}

TEST_F(ExchangeTest, InterimResponsesReachAnHttp11Client) {
    start();
    auto& client = connect_client();
    client.send(kGet);
    auto& a = accept_upstream();
    next_request(a);
    a.send("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n");
    auto hints = next_response(client);
    EXPECT_EQ(hints.status, 103);
    EXPECT_EQ(hints.header("Link").value_or(""), "</style.css>; rel=preload");
    a.send(kOk);
    auto res = next_response(client);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "hello");
    const auto log = access_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log_number(log[0], "status"), 200);
}

TEST_F(ExchangeTest, AnHttp10ClientGetsNoInterimResponse) {
    start();
    auto& client = connect_client();
    client.send("GET /v1/models HTTP/1.0\r\nHost: gw.test\r\n\r\n");
    auto& a = accept_upstream();
    next_request(a);
    a.send("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
    a.send(kOk);
    auto res = next_response(client);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "hello");
}

// The gateway answers Expect: 100-continue itself (the upstream never sees
// the Expect), then forwards the body; the upstream's own 100 is not passed
// on a second time.
TEST_F(ExchangeTest, ExpectContinueIsAnsweredByTheGateway) {
    start();
    auto& client = connect_client();
    const std::string head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 11\r\n"
        "Expect: 100-continue\r\n\r\n";
    client.send(head);
    auto cont = next_response(client);
    EXPECT_EQ(cont.raw, "HTTP/1.1 100 Continue\r\n\r\n");
    auto& a = accept_upstream();
    ASSERT_TRUE(run_until([&] { return a.input().find("\r\n\r\n") != std::string::npos; },
                          "the request head upstream"));
    EXPECT_EQ(a.input().find("Expect"), std::string::npos) << a.input();

    client.send("{\"a\":\"b\"}\r\n");
    auto req = next_request(a);
    EXPECT_EQ(req.body, "{\"a\":\"b\"}\r\n");
    a.send("HTTP/1.1 100 Continue\r\n\r\n");
    a.send(kOk);
    auto res = next_response(client);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "hello");
}

// ---- timeouts, on the fake clock ------------------------------------------------

TEST_F(ExchangeTest, FirstByteTimeoutIs504) {
    start({.first_byte_timeout = "60s"});
    auto& client = connect_client();
    client.send(kGet);
    auto& a = accept_upstream();
    next_request(a);
    advance(59s);
    EXPECT_EQ(client.input(), "");
    EXPECT_FALSE(a.closed());
    advance(2s);
    auto res = next_response(client);
    expect_error(res, 504, "upstream timed out before responding", false);
    EXPECT_TRUE(wait_closed(a, "the upstream connection closed"));
    const auto log = access_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log_number(log[0], "status"), 504);
    EXPECT_EQ(log_number(log[0], "bytes_out"), static_cast<long long>(res.raw.size()));

    // The client connection stays usable.
    client.send(kGet);
    auto& b = accept_upstream();
    next_request(b);
    b.send(kOk);
    EXPECT_EQ(next_response(client).status, 200);
}

TEST_F(ExchangeTest, IdleTimeoutCutsAStream) {
    start({.idle_timeout = "30s"});
    auto& client = connect_client();
    client.send(post("{\"stream\":true}"));
    auto& a = accept_upstream();
    next_request(a);
    a.send(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked"
        "\r\n\r\n9\r\ndata: 1\n\n\r\n");
    ASSERT_TRUE(run_until([&] { return client.input().find("data: 1") != std::string::npos; },
                          "the first event at the client"));
    advance(29s);
    EXPECT_FALSE(client.closed());
    a.send("9\r\ndata: 2\n\n\r\n");  // a chunk re-arms the idle timeout
    ASSERT_TRUE(run_until([&] { return client.input().find("data: 2") != std::string::npos; },
                          "the second event at the client"));
    advance(29s);
    EXPECT_FALSE(client.closed());
    advance(2s);
    EXPECT_TRUE(wait_closed(client, "the client connection closed"));
    EXPECT_TRUE(wait_closed(a, "the upstream connection closed"));
    // Cut: no last chunk, so the client cannot take it for a whole response.
    EXPECT_FALSE(client.has(MessageKind::response));
    EXPECT_EQ(client.input().find("0\r\n\r\n"), std::string::npos);
}

TEST_F(ExchangeTest, KeepAliveIdleClientIsClosedWithoutAReply) {
    start({.client_idle = "20s"});
    auto& client = connect_client();
    client.send(kGet);
    auto& a = accept_upstream();
    next_request(a);
    a.send(kOk);
    ASSERT_EQ(next_response(client).status, 200);
    advance(19s);
    EXPECT_FALSE(client.closed());
    advance(2s);
    EXPECT_TRUE(wait_closed(client, "the idle client connection closed"));
    EXPECT_EQ(client.input(), "");
}

// ---- client hang-ups ---------------------------------------------------------

// A client that leaves while the model thinks: the upstream connection is
// closed at once, so the inference server stops.
TEST_F(ExchangeTest, ClientHangUpWhileWaitingClosesTheUpstreamConnection) {
    start();
    auto& client = connect_client();
    client.send(post("{\"prompt\":\"long\"}"));
    auto& a = accept_upstream();
    next_request(a);
    client.close();
    advance(50ms);  // the client watch is armed 10-20 ms into the wait
    EXPECT_TRUE(wait_closed(a, "the upstream connection closed"));
    ASSERT_TRUE(run_until([&] { return access_log().size() == 1; }, "the access log line"));
    EXPECT_EQ(log_number(access_log()[0], "status"), 499);
    settle();
    EXPECT_EQ(pool_idle(), 0u);
}

TEST_F(ExchangeTest, ClientHangUpWhileStreamingClosesTheUpstreamConnection) {
    start();
    auto& client = connect_client();
    client.send(post("{\"stream\":true}"));
    auto& a = accept_upstream();
    next_request(a);
    a.send(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked"
        "\r\n\r\n9\r\ndata: 1\n\n\r\n");
    ASSERT_TRUE(run_until([&] { return client.input().find("data: 1") != std::string::npos; },
                          "the first event at the client"));
    client.close();
    advance(50ms);
    EXPECT_TRUE(wait_closed(a, "the upstream connection closed"));
    ASSERT_TRUE(run_until([&] { return access_log().size() == 1; }, "the access log line"));
    EXPECT_EQ(log_number(access_log()[0], "status"), 200);
    settle();
    EXPECT_EQ(pool_idle(), 0u);
}

// A client waiting in the admission queue that leaves gives its place up:
// the slot that frees goes to nobody, and no upstream connection is opened.
TEST_F(ExchangeTest, ClientHangUpWhileQueuedGivesItsPlaceUp) {
    start({.max_in_flight = 1});
    auto& first = connect_client();
    first.send(kGet);
    auto& a = accept_upstream();
    next_request(a);
    auto& second = connect_client();
    second.send(kGet);
    ASSERT_TRUE(run_until([&] { return queue_length() == 1; }, "the second request queued"));
    second.close();
    ASSERT_TRUE(run_until([&] { return queue_length() == 0; }, "the queue emptied"));
    a.send(kOk);
    EXPECT_EQ(next_response(first).status, 200);
    settle();
    EXPECT_EQ(upstream_.connections(), 1u);
}

// ---- the gateway's own replies ---------------------------------------------------

TEST_F(ExchangeTest, MalformedRequestIs400) {
    start();
    auto& client = connect_client();
    client.send("GET / HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 12x\r\n\r\n");
    auto res = next_response(client);
    expect_error(res, 400, "malformed request: ", true, /*prefix=*/true);
    EXPECT_TRUE(wait_closed(client, "the connection closed"));
    settle();
    EXPECT_EQ(upstream_.connections(), 0u);
    const auto log = access_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log_number(log[0], "status"), 400);
}

TEST_F(ExchangeTest, RequestShapesTheGatewayRefuseAre400) {
    start();
    const std::pair<std::string, std::string> cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host header"},
        {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 request needs a Host header"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         "unsupported transfer coding"},
        {"CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n", "CONNECT is not supported"},
    };
    for (const auto& [request, message] : cases) {
        SCOPED_TRACE(request);
        auto& client = connect_client();
        client.send(request);
        expect_error(next_response(client), 400, message, true);
        EXPECT_TRUE(wait_closed(client, "the connection closed"));
    }
    settle();
    EXPECT_EQ(upstream_.connections(), 0u);
}

class ExchangeApiKeyTest : public ExchangeTest {
protected:
    void start_with_keys() {
        const auto file = dir_ + "/keys.yaml";
        std::ofstream(file) << "- name: team-a\n  sha256: "
                            << access::to_hex(access::sha256("sk-good")) << "\n";
        start({.auth = "{api_keys_file: " + file + "}"});
    }
};

TEST_F(ExchangeApiKeyTest, MissingKeyIs401WithAChallenge) {
    start_with_keys();
    auto& client = connect_client();
    client.send(kGet);
    auto res = next_response(client);
    expect_error(res, 401, "missing API key: send Authorization: Bearer <key>", false);
    EXPECT_EQ(res.header("WWW-Authenticate").value_or(""), "Bearer realm=\"deepseek-gateway\"");
    settle();
    EXPECT_EQ(upstream_.connections(), 0u);
}

TEST_F(ExchangeApiKeyTest, InvalidKeyIs401AndAGoodKeyPasses) {
    start_with_keys();
    auto& client = connect_client();
    client.send("GET /v1/models HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer sk-bad\r\n\r\n");
    auto res = next_response(client);
    expect_error(res, 401, "invalid API key", false);
    EXPECT_EQ(res.header("WWW-Authenticate").value_or(""),
              "Bearer realm=\"deepseek-gateway\", error=\"invalid_token\"");
    // A request with a body not read yet: the connection closes after the 401.
    auto& other = connect_client();
    other.send("POST / HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\n");
    expect_error(next_response(other), 401, "missing API key: send Authorization: Bearer <key>",
                 true);

    client.send(
        "GET /v1/models HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer sk-good\r\n\r\n");
    auto& a = accept_upstream();
    auto req = next_request(a);
    EXPECT_FALSE(req.header("Authorization"));  // auth.forward is false
    a.send(kOk);
    EXPECT_EQ(next_response(client).status, 200);
    const auto log = access_log();
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log_string(log[2], "api_key"), "team-a");
}

TEST_F(ExchangeTest, DeniedClientGets403) {
    start({.allow = "[10.0.0.0/8]", .on_deny = "respond_403"});
    auto& client = connect_client();
    client.send(kGet);
    expect_error(next_response(client), 403, "access denied", true);
    EXPECT_TRUE(wait_closed(client, "the connection closed"));
    settle();
    EXPECT_EQ(upstream_.connections(), 0u);
}

TEST_F(ExchangeTest, SlowRequestHeadIs408) {
    start({.header_timeout = "10s"});
    auto& client = connect_client();
    client.send("GET /v1/models HTTP/1.1\r\nHost: gw");
    ASSERT_TRUE(wait_gateway_read(client));
    advance(9s);
    EXPECT_EQ(client.input(), "");
    advance(2s);
    expect_error(next_response(client), 408, "request head not received in time", true);
    EXPECT_TRUE(wait_closed(client, "the connection closed"));
}

// A connection that never sent a byte is closed at the same deadline, with
// nothing to answer.
TEST_F(ExchangeTest, SilentConnectionIsClosedWithoutAReply) {
    start({.header_timeout = "10s"});
    auto& client = connect_client();
    advance(11s);
    EXPECT_TRUE(wait_closed(client, "the connection closed"));
    EXPECT_EQ(client.input(), "");
}

TEST_F(ExchangeTest, SlowRequestBodyIs408) {
    start({.client_idle = "20s"});
    auto& client = connect_client();
    const std::string request = post(std::string(50, 'x'));
    client.send(request.substr(0, request.size() - 10));
    auto& a = accept_upstream();
    ASSERT_TRUE(run_until([&] { return body_bytes(a) == 40; }, "the head and 40 body bytes"));
    advance(19s);
    EXPECT_EQ(client.input(), "");
    advance(2s);
    expect_error(next_response(client), 408, "request body not received in time", true);
    EXPECT_TRUE(wait_closed(a, "the upstream connection closed"));
    settle();
    EXPECT_EQ(upstream_.connections(), 1u);
}

TEST_F(ExchangeTest, TooLargeBodyIs413) {
    start({.max_request_body = "1KiB"});
    auto& client = connect_client();
    client.send("POST / HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5000\r\n\r\n");
    expect_error(next_response(client), 413, "request body too large", true);
    EXPECT_TRUE(wait_closed(client, "the connection closed"));  // half-closed, lingering
    settle();
    EXPECT_EQ(upstream_.connections(), 0u);
}

// A body refused after its head went upstream: 413, the upstream connection
// closed, and the exchange ends once: one access-log line (the split of
// session.cpp found it logged twice).
TEST_F(ExchangeTest, TooLargeChunkedBodyIs413AndLoggedOnce) {
    start({.max_request_body = "1KiB"});
    auto& client = connect_client();
    client.send("POST / HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n");
    auto& a = accept_upstream();
    ASSERT_TRUE(run_until([&] { return a.input().find("\r\n\r\n") != std::string::npos; },
                          "the head upstream"));
    client.send("800\r\n" + std::string(0x800, 'x') + "\r\n");
    expect_error(next_response(client), 413, "request body too large", true);
    EXPECT_TRUE(wait_closed(a, "the upstream connection closed"));
    settle();
    const auto log = access_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log_number(log[0], "status"), 413);
}

TEST_F(ExchangeTest, TooLargeHeadIs431) {
    start({.max_header_bytes = "1KiB"});
    auto& client = connect_client();
    client.send("GET / HTTP/1.1\r\nHost: gw.test\r\nX-Big: " + std::string(2000, 'h') + "\r\n\r\n");
    expect_error(next_response(client), 431, "request header fields too large", true);
    EXPECT_TRUE(wait_closed(client, "the connection closed"));
}

TEST_F(ExchangeTest, ConnectRefusedIs502) {
    start({.servers = {refused_address_}, .retries = 1});
    auto& client = connect_client();
    client.send(kGet);
    auto res = next_response(client);
    expect_error(res, 502, "upstream connect failed", false);
    const auto log = access_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log_number(log[0], "status"), 502);
}

TEST_F(ExchangeTest, UpstreamClosingBeforeRespondingIs502) {
    start();
    auto& client = connect_client();
    client.send(kGet);
    auto& a = accept_upstream();
    next_request(a);
    a.close();
    expect_error(next_response(client), 502, "upstream closed the connection before responding",
                 false);
}

TEST_F(ExchangeTest, InvalidUpstreamResponseIs502) {
    start();
    auto& client = connect_client();
    client.send(kGet);
    auto& a = accept_upstream();
    next_request(a);
    a.send("HTTP/1.1 2x0 Nonsense\r\n\r\n");
    expect_error(next_response(client), 502, "upstream sent an invalid response", false);
    EXPECT_TRUE(wait_closed(a, "the upstream connection closed"));
}

// The gateway relays HTTP only: an upgrade is refused, and the connection
// the server switched is not reused.
TEST_F(ExchangeTest, SwitchingProtocolsIs502) {
    start();
    auto& client = connect_client();
    client.send(
        "GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    auto& a = accept_upstream();
    next_request(a);
    a.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    expect_error(next_response(client), 502, "upstream tried to switch protocols", true);
    EXPECT_TRUE(wait_closed(a, "the upstream connection closed"));
    EXPECT_TRUE(wait_closed(client, "the client connection closed"));
}

TEST_F(ExchangeTest, NoHealthyServerIs503) {
    start();
    set_server_healthy(0, false);
    auto& client = connect_client();
    client.send(kGet);
    expect_error(next_response(client), 503, "no healthy upstream server", false);
    settle();
    EXPECT_EQ(upstream_.connections(), 0u);
}

// max_in_flight 1 and a queue of 1: the first request holds the server, the
// second waits, the third finds the queue full; the second's wait then
// times out (40 s, on the fake clock).
TEST_F(ExchangeTest, FullQueueAndQueueTimeoutAre503WithRetryAfter) {
    start({.first_byte_timeout = "300s", .max_in_flight = 1, .queue = "{size: 1, timeout: 40s}"});
    auto& first = connect_client();
    first.send(kGet);
    auto& a = accept_upstream();
    next_request(a);

    auto& second = connect_client();
    second.send(kGet);
    ASSERT_TRUE(run_until([&] { return queue_length() == 1; }, "the second request queued"));

    auto& third = connect_client();
    third.send(kGet);
    auto full = next_response(third);
    expect_error(full, 503, "every upstream server is busy and the queue is full", false);
    EXPECT_EQ(full.header("Retry-After").value_or(""), "1");

    advance(39s);
    EXPECT_EQ(second.input(), "");
    advance(2s);
    auto late = next_response(second);
    expect_error(late, 503, "no upstream server became free in time", false);
    EXPECT_EQ(late.header("Retry-After").value_or(""), "1");

    a.send(kOk);
    EXPECT_EQ(next_response(first).status, 200);
    settle();
    EXPECT_EQ(upstream_.connections(), 1u);
}

// A server whose listen backlog is full drops the SYN, so the connect hangs
// until the connect timeout (5 s, on the fake clock).
TEST_F(ExchangeTest, ConnectTimeoutIs504) {
    const int busy = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(busy, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(busy, 0), 0);
    socklen_t len = sizeof addr;
    ::getsockname(busy, reinterpret_cast<sockaddr*>(&addr), &len);
    // A backlog of 0 holds one connection: this one fills it.
    const int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(filler, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

    start({.servers = {"127.0.0.1:" + std::to_string(ntohs(addr.sin_port))},
           .retries = 0,
           .connect_timeout = "5s"});
    auto& client = connect_client();
    client.send(kGet);
    ASSERT_TRUE(wait_gateway_read(client));  // and the connect started
    advance(4s);
    EXPECT_EQ(client.input(), "");
    advance(2s);
    expect_error(next_response(client), 504, "upstream connect timed out", false);
    ::close(filler);
    ::close(busy);
}

// ---- inspect: routes by model (SPEC §8) -------------------------------------

constexpr std::string_view kRoutes =
    "[{name: r1, match: {model: \"deepseek-r1*\"}, upstream: up, rewrite_model: R1}]";

// The body is read whole before a server is chosen: nothing goes upstream
// while a piece is missing, then the request goes at once, with a
// Content-Length and the model rewritten.
TEST_F(ExchangeTest, ARoutedBodyGoesUpstreamWholeWithTheModelRewritten) {
    start({.routes = std::string(kRoutes)});
    auto& client = connect_client();
    const std::string body = R"({"messages":[],"model":"deepseek-r1-x"})";
    client.send(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw.test\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    client.send("10\r\n" + body.substr(0, 16) + "\r\n");
    ASSERT_TRUE(wait_gateway_read(client));
    client.send("8\r\n" + body.substr(16, 8) + "\r\n");
    ASSERT_TRUE(wait_gateway_read(client));
    upstream_.pump();
    EXPECT_EQ(upstream_.connections(), 0u) << "a connection before the model was known";
    const auto rest = body.substr(24);
    char line[8];
    std::snprintf(line, sizeof line, "%zx\r\n", rest.size());
    client.send(line + rest + "\r\n0\r\n\r\n");
    auto& a = accept_upstream();
    auto req = next_request(a);
    EXPECT_EQ(req.body, R"({"messages":[],"model":"R1"})");
    EXPECT_EQ(req.header("Content-Length").value_or(""), std::to_string(req.body.size()));
    EXPECT_FALSE(req.header("Transfer-Encoding"));
    a.send(kOk);
    EXPECT_EQ(next_response(client).status, 200);
    const auto log = access_log();
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log_string(log[0], "route"), "r1");
    EXPECT_EQ(log_string(log[0], "model"), "deepseek-r1-x");
}

// A body that stops coming: 408 after client_idle, and no server is bothered.
TEST_F(ExchangeTest, ARoutedBodyThatStopsComingIs408) {
    start({.client_idle = "20s", .routes = std::string(kRoutes)});
    auto& client = connect_client();
    client.send(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw.test\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":");
    ASSERT_TRUE(wait_gateway_read(client));
    advance(19s);
    EXPECT_EQ(client.input(), "");
    advance(2s);
    expect_error(next_response(client), 408, "request body not received in time", true);
    upstream_.pump();
    EXPECT_EQ(upstream_.connections(), 0u);
}

// After an answer of its own (404 for an unknown model) the gateway reads
// the next request from the right byte: the body was consumed.
TEST_F(ExchangeTest, AfterAnUnknownModelTheNextRequestIsReadInStep) {
    start({.routes = "[{match: {model: \"deepseek-r1*\"}, upstream: up},"
                     " {match: {path: /v1/files}, upstream: up}]",
           .default_upstream = false});
    auto& client = connect_client();
    const std::string body = R"({"model":"GET / HTTP/1.1"})";
    client.send(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw.test\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body +
        "GET /v1/files HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    auto res = next_response(client);
    EXPECT_EQ(res.status, 404);
    EXPECT_NE(res.body.find("model_not_found"), std::string::npos) << res.body;
    EXPECT_FALSE(res.header("Connection"));
    auto& a = accept_upstream();
    EXPECT_EQ(next_request(a).target, "/v1/files");
    a.send(kOk);
    EXPECT_EQ(next_response(client).status, 200);
}

}  // namespace
}  // namespace dsgw::test
