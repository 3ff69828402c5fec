// Proxying behaviour end to end (SPEC §4): upstream errors, retries,
// keep-alive on both sides, header rewriting, request body streaming,
// HTTP/1.0 and HEAD.

#include <gtest/gtest.h>

#include <cstdio>
#include <iostream>
#include <random>

#include "harness.hpp"

namespace dsgw::it {
namespace {

std::string chat_request(const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", "application/json"}};
    h.insert(h.end(), extra.begin(), extra.end());
    return http_request("POST", "/v1/chat/completions", h, chat_body(false));
}

void expect_gateway_error(const Response& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = r.json();
    ASSERT_TRUE(j) << "error body is not JSON: " << r.body;
    const Json* e = j->get("error");
    ASSERT_NE(e, nullptr) << r.body;
    ASSERT_NE(e->get("code"), nullptr) << r.body;
    EXPECT_EQ(e->get("code")->as_int(), status) << r.body;
    ASSERT_NE(e->get("type"), nullptr) << r.body;
    EXPECT_EQ(e->get("type")->str, "gateway_error") << r.body;
}

// Header values seen by the mock, from /mock/echo's JSON.
struct Echo {
    std::vector<std::pair<std::string, std::string>> headers;
    std::optional<Json> json;
    std::vector<std::string> values(const std::string& name) const {
        std::vector<std::string> v;
        for (const auto& [k, val] : headers)
            if (to_lower(k) == to_lower(name)) v.push_back(val);
        return v;
    }
    std::string value(const std::string& name) const {
        auto v = values(name);
        return v.empty() ? std::string() : v.front();
    }
};

Echo parse_echo(const Response& r) {
    Echo e;
    e.json = r.json();
    EXPECT_TRUE(e.json) << "echo body is not JSON: " << r.body.substr(0, 300);
    if (!e.json) return e;
    if (const Json* h = e.json->get("headers"))
        for (const auto& pair : h->arr)
            if (pair.arr.size() == 2) e.headers.emplace_back(pair.arr[0].str, pair.arr[1].str);
    return e;
}

// ------------------------------------------------------------ upstream errors

TEST(UpstreamErrors, NothingListeningGives502) {
    ClosedPort dead;
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config({dead.address()}))) << gw.logs();
    auto r = request_once(gw.port(), chat_request());
    ASSERT_TRUE(r);
    expect_gateway_error(*r, 502);
}

TEST(UpstreamErrors, AllServersDownGives502Or503) {
    ClosedPort a, b, c;
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config({a.address(), b.address(), c.address()}))) << gw.logs();
    for (int i = 0; i < 3; ++i) {
        auto r = request_once(gw.port(), chat_request());
        ASSERT_TRUE(r);
        EXPECT_TRUE(r->status == 502 || r->status == 503) << r->status;
        expect_gateway_error(*r, r->status);
    }
}

TEST(UpstreamErrors, NoFirstByteInTimeGives504) {
    MockServer hang("h0", {"--hang"});
    ASSERT_TRUE(hang.ok());
    GatewayConfig cfg = basic_config({hang.address()});
    cfg.upstream().first_byte_timeout = "1s";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    auto t0 = Clock::now();
    auto r = request_once(gw.port(), chat_request(), "", 10s);
    double waited = ms_between(t0, Clock::now());
    ASSERT_TRUE(r);
    std::cout << "504 after " << waited << " ms (first_byte 1s)\n";
    expect_gateway_error(*r, 504);
    EXPECT_GT(waited, 900.0);
    EXPECT_LT(waited, 5000.0);
    // The timed-out upstream connection is closed, not pooled.
    auto s = hang.wait_stats([](const MockStats& st) { return st.connections_open == 0; }, 3s);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->connections_open, 0);
}

TEST(UpstreamErrors, Upstream500PassesThroughUnchanged) {
    MockServer failing("f0", {"--fail-status", "500"});
    ASSERT_TRUE(failing.ok());
    auto direct = request_once(failing.port(), chat_request());
    ASSERT_TRUE(direct);
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config({failing.address()}))) << gw.logs();
    auto r = request_once(gw.port(), chat_request());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "f0");
    EXPECT_EQ(r->body, direct->body) << "the upstream's error body must pass unchanged";
    EXPECT_EQ(r->body.find("gateway_error"), std::string::npos);
}

