// Listener access lists, request limits and request smuggling (SPEC §3
// listeners[].access and limits, §4 errors and smuggling).

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "harness.hpp"

namespace dsgw::it {
namespace {

// Connects from `source`, sends a request and reports whether the gateway
// closed the connection without sending a byte.
void expect_closed_without_bytes(std::uint16_t port, const std::string& source) {
    Conn c;
    if (!c.connect(port, "127.0.0.1", source)) {
        // The handshake completes in the kernel before the gateway accepts; a
        // reset sent at accept can reach us before connect() reports success.
        EXPECT_EQ(c.last_errno(), ECONNRESET)
            << "connect from " << source << ": " << std::strerror(c.last_errno());
        return;
    }
    c.send_all(http_request("GET", "/v1/models"));  // may fail once the gateway has closed
    auto r = c.wait_close(5s);
    EXPECT_TRUE(r.closed) << "connection from " << source << " was not closed";
    EXPECT_TRUE(r.data.empty()) << "connection from " << source
                                << " got bytes: " << r.data.substr(0, 200);
}

void expect_served(std::uint16_t port, const std::string& source) {
    std::string err;
    auto r = request_once(port, http_request("GET", "/v1/models"), source, 10s, &err);
    ASSERT_TRUE(r) << "from " << source << ": " << err;
    EXPECT_EQ(r->status, 200) << "from " << source;
}

// The gateway's own error: status and the OpenAI-shaped JSON body.
void expect_gateway_error(const Response& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = r.json();
    ASSERT_TRUE(j) << "error body is not JSON: " << r.body;
    const Json* e = j->get("error");
    ASSERT_NE(e, nullptr) << r.body;
    ASSERT_NE(e->get("code"), nullptr) << r.body;
    EXPECT_EQ(e->get("code")->as_int(), status) << r.body;
    ASSERT_NE(e->get("type"), nullptr) << r.body;
    EXPECT_EQ(e->get("type")->str, "gateway_error");
    ASSERT_NE(e->get("message"), nullptr) << r.body;
    EXPECT_FALSE(e->get("message")->str.empty());
}

TEST(Access, OnlyAllowedSourcesAreServed) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    GatewayConfig cfg = basic_config(mocks);
    cfg.listener().allow = {"127.0.0.1/32"};
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    expect_closed_without_bytes(gw.port(), "127.0.0.2");
    expect_served(gw.port(), "127.0.0.1");
    auto s = mocks[0]->stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->requests, 1) << "the denied request reached the upstream";
}

TEST(Access, DenyBeatsAllow) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    GatewayConfig cfg = basic_config(mocks);
    cfg.listener().allow = {"127.0.0.0/8"};
    cfg.listener().deny = {"127.0.0.3/32"};
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    expect_closed_without_bytes(gw.port(), "127.0.0.3");
    expect_served(gw.port(), "127.0.0.4");
}

TEST(Access, RespondWith403WhenConfigured) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    GatewayConfig cfg = basic_config(mocks);
    cfg.listener().allow = {"127.0.0.1/32"};
    cfg.listener().on_deny = "respond_403";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    std::string err;
    auto r = request_once(gw.port(), http_request("GET", "/v1/models"), "127.0.0.9", 10s, &err);
    ASSERT_TRUE(r) << err;
    expect_gateway_error(*r, 403);
    expect_served(gw.port(), "127.0.0.1");
}

class Limits : public ::testing::Test {
protected:
    void SetUp() override {
        mock_ = std::make_unique<MockServer>("l0");
        ASSERT_TRUE(mock_->ok());
        GatewayConfig cfg = basic_config({mock_->address()});
        cfg.max_header_bytes = "4KiB";
        cfg.max_request_body = "1KiB";
        cfg.header_timeout = "1s";
        ASSERT_TRUE(gw_.start(cfg)) << gw_.logs();
    }
    std::int64_t upstream_requests() {
        auto s = mock_->stats();
        return s ? s->requests : -1;
    }
    std::unique_ptr<MockServer> mock_;
    Gateway gw_;
};

