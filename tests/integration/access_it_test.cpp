// Access control behind proxies and with API keys (issue 4), end to end:
// X-Forwarded-For from untrusted and trusted peers, PROXY protocol v1 and v2
// built byte by byte, API keys, and IPv6.

#include "harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <set>

namespace dsgw::it {
namespace {

std::string yaml_with(const std::string& mock, const std::string& access,
                      const std::string& listener_extra = "",
                      const std::string& address = "127.0.0.1:0",
                      const std::string& balancer = "round_robin") {
    return "workers: 2\nadmin: {address: 127.0.0.1:0}\nlisteners:\n  - name: main\n    address: \"" + address +
           "\"\n    access: " + access + "\n" + listener_extra +
           "    upstream: pool\nupstreams:\n  - name: pool\n    balancer: " + balancer +
           "\n    servers: [{address: " + mock +
           "}]\nlogging: {format: text, access_log: stdout, level: info}\n";
}

// The X-Forwarded-For the mock received, from /mock/echo.
std::string received_xff(const Response& r) {
    auto j = r.json();
    if (!j) return "?";
    const Json* headers = j->get("headers");
    if (!headers) return "?";
    for (const auto& h : headers->arr)
        if (h.arr.size() == 2 && h.arr[0].str == "X-Forwarded-For") return h.arr[1].str;
    return "";
}

TEST(ForwardedFor, SpoofedHeaderFromAnUntrustedPeerChangesNothing) {
    MockServer mock("x");
    ASSERT_TRUE(mock.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_with(mock.address(), "{allow: [127.0.0.1/32]}"))) << gw.logs();
    auto r = request_once(gw.port(),
                          http_request("GET", "/mock/echo", {{"X-Forwarded-For", "10.9.9.9"}}));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(received_xff(*r), "127.0.0.1") << r->body;
}

TEST(ForwardedFor, TrustedPeerRightmostUntrustedClientIsJudged) {
    MockServer mock("x");
    ASSERT_TRUE(mock.ok());
    Gateway gw;
    // 127.0.0.1 is the load balancer; clients in 192.0.2.0/24 are allowed.
    ASSERT_TRUE(gw.start(yaml_with(mock.address(),
                                   "{allow: [127.0.0.1/32, 192.0.2.0/24], trusted_proxies: "
                                   "[127.0.0.1/32, 10.0.0.0/8], on_deny: respond_403}")))
        << gw.logs();
    // Spoofed left part, real client 192.0.2.7, inner proxy 10.1.1.1.
    auto ok = request_once(gw.port(), http_request("GET", "/mock/echo",
                                                   {{"X-Forwarded-For", "6.6.6.6, 192.0.2.7, 10.1.1.1"}}));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    EXPECT_EQ(received_xff(*ok), "6.6.6.6, 192.0.2.7, 10.1.1.1, 127.0.0.1");
    auto line = gw.process().wait_for_line(std::regex(R"("client":"192\.0\.2\.7")"), 5s);
    EXPECT_TRUE(line) << "access log must name the real client";
    // A client outside the allowlist behind the trusted proxy is refused.
    auto refused = request_once(gw.port(), http_request("GET", "/mock/echo",
                                                        {{"X-Forwarded-For", "198.51.100.1"}}));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 403);
}

TEST(ForwardedFor, IpHashUsesTheForwardedClient) {
    auto mocks = start_mocks(3);
    for (auto& m : mocks) ASSERT_TRUE(m->ok());
    std::string servers;
    for (auto& m : mocks) servers += "{address: " + m->address() + "}, ";
    std::string y = "workers: 2\nadmin: {address: 127.0.0.1:0}\nlisteners:\n  - name: main\n    address: 127.0.0.1:0\n"
                    "    access: {allow: [0.0.0.0/0], trusted_proxies: [127.0.0.1/32]}\n"
                    "    upstream: pool\nupstreams:\n  - name: pool\n    balancer: ip_hash\n"
                    "    servers: [" + servers + "]\nlogging: {format: text, access_log: \"off\"}\n";
    Gateway gw;
    ASSERT_TRUE(gw.start(y)) << gw.logs();
    std::set<std::string> seen;
    for (int i = 1; i <= 40; ++i) {
        const std::string client = "192.0.2." + std::to_string(i);
        std::string first;
        for (int k = 0; k < 3; ++k) {
            auto r = request_once(gw.port(), http_request("GET", "/v1/models", {{"X-Forwarded-For", client}}));
            ASSERT_TRUE(r);
            auto who = r->header("X-Mock-Server").value_or("?");
            if (k == 0) first = who;
            EXPECT_EQ(who, first) << client << " moved between servers";
        }
        seen.insert(first);
    }
    EXPECT_EQ(seen.size(), 3u) << "40 forwarded clients from one peer must spread over the servers";
}

std::string proxy_v2(const char* src, const char* dst, std::uint16_t sport, std::uint16_t dport) {
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h += static_cast<char>(0x21);  // v2, PROXY
    h += static_cast<char>(0x11);  // TCP over IPv4
    h += '\0';
    h += static_cast<char>(12);
    in_addr a{}, b{};
    inet_pton(AF_INET, src, &a);
    inet_pton(AF_INET, dst, &b);
    h.append(reinterpret_cast<const char*>(&a), 4);
    h.append(reinterpret_cast<const char*>(&b), 4);
    h += static_cast<char>(sport >> 8);
    h += static_cast<char>(sport & 0xFF);
    h += static_cast<char>(dport >> 8);
    h += static_cast<char>(dport & 0xFF);
    return h;
}