// An upstream that dies mid-stream: the client must see a cut stream (no
// final chunk), never a clean end that would pass a truncated answer as whole.
TEST(UpstreamErrors, UpstreamAbortMidStreamIsNotHiddenFromClient) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all(stream_request(10, 20, 0, {{"X-Mock-Close-After-Tokens", "3"}})));
    StreamResult s = c.read_stream(Clock::now(), 10s);
    EXPECT_EQ(s.token_events().size(), 3u);
    EXPECT_FALSE(s.saw_done());
    EXPECT_FALSE(s.ok) << "the truncated stream ended like a complete response";
    EXPECT_EQ(s.error.find("timed out"), std::string::npos) << "client connection left hanging";
}

// An upstream stream framed by its close (no chunking, no length, as an
// HTTP/1.0 server sends it): the response to the client ends when the
// upstream closes, at once. With no delay between events the last bytes and
// the FIN arrive together and one read takes both; the gateway's reads then
// must not wait for a readiness edge that never comes (net/tcp_read.hpp).
// Each such stream costs its upstream connection, and the client connection
// goes on.
TEST(UpstreamErrors, StreamEndedByTheUpstreamsCloseEndsAtOnce) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    int streams = 0;
    for (int delay_ms : {0, 0, 0, 20, 0, 20}) {
        ASSERT_TRUE(c.send_all(stream_request(4, delay_ms, 0, {{"X-Mock-Until-Close", "1"}})));
        StreamResult s = c.read_stream(Clock::now(), 10s);
        ASSERT_TRUE(s.ok) << "delay " << delay_ms << " ms: " << s.error;
        EXPECT_EQ(s.token_events().size(), 4u) << "delay " << delay_ms << " ms";
        EXPECT_TRUE(s.saw_done()) << "delay " << delay_ms << " ms";
        EXPECT_EQ(s.response.header("Connection").value_or(""), "")
            << "the upstream's Connection: close is hop-by-hop";
        ++streams;
    }
    auto st = mocks[0]->stats();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->connections_accepted, streams);
}

// ------------------------------------------------------------ retries

TEST(Retries, ConnectFailureIsRetriedOnAnotherServer) {
    ClosedPort dead;
    MockServer live("r0");
    ASSERT_TRUE(live.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config({dead.address(), live.address()}, "round_robin")))
        << gw.logs();
    int ok = 0;
    for (int i = 0; i < 50; ++i) {
        auto r = request_once(gw.port(), chat_request());
        if (r && r->status == 200)
            ++ok;
        else
            ADD_FAILURE() << "request " << i << ": "
                          << (r ? std::to_string(r->status) + " " + r->body : "no response");
    }
    EXPECT_EQ(ok, 50);
    auto s = live.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->requests, 50);
}

// The request reached the upstream, which then closed without answering: the
// generation may have started, so it must not run again elsewhere.
TEST(Retries, NoRetryOnceTheRequestWasSent) {
    auto mocks = start_mocks(2);
    for (auto& m : mocks) ASSERT_TRUE(m->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks, "round_robin"))) << gw.logs();
    auto r = request_once(gw.port(), stream_request(5, 0, 0, {{"X-Mock-Close-After-Tokens", "0"}}));
    ASSERT_TRUE(r);
    expect_gateway_error(*r, 502);
    std::int64_t total = 0;
    for (auto& m : mocks) {
        auto s = m->stats();
        ASSERT_TRUE(s);
        total += s->requests;
    }
    EXPECT_EQ(total, 1) << "the request was sent upstream more than once";
}

// ------------------------------------------------------------ keep-alive

TEST(KeepAlive, ClientConnectionAndUpstreamConnectionsAreReused) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(c.send_all(i % 2 ? chat_request() : http_request("GET", "/v1/models")))
            << "request " << i;
        std::string err;
        auto r = c.read_response(10s, false, &err);
        ASSERT_TRUE(r) << "request " << i << " on the kept-alive connection: " << err;
        ASSERT_EQ(r->status, 200) << r->body;
    }
    // Streams too return their upstream connection to the pool when complete.
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(c.send_all(stream_request(3, 0)));
        StreamResult s = c.read_stream(Clock::now(), 10s);
        ASSERT_TRUE(s.ok) << s.error;
        ASSERT_TRUE(s.saw_done());
    }
    auto s = mocks[0]->stats();
    ASSERT_TRUE(s);
    std::cout << "60 requests on one client connection used " << s->connections_accepted
              << " upstream connection(s)\n";
    EXPECT_EQ(s->requests, 60);
    EXPECT_LE(s->connections_accepted, 2);
}