TEST_F(Limits, BodyLargerThanLimitGets413) {
    Conn c;
    ASSERT_TRUE(c.connect(gw_.port()));
    // Only the head: the gateway must answer from Content-Length alone.
    ASSERT_TRUE(
        c.send_all("POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                   "Content-Type: application/json\r\nContent-Length: 2048\r\n\r\n"));
    std::string err;
    auto r = c.read_response(5s, false, &err);
    ASSERT_TRUE(r) << err;
    expect_gateway_error(*r, 413);
    EXPECT_EQ(upstream_requests(), 0);
    // A body within the limit passes.
    auto ok =
        request_once(gw_.port(), http_request("POST", "/mock/echo", {}, std::string(1000, 'x')));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
}

TEST_F(Limits, HeadLargerThanLimitGets431) {
    auto big = request_once(gw_.port(),
                            http_request("GET", "/v1/models", {{"X-Big", std::string(6000, 'a')}}));
    ASSERT_TRUE(big) << "no response to an oversized head";
    expect_gateway_error(*big, 431);
    EXPECT_EQ(upstream_requests(), 0);
    auto fits = request_once(
        gw_.port(), http_request("GET", "/v1/models", {{"X-Big", std::string(2500, 'a')}}));
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits->status, 200);
}

TEST_F(Limits, IncompleteHeadTimesOutWith408AndClose) {
    Conn c;
    ASSERT_TRUE(c.connect(gw_.port()));
    auto t0 = Clock::now();
    ASSERT_TRUE(c.send_all("GET /v1/models HTTP/1.1\r\nHost: gw\r\n"));
    std::string err;
    auto r = c.read_response(6s, false, &err);
    double waited = ms_between(t0, Clock::now());
    ASSERT_TRUE(r) << err;
    std::cout << "408 after " << waited << " ms (header_timeout 1s)\n";
    expect_gateway_error(*r, 408);
    EXPECT_GT(waited, 800.0);
    auto cl = c.wait_close(3s);
    EXPECT_TRUE(cl.closed) << "connection left open after 408";
    EXPECT_TRUE(cl.data.empty());
}

// header_timeout bounds the whole head: trickling bytes does not extend it.
TEST_F(Limits, TricklingHeadStillTimesOut) {
    Conn c;
    ASSERT_TRUE(c.connect(gw_.port()));
    auto t0 = Clock::now();
    c.send_all("GET /v1/models HTTP/1.1\r\nHost: gw\r\n");
    std::string got;
    for (int i = 0; i < 40; ++i) {  // up to ~8 s
        c.send_all("X-Drip-" + std::to_string(i) + ": 1\r\n");
        long n = c.recv_some(got, 200ms);
        if (n == 0 || n == -1) break;
        if (got.find("\r\n\r\n") != std::string::npos) break;
    }
    double waited = ms_between(t0, Clock::now());
    ResponseParser p;
    p.feed(got);
    ASSERT_TRUE(p.head_done()) << "no response while trickling for " << waited << " ms";
    EXPECT_EQ(p.response().status, 408);
    EXPECT_LT(waited, 5000.0);
}

struct SmuggleCase {
    const char* name;
    std::string request;
};

TEST_F(Limits, SmugglingAttemptsGet400AndClose) {
    const std::string post = "POST /mock/echo HTTP/1.1\r\nHost: gw\r\n";
    const std::vector<SmuggleCase> cases = {
        {"Content-Length and Transfer-Encoding",
         post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding then Content-Length",
         post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
        {"two different Content-Length",
         post + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"},
        {"Transfer-Encoding gzip", post + "Transfer-Encoding: gzip\r\n\r\n"},
        {"Transfer-Encoding gzip, chunked",
         post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
        {"Content-Length abc", post + "Content-Length: abc\r\n\r\n"},
        {"Content-Length negative", post + "Content-Length: -1\r\n\r\n"},
        // A folded line: joined by some servers, a separate line to others.
        {"obsolete line folding",
         post + "X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\nabcd"},
        {"Transfer-Encoding chunked with junk",
         post + "Transfer-Encoding: chunked:\r\n\r\n0\r\n\r\n"},
    };
    for (const auto& tc : cases) {
        SCOPED_TRACE(tc.name);
        Conn c;
        ASSERT_TRUE(c.connect(gw_.port()));
        // A second, pipelined request that must never be served.
        ASSERT_TRUE(c.send_all(tc.request + "GET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n"));
        std::string err;
        auto r = c.read_response(5s, false, &err);
        ASSERT_TRUE(r) << err;
        expect_gateway_error(*r, 400);
        auto cl = c.wait_close(3s);
        EXPECT_TRUE(cl.closed) << "connection left open after 400";
        EXPECT_TRUE(cl.data.empty()) << "bytes after the 400: " << cl.data.substr(0, 200);
    }
    EXPECT_EQ(upstream_requests(), 0) << "a smuggling attempt reached the upstream";
}

}  // namespace
}  // namespace dsgw::it