class ProxyProtocol : public ::testing::Test {
protected:
    void SetUp() override {
        mock_ = std::make_unique<MockServer>("pp");
        ASSERT_TRUE(mock_->ok());
        ASSERT_TRUE(gw_.start(yaml_with(mock_->address(),
                                        "{allow: [192.0.2.0/24], trusted_proxies: [127.0.0.1/32], "
                                        "proxy_protocol: true}")))
            << gw_.logs();
    }
    std::unique_ptr<MockServer> mock_;
    Gateway gw_;
};

TEST_F(ProxyProtocol, V1FromTrustedPeerIsHonoured) {
    auto r = request_once(gw_.port(), "PROXY TCP4 192.0.2.44 203.0.113.1 51000 443\r\n" +
                                          http_request("GET", "/mock/echo"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(received_xff(*r), "192.0.2.44");
}

TEST_F(ProxyProtocol, V2FromTrustedPeerIsHonoured) {
    auto r = request_once(gw_.port(), proxy_v2("192.0.2.45", "203.0.113.1", 51000, 443) +
                                          http_request("GET", "/mock/echo"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(received_xff(*r), "192.0.2.45");
}

TEST_F(ProxyProtocol, CarriedAddressOutsideTheAllowlistIsRefused) {
    Conn c;
    ASSERT_TRUE(c.connect(gw_.port()));
    ASSERT_TRUE(c.send_all("PROXY TCP4 198.51.100.9 203.0.113.1 51000 443\r\n" +
                           http_request("GET", "/mock/echo")));
    auto closed = c.wait_close(5s);
    EXPECT_TRUE(closed.closed);
    EXPECT_TRUE(closed.data.empty()) << closed.data;
}

TEST_F(ProxyProtocol, MissingOrUntrustedHeaderClosesTheConnection) {
    {
        Conn c;  // no header at all: an HTTP request where the header belongs
        ASSERT_TRUE(c.connect(gw_.port()));
        ASSERT_TRUE(c.send_all(http_request("GET", "/mock/echo")));
        auto closed = c.wait_close(5s);
        EXPECT_TRUE(closed.closed);
        EXPECT_TRUE(closed.data.empty()) << closed.data;
    }
    {
        // A good header from a peer that is not a trusted proxy: reset at
        // accept, which the client may see as early as connect() or send().
        Conn c;
        if (c.connect(gw_.port(), "127.0.0.1", "127.0.0.2")) {
            c.send_all("PROXY TCP4 192.0.2.44 203.0.113.1 51000 443\r\n" +
                       http_request("GET", "/mock/echo"));
            auto closed = c.wait_close(5s);
            EXPECT_TRUE(closed.closed);
            EXPECT_TRUE(closed.data.empty()) << closed.data;
        }
    }
    auto s = mock_->stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->requests, 0);
}

TEST(ApiKeys, MissingWrongAndRightKeysAndTheHeaderIsNotForwarded) {
    MockServer mock("k");
    ASSERT_TRUE(mock.ok());
    // hash-key prints the line to paste: the round trip is part of the test.
    TempDir dir;
    const std::string key_in = dir.write("key.txt", "sk-team-a-secret\n");
    auto hashed = run_command("/bin/sh", {"-c", gateway_bin() + " hash-key < " + key_in});
    ASSERT_EQ(hashed.exit_code, 0) << hashed.err_text();
    std::string file;
    for (const auto& l : hashed.out) file += l + "\n";
    file.replace(file.find("CHANGE-ME"), 9, "team-a");
    const std::string keys = dir.write("keys.yaml", file);
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_with(mock.address(), "{allow: [127.0.0.1/32]}",
                                   "    auth: {api_keys_file: " + keys + "}\n")))
        << gw.logs();
    auto none = request_once(gw.port(), http_request("GET", "/mock/echo"));
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 401);
    EXPECT_NE(none->header("WWW-Authenticate").value_or("").find("Bearer"), std::string::npos);
    auto wrong = request_once(gw.port(), http_request("GET", "/mock/echo",
                                                      {{"Authorization", "Bearer sk-nope"}}));
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 401);
    auto wj = wrong->json();
    ASSERT_TRUE(wj);
    EXPECT_EQ(wj->get("error")->get("code")->as_int(), 401);
    auto right = request_once(gw.port(), http_request("GET", "/mock/echo",
                                                      {{"Authorization", "Bearer sk-team-a-secret"}}));
    ASSERT_TRUE(right);
    EXPECT_EQ(right->status, 200) << right->body;
    EXPECT_EQ(right->body.find("sk-team-a-secret"), std::string::npos)
        << "the Authorization header must not reach the upstream";
    EXPECT_EQ(right->body.find("Authorization"), std::string::npos);
    auto line = gw.process().wait_for_line(std::regex(R"("api_key":"team-a")"), 5s);
    EXPECT_TRUE(line) << "the access log names the key";
    auto s = mock.stats();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->requests, 1) << "refused requests must not reach the upstream";
}

TEST(Ipv6, DualStackListenerAllowsOnlyIpv6Loopback) {
    MockServer mock("v6");
    ASSERT_TRUE(mock.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml_with(mock.address(), "{allow: [\"::1/128\"]}", "", "[::]:0")))
        << gw.logs();
    auto v6 = request_once(gw.port(), http_request("GET", "/v1/models"), "", 10s, nullptr, "::1");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->status, 200);
    Conn c;  // 127.0.0.1 reaches the dual-stack socket as ::ffff:127.0.0.1: refused
    if (c.connect(gw.port(), "127.0.0.1")) {
        c.send_all(http_request("GET", "/v1/models"));
        auto closed = c.wait_close(5s);
        EXPECT_TRUE(closed.closed);
        EXPECT_TRUE(closed.data.empty()) << closed.data;
    }
}

}  // namespace
}  // namespace dsgw::it