// An upstream with a short keep-alive timeout closes pooled connections while
// they sit idle. The gateway notices (its idle watch is armed after 10-20 ms)
// and drops them: later requests open fresh connections instead of failing
// on a dead one. The mock closes after 50 ms; the test waits 300 ms.
TEST(KeepAlive, PooledConnectionsTheServerClosedAreNotUsed) {
    MockServer mock("m", {"--idle-close-ms", "50"});
    ASSERT_TRUE(mock.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config({mock.address()}))) << gw.logs();
    for (int round = 0; round < 3; ++round) {
        // Several connections in the pool at once.
        std::vector<std::unique_ptr<Conn>> conns;
        for (int i = 0; i < 4; ++i) {
            conns.push_back(std::make_unique<Conn>());
            ASSERT_TRUE(conns.back()->connect(gw.port()));
            ASSERT_TRUE(conns.back()->send_all(stream_request(2, 20)));
        }
        for (auto& c : conns) {
            StreamResult s = c->read_stream(Clock::now(), 10s);
            ASSERT_TRUE(s.ok) << "round " << round << ": " << s.error;
        }
        std::this_thread::sleep_for(300ms);
        for (int i = 0; i < 8; ++i) {
            auto r = request_once(gw.port(), chat_request());
            ASSERT_TRUE(r) << "round " << round << " request " << i;
            ASSERT_EQ(r->status, 200) << "round " << round << " request " << i << ": " << r->body;
        }
    }
    auto s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->requests, 3 * 12);
    // Each round's idle connections were closed by the server and replaced.
    EXPECT_GE(s->connections_accepted, 3 * 1 + 4);
}

// ------------------------------------------------------------ headers, bodies

TEST(Headers, HopByHopRemovedForwardedHeadersSet) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    std::string req =
        "GET /mock/echo?q=1 HTTP/1.1\r\n"
        "Host: api.example.test\r\n"
        "Connection: keep-alive, X-Foo\r\n"
        "X-Foo: secret\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "TE: trailers\r\n"
        "Upgrade: h2c\r\n"
        "X-Custom: kept\r\n"
        "\r\n";
    auto r = request_once(gw.port(), req, "127.0.0.7");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    Echo e = parse_echo(*r);
    for (const char* h :
         {"X-Foo", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade", "Transfer-Encoding"})
        EXPECT_TRUE(e.values(h).empty()) << h << " was forwarded: " << e.value(h);
    for (const auto& v : e.values("Connection"))
        EXPECT_EQ(v.find("X-Foo"), std::string::npos) << "Connection forwarded: " << v;
    EXPECT_EQ(e.value("X-Custom"), "kept");
    EXPECT_EQ(e.values("Host").size(), 1u);
    EXPECT_EQ(e.value("Host"), "api.example.test");
    EXPECT_EQ(e.value("X-Forwarded-For"), "127.0.0.7");
    EXPECT_EQ(e.value("X-Forwarded-Proto"), "http");
    EXPECT_EQ(e.value("X-Forwarded-Host"), "api.example.test");
    EXPECT_NE(e.value("Via").find("deepseek-gateway"), std::string::npos) << e.value("Via");
    ASSERT_TRUE(e.json);
    EXPECT_EQ(e.json->get("method") ? e.json->get("method")->str : "", "GET");
    EXPECT_EQ(e.json->get("target") ? e.json->get("target")->str : "", "/mock/echo?q=1");
}

// A client cannot make itself look like another address to the upstream.
TEST(Headers, ForwardedForEndsWithTheRealPeer) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    auto r = request_once(gw.port(),
                          http_request("GET", "/mock/echo", {{"X-Forwarded-For", "203.0.113.9"}}),
                          "127.0.0.8");
    ASSERT_TRUE(r);
    Echo e = parse_echo(*r);
    auto xff = e.values("X-Forwarded-For");
    ASSERT_FALSE(xff.empty());
    std::string last = xff.back();
    auto comma = last.rfind(',');
    if (comma != std::string::npos) last = last.substr(comma + 1);
    while (!last.empty() && last.front() == ' ') last.erase(0, 1);
    EXPECT_EQ(last, "127.0.0.8") << "X-Forwarded-For: " << xff.back();
}

void upload_and_check(std::uint16_t port, bool chunked) {
    constexpr std::size_t kSize = 5 * 1024 * 1024;
    std::string body(kSize, '\0');
    std::mt19937_64 rng(chunked ? 42 : 7);
    for (auto& ch : body) ch = static_cast<char>(rng());
    std::string wire;
    std::string head =
        "POST /mock/echo HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\n";
    if (chunked) {
        wire = head + "Transfer-Encoding: chunked\r\n\r\n";
        std::size_t pos = 0;
        while (pos < body.size()) {
            std::size_t n = std::min<std::size_t>(1 + rng() % 65536, body.size() - pos);
            char hex[32];
            std::snprintf(hex, sizeof hex, "%zx\r\n", n);
            wire += hex;
            wire.append(body, pos, n);
            wire += "\r\n";
            pos += n;
        }
        wire += "0\r\n\r\n";
    } else {
        wire = head + "Content-Length: " + std::to_string(kSize) + "\r\n\r\n" + body;
    }
    Conn c;
    ASSERT_TRUE(c.connect(port));
    ASSERT_TRUE(c.send_all(wire));
    std::string err;
    auto r = c.read_response(30s, false, &err);
    ASSERT_TRUE(r) << err;
    ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
    Echo e = parse_echo(*r);
    ASSERT_TRUE(e.json);
    const Json* bytes = e.json->get("body_bytes");
    const Json* hash = e.json->get("body_fnv1a64");
    ASSERT_TRUE(bytes && hash) << r->body.substr(0, 300);
    EXPECT_EQ(bytes->as_uint(), kSize);
    char want[17];
    std::snprintf(want, sizeof want, "%016llx", static_cast<unsigned long long>(fnv1a64(body)));
    EXPECT_EQ(hash->str, want) << "request body altered on the way";
}

TEST(Bodies, FiveMiBChunkedUploadArrivesIntact) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    upload_and_check(gw.port(), true);
    upload_and_check(gw.port(), false);
}

// ------------------------------------------------------------ HTTP/1.0, HEAD

TEST(Protocol, Http10ClientGetsWholeResponseThenClose) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    auto direct = request_once(mocks[0]->port(), http_request("GET", "/v1/models"));
    ASSERT_TRUE(direct);

    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all(http_request("GET", "/v1/models", {}, "", "HTTP/1.0")));
    std::string err;
    auto r = c.read_response(10s, false, &err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(r->chunked) << "chunked encoding sent to an HTTP/1.0 client";
    EXPECT_EQ(r->body, direct->body);
    EXPECT_TRUE(c.wait_close(5s).closed) << "connection to the HTTP/1.0 client left open";

    // A token stream to an HTTP/1.0 client: no chunked framing, complete, then close.
    Conn s;
    ASSERT_TRUE(s.connect(gw.port()));
    std::string req = stream_request(5, 10);
    req.replace(req.find("HTTP/1.1"), 8, "HTTP/1.0");
    ASSERT_TRUE(s.send_all(req));
    StreamResult st = s.read_stream(Clock::now(), 10s);
    ASSERT_TRUE(st.ok) << st.error;
    EXPECT_FALSE(st.response.chunked);
    EXPECT_EQ(st.token_events().size(), 5u);
    EXPECT_TRUE(st.saw_done());
}

TEST(Protocol, HeadGetsHeadersWithoutBody) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all(http_request("HEAD", "/v1/models")));
    std::string err;
    auto r = c.read_response(10s, true, &err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->header("Content-Type").has_value());
    // No body bytes may follow: the next response on this connection must
    // start right away with a status line.
    ASSERT_TRUE(c.send_all(http_request("GET", "/v1/models")));
    auto next = c.read_response(10s, false, &err);
    ASSERT_TRUE(next) << err;
    EXPECT_EQ(next->status, 200);
    EXPECT_TRUE(next->json().has_value()) << next->body.substr(0, 200);
}

}  // namespace
}  // namespace dsgw::it
