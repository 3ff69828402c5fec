// Header rewriting (forward.hpp) and the gateway's own error responses
// (local_reply.hpp): SPEC §4. The parser itself: relay_parser_test.cpp.
//
// Request and response heads are produced the way the session produces them:
// raw bytes through RelayParser, then the rewrite. The output is read back as
// header lines, and where it must be valid HTTP, parsed again by Beast.
// Past ~500 lines on purpose: both units share these helpers, and one file
// per SPEC §4 rule family would scatter them.

#include "deepseek_gateway/proxy/local_reply.hpp"
#include "deepseek_gateway/proxy/forward.hpp"

#include "../../src/proxy/relay_parser.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;
using dsgw::proxy::ForwardContext;
using dsgw::proxy::Framing;
using dsgw::proxy::RelayParser;
using error_code = boost::system::error_code;

constexpr ForwardContext kCtx{"192.0.2.7", "http", "default.upstream:8080"};

// ------------------------------------------------------------------ helpers

// Parses a complete message head (and whatever body follows) in one put().
template <bool isRequest>
std::unique_ptr<RelayParser<isRequest>> parse_head(std::string_view raw) {
    auto p = std::make_unique<RelayParser<isRequest>>();
    p->eager(false);
    error_code ec;
    p->put(asio::const_buffer(raw.data(), raw.size()), ec);
    EXPECT_FALSE(ec) << ec.message() << " parsing:\n" << raw;
    EXPECT_TRUE(p->is_header_done()) << raw;
    return p;
}

std::string upstream_head(std::string_view raw_request, Framing framing = Framing::none,
                          std::uint64_t length = 0, const ForwardContext& ctx = kCtx) {
    auto p = parse_head<true>(raw_request);
    std::string out;
    dsgw::proxy::build_upstream_request_head(p->head(), ctx, framing, length, out);
    return out;
}

std::string client_head(std::string_view raw_response, Framing framing, std::uint64_t length,
                        bool keep_alive, unsigned client_version = 11) {
    auto p = parse_head<false>(raw_response);
    std::string out;
    dsgw::proxy::build_client_response_head(p->head(), framing, length, keep_alive, client_version,
                                            out);
    return out;
}

// The head's lines without their CRLF; checks that it ends with the blank
// line and that nothing follows it.
std::vector<std::string> lines_of(const std::string& head) {
    std::vector<std::string> lines;
    EXPECT_GE(head.size(), 4u);
    EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << head;
    EXPECT_EQ(head.find("\r\n\r\n"), head.size() - 4) << "one blank line, at the end:\n" << head;
    std::size_t pos = 0;
    while (pos < head.size()) {
        auto eol = head.find("\r\n", pos);
        if (eol == std::string::npos || eol == pos) break;
        lines.push_back(head.substr(pos, eol - pos));
        pos = eol + 2;
    }
    return lines;
}

struct Field {
    std::string name;
    std::string value;
};

// The header fields (every line after the first), in order.
std::vector<Field> fields_of(const std::string& head) {
    std::vector<Field> out;
    auto lines = lines_of(head);
    for (std::size_t i = 1; i < lines.size(); ++i) {
        auto colon = lines[i].find(':');
        EXPECT_NE(colon, std::string::npos) << lines[i];
        EXPECT_EQ(lines[i].substr(colon, 2), ": ") << lines[i];
        out.push_back({lines[i].substr(0, colon), lines[i].substr(colon + 2)});
    }
    return out;
}

// Every value of `name` (case-insensitive), in order.
std::vector<std::string> values_of(const std::string& head, std::string_view name) {
    std::vector<std::string> out;
    for (auto& f : fields_of(head))
        if (beast::iequals(f.name, name)) out.push_back(f.value);
    return out;
}

std::string start_line(const std::string& head) {
    return head.substr(0, head.find("\r\n"));
}

using Values = std::vector<std::string>;

// ===================================================== upstream request head

TEST(UpstreamRequestHead, RemovesEveryRfc9110HopByHopHeader) {
    auto head = upstream_head(
        "POST /v1/chat/completions HTTP/1.1\r\n"
        "Host: api.example\r\n"
        "Connection: keep-alive\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "TE: trailers\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Upgrade: websocket\r\n"
        "Content-Type: application/json\r\n"
        "\r\n",
        Framing::chunked);
    for (auto name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade"})
        EXPECT_EQ(values_of(head, name), Values{}) << name << " passed on:\n" << head;
    // The one Transfer-Encoding is ours, from the framing.
    EXPECT_EQ(values_of(head, "Transfer-Encoding"), Values{"chunked"}) << head;
    EXPECT_EQ(values_of(head, "Content-Type"), Values{"application/json"});
}

TEST(UpstreamRequestHead, RemovesHopByHopHeadersWhateverTheirCase) {
    auto head = upstream_head(
        "GET / HTTP/1.1\r\n"
        "Host: a\r\n"
        "CONNECTION: Keep-Alive\r\n"
        "keep-alive: timeout=5\r\n"
        "proxy-CONNECTION: close\r\n"
        "te: trailers\r\n"
        "UPGRADE: h2c\r\n"
        "\r\n");
    for (auto name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade"})
        EXPECT_EQ(values_of(head, name), Values{}) << name << " passed on:\n" << head;
}

TEST(UpstreamRequestHead, RemovesEveryHeaderNamedInConnection) {
    // Two Connection headers, apart from each other, names in mixed case,
    // odd spacing and empty list elements.
    auto head = upstream_head(
        "GET / HTTP/1.1\r\n"
        "Host: a\r\n"
        "Connection: keep-alive, X-Secret-A\r\n"
        "X-Secret-A: 1\r\n"
        "x-secret-b: 2\r\n"
        "X-Kept: yes\r\n"
        "X-SECRET-C: 3\r\n"
        "connection:  x-SECRET-b ,, \tX-Secret-C\t,\r\n"
        "\r\n");
    for (auto name : {"X-Secret-A", "X-Secret-B", "X-Secret-C", "Connection"})
        EXPECT_EQ(values_of(head, name), Values{}) << name << " passed on:\n" << head;
    EXPECT_EQ(values_of(head, "X-Kept"), Values{"yes"});
}

TEST(UpstreamRequestHead, ConnectionListNamingNoHeaderRemovesNothingElse) {
    auto head = upstream_head(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Close: 1\r\nAccept: */*\r\n\r\n");
    EXPECT_EQ(values_of(head, "X-Close"), Values{"1"}) << "close is not a prefix match";
    EXPECT_EQ(values_of(head, "Accept"), Values{"*/*"});
}

TEST(UpstreamRequestHead, KeepsEndToEndHeadersInOrderWithDuplicatesAndCase) {
    auto head = upstream_head(
        "POST /v1/completions HTTP/1.1\r\n"
        "Host: api.example\r\n"
        "Authorization: Bearer k\r\n"
        "x-request-id: abc\r\n"
        "Accept: text/event-stream\r\n"
        "Accept: application/json\r\n"
        "Cookie: a=1\r\n"
        "Cookie: b=2\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 2\r\n"
        "\r\n{}",
        Framing::content_length, 2);
    std::vector<std::string> names;
    for (auto& f : fields_of(head)) names.push_back(f.name + ": " + f.value);
    const std::vector<std::string> expected_prefix = {
        "Host: api.example",
        "Authorization: Bearer k",
        "x-request-id: abc",
        "Accept: text/event-stream",
        "Accept: application/json",
        "Cookie: a=1",
        "Cookie: b=2",
        "Content-Type: application/json",
    };
    ASSERT_GE(names.size(), expected_prefix.size()) << head;
    EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + expected_prefix.size()),
              expected_prefix)
        << head;
}

// Fields passed on keep their order; each goes out as "Name: value", in one
// copy with its neighbours when it came that way, rewritten when it came with
// other spacing. A dropped field in between changes nothing else.
TEST(UpstreamRequestHead, PassesFieldLinesOnInOrderNormalised) {
    auto head = upstream_head(
        "GET / HTTP/1.1\r\nX-A: 1\r\nx-b:  two words \t\r\nConnection: x-c\r\n"
        "X-C: gone\r\nAccept:\t*/*\r\nHost: h\r\nX-Empty: \r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(head.find("GET / HTTP/1.1\r\nX-A: 1\r\nx-b: two words\r\nAccept: */*\r\nHost: "
                        "h\r\nX-Empty: \r\n"),
              0u)
        << head;
    EXPECT_EQ(head.find("X-C"), std::string::npos) << head;
}

TEST(ClientResponseHead, PassesFieldLinesOnInOrderNormalised) {
    auto head = client_head(
        "HTTP/1.1 200 OK\r\nServer:mock\r\nContent-Length: 2\r\nX-Id:  7 \r\nX-Ok: y\r\n\r\n",
        Framing::content_length, 2, true);
    EXPECT_EQ(head,
              "HTTP/1.1 200 OK\r\nServer: mock\r\nX-Id: 7\r\nX-Ok: y\r\nContent-Length: 2\r\n\r\n");
}

TEST(UpstreamRequestHead, ReplacesClientSentForwardedHeaders) {
    auto head = upstream_head(
        "GET / HTTP/1.1\r\n"
        "Host: api.example\r\n"
        "X-Forwarded-For: 6.6.6.6\r\n"
        "x-forwarded-for: 7.7.7.7\r\n"
        "X-Forwarded-Proto: https\r\n"
        "X-FORWARDED-HOST: evil.example\r\n"
        "\r\n");
    EXPECT_EQ(values_of(head, "X-Forwarded-For"), Values{"192.0.2.7"}) << head;
    EXPECT_EQ(values_of(head, "X-Forwarded-Proto"), Values{"http"}) << head;
    EXPECT_EQ(values_of(head, "X-Forwarded-Host"), Values{"api.example"}) << head;
    EXPECT_EQ(head.find("6.6.6.6"), std::string::npos);
    EXPECT_EQ(head.find("7.7.7.7"), std::string::npos);
    EXPECT_EQ(head.find("evil.example"), std::string::npos);
}

TEST(UpstreamRequestHead, SetsForwardedHeadersFromTheContext) {
    const ForwardContext v6{"2001:db8::1", "https", "fallback"};
    auto head =
        upstream_head("GET / HTTP/1.1\r\nHost: chat.example:8443\r\n\r\n", Framing::none, 0, v6);
    EXPECT_EQ(values_of(head, "X-Forwarded-For"), Values{"2001:db8::1"});
    EXPECT_EQ(values_of(head, "X-Forwarded-Proto"), Values{"https"});
    EXPECT_EQ(values_of(head, "X-Forwarded-Host"), Values{"chat.example:8443"});
    EXPECT_EQ(values_of(head, "Host"), Values{"chat.example:8443"}) << "Host passed through";
}

TEST(UpstreamRequestHead, AddsViaAndAppendsToAnExistingVia) {
    auto fresh = upstream_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(values_of(fresh, "Via"), Values{"1.1 deepseek-gateway"});

    auto chained = upstream_head(
        "GET / HTTP/1.1\r\nHost: a\r\nVia: 1.1 edge-1\r\nVia: 1.0 fred, 1.1 p.example\r\n\r\n");
    EXPECT_EQ(values_of(chained, "Via"),
              Values{"1.1 edge-1, 1.0 fred, 1.1 p.example, 1.1 deepseek-gateway"})
        << chained;

    auto from_http10 = upstream_head("GET / HTTP/1.0\r\nHost: a\r\nVia: 1.1 edge\r\n\r\n");
    EXPECT_EQ(values_of(from_http10, "Via"), Values{"1.1 edge, 1.0 deepseek-gateway"});
}

TEST(UpstreamRequestHead, UsesDefaultHostWhenTheClientSentNone) {
    auto head = upstream_head("GET /health HTTP/1.0\r\nAccept: */*\r\n\r\n");
    EXPECT_EQ(start_line(head), "GET /health HTTP/1.1");
    EXPECT_EQ(values_of(head, "Host"), Values{"default.upstream:8080"}) << head;
    // No incoming Host: nothing to report as X-Forwarded-Host.
    EXPECT_EQ(values_of(head, "X-Forwarded-Host"), Values{}) << head;
    EXPECT_EQ(values_of(head, "X-Forwarded-For"), Values{"192.0.2.7"});
}

// An HTTP/1.1 request may carry an empty Host (RFC 9112 §3.2: a target
// without an authority). Exactly one Host goes upstream: ours.
TEST(UpstreamRequestHead, EmptyHostIsReplacedNotDuplicated) {
    auto head = upstream_head("GET / HTTP/1.1\r\nHost:\r\n\r\n");
    EXPECT_EQ(values_of(head, "Host"), Values{"default.upstream:8080"}) << head;
}

// An absolute-form target goes upstream in origin form, with the target's
// authority as Host in place of the client's (RFC 9112 §3.2.2), so a target
// and a Host that disagree never reach a server together.
TEST(UpstreamRequestHead, AbsoluteFormGoesInOriginFormWithTheTargetsHost) {
    ForwardContext ctx = kCtx;
    ctx.origin_form = "/v1/models?x=1";
    ctx.authority = "example.test:8080";
    auto head = upstream_head(
        "GET http://example.test:8080/v1/models?x=1 HTTP/1.1\r\nAccept: */*\r\n"
        "Host: other.test\r\nX-A: 1\r\n\r\n",
        Framing::none, 0, ctx);
    EXPECT_EQ(start_line(head), "GET /v1/models?x=1 HTTP/1.1");
    EXPECT_EQ(values_of(head, "Host"), Values{"example.test:8080"}) << head;
    EXPECT_EQ(values_of(head, "X-Forwarded-Host"), Values{"example.test:8080"}) << head;
    // In the Host field's place, between the fields around it.
    EXPECT_NE(head.find("Accept: */*\r\nHost: example.test:8080\r\nX-A: 1\r\n"), std::string::npos)
        << head;

    ctx.origin_form = "";  // "http://example.test"
    head =
        upstream_head("GET http://example.test HTTP/1.1\r\nHost: x\r\n\r\n", Framing::none, 0, ctx);
    EXPECT_EQ(start_line(head), "GET / HTTP/1.1");
    ctx.origin_form = "?q=1";  // "http://example.test?q=1"
    head = upstream_head("GET http://example.test?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", Framing::none,
                         0, ctx);
    EXPECT_EQ(start_line(head), "GET /?q=1 HTTP/1.1");
}

TEST(UpstreamRequestHead, AbsoluteFormWithoutHostFieldStillSendsTheTargetsHost) {
    ForwardContext ctx = kCtx;
    ctx.origin_form = "/a";
    ctx.authority = "example.test";
    auto head = upstream_head("GET http://example.test/a HTTP/1.0\r\n\r\n", Framing::none, 0, ctx);
    EXPECT_EQ(start_line(head), "GET /a HTTP/1.1");
    EXPECT_EQ(values_of(head, "Host"), Values{"example.test"}) << head;
}

TEST(UpstreamRequestHead, FramingContentLength) {
    auto head = upstream_head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0005\r\n\r\nhello",
                              Framing::content_length, 5);
    EXPECT_EQ(values_of(head, "Content-Length"), Values{"5"}) << head;
    EXPECT_EQ(values_of(head, "Transfer-Encoding"), Values{});
}

TEST(UpstreamRequestHead, FramingChunked) {
    auto head = upstream_head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                              Framing::chunked, 0);
    EXPECT_EQ(values_of(head, "Transfer-Encoding"), Values{"chunked"}) << head;
    EXPECT_EQ(values_of(head, "Content-Length"), Values{});
}

TEST(UpstreamRequestHead, FramingNone) {
    auto head = upstream_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Framing::none, 123);
    EXPECT_EQ(values_of(head, "Transfer-Encoding"), Values{});
    EXPECT_EQ(values_of(head, "Content-Length"), Values{});
}

TEST(UpstreamRequestHead, RequestLineIsHttp11WithMethodAndTargetAsReceived) {
    EXPECT_EQ(start_line(upstream_head("GET /v1/models?x=1&y=%20 HTTP/1.1\r\nHost: a\r\n\r\n")),
              "GET /v1/models?x=1&y=%20 HTTP/1.1");
    EXPECT_EQ(start_line(upstream_head("DELETE /a/b HTTP/1.0\r\nHost: a\r\n\r\n")),
              "DELETE /a/b HTTP/1.1");
    EXPECT_EQ(start_line(upstream_head("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")),
              "OPTIONS * HTTP/1.1");
    EXPECT_EQ(start_line(upstream_head("GET http://a.example/p HTTP/1.1\r\nHost: a\r\n\r\n")),
              "GET http://a.example/p HTTP/1.1");
}

TEST(UpstreamRequestHead, UnknownMethodsPassAsReceived) {
    EXPECT_EQ(start_line(upstream_head("FROBNICATE /x HTTP/1.1\r\nHost: a\r\n\r\n")),
              "FROBNICATE /x HTTP/1.1");
    // Methods are case-sensitive: "get" is not GET.
    EXPECT_EQ(start_line(upstream_head("get /x HTTP/1.1\r\nHost: a\r\n\r\n")), "get /x HTTP/1.1");
}

TEST(UpstreamRequestHead, RemovesExpect) {
    auto head = upstream_head(
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        Framing::content_length, 3);
    EXPECT_EQ(values_of(head, "Expect"), Values{}) << head;
}

TEST(UpstreamRequestHead, IsValidHttpThatBeastParsesBack) {
    auto head = upstream_head(
        "POST /v1/chat/completions HTTP/1.0\r\n"
        "Connection: keep-alive, X-Hop\r\n"
        "X-Hop: 1\r\n"
        "Content-Length: 4\r\n"
        "\r\nbody",
        Framing::content_length, 4);
    http::request_parser<http::string_body> p;
    p.eager(true);
    error_code ec;
    auto n = p.put(asio::buffer(head), ec);
    ASSERT_FALSE(ec) << ec.message() << "\n" << head;
    EXPECT_EQ(n, head.size());
    EXPECT_TRUE(p.is_header_done());
    EXPECT_EQ(p.get().version(), 11u);
    EXPECT_TRUE(p.get().keep_alive());
    EXPECT_EQ(p.content_length().value_or(0), 4u);
}

TEST(IsHopByHop, FixedListAndConnectionTokens) {
    using dsgw::proxy::is_hop_by_hop;
    for (auto name :
         {"Connection", "keep-alive", "PROXY-CONNECTION", "Te", "transfer-encoding", "Upgrade"})
        EXPECT_TRUE(is_hop_by_hop(name, "")) << name;
    EXPECT_FALSE(is_hop_by_hop("Content-Type", ""));
    EXPECT_FALSE(is_hop_by_hop("X-Trace", "close"));
    EXPECT_TRUE(is_hop_by_hop("X-Trace", "close, x-trace"));
    EXPECT_TRUE(is_hop_by_hop("x-trace", " X-TRACE "));
    EXPECT_FALSE(is_hop_by_hop("X-Trace", "X-Traces"));
    EXPECT_FALSE(is_hop_by_hop("X-Trace", "X-Trac"));
}

TEST(ConnectionTokens, JoinsEveryConnectionHeader) {
    auto p = parse_head<true>(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: a\r\nX: 1\r\nconnection: b, c\r\n\r\n");
    auto tokens = dsgw::proxy::connection_tokens(p->head());
    EXPECT_EQ(tokens, "a,b, c");
    auto none = parse_head<true>("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(dsgw::proxy::connection_tokens(none->head()), "");
}

// ======================================================= client response head

TEST(ClientResponseHead, StatusLineAndReason) {
    EXPECT_EQ(start_line(client_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                                     Framing::content_length, 0, true)),
              "HTTP/1.1 200 OK");
    EXPECT_EQ(start_line(client_head("HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n",
                                     Framing::content_length, 0, true)),
              "HTTP/1.1 404 Nope")
        << "the upstream's reason passes through";
    // An HTTP/1.0 upstream still gets an HTTP/1.1 status line to the client.
    EXPECT_EQ(start_line(client_head("HTTP/1.0 503 Service Unavailable\r\n\r\n", Framing::close, 0,
                                     false)),
              "HTTP/1.1 503 Service Unavailable");
}

TEST(ClientResponseHead, EmptyReasonGetsTheStandardOne) {
    EXPECT_EQ(start_line(client_head("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
                                     Framing::content_length, 0, true)),
              "HTTP/1.1 200 OK");
    EXPECT_EQ(start_line(client_head("HTTP/1.1 429 \r\nContent-Length: 0\r\n\r\n",
                                     Framing::content_length, 0, true)),
              "HTTP/1.1 429 Too Many Requests");
}

TEST(ClientResponseHead, ContentLengthIsRewrittenPerFraming) {
    const std::string_view upstream =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n";
    auto cl = client_head(upstream, Framing::content_length, 10, true);
    EXPECT_EQ(values_of(cl, "Content-Length"), Values{"10"}) << cl;
    EXPECT_EQ(values_of(cl, "Transfer-Encoding"), Values{});

    auto chunked = client_head(upstream, Framing::chunked, 0, true);
    EXPECT_EQ(values_of(chunked, "Content-Length"), Values{}) << chunked;
    EXPECT_EQ(values_of(chunked, "Transfer-Encoding"), Values{"chunked"});

    auto close = client_head(upstream, Framing::close, 0, false, 10);
    EXPECT_EQ(values_of(close, "Content-Length"), Values{}) << close;
    EXPECT_EQ(values_of(close, "Transfer-Encoding"), Values{});
    EXPECT_EQ(values_of(close, "Connection"), Values{"close"});
}

TEST(ClientResponseHead, UpstreamChunkedBecomesClientContentLengthOrChunked) {
    const std::string_view upstream =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n";
    auto chunked = client_head(upstream, Framing::chunked, 0, true);
    EXPECT_EQ(values_of(chunked, "Transfer-Encoding"), Values{"chunked"}) << "exactly once";
    EXPECT_EQ(values_of(chunked, "Content-Type"), Values{"text/event-stream"});
}

TEST(ClientResponseHead, FramingNoneKeepsContentLengthAsIs) {
    // A response to HEAD, or a 304: Content-Length describes the body that
    // was not sent.
    auto head =
        client_head("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", Framing::none, 0, true);
    EXPECT_EQ(values_of(head, "Content-Length"), Values{"1234"}) << head;
    EXPECT_EQ(values_of(head, "Transfer-Encoding"), Values{});

    auto not_modified =
        client_head("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", Framing::none, 0, true);
    EXPECT_EQ(values_of(not_modified, "Content-Length"), Values{}) << not_modified;
    EXPECT_EQ(values_of(not_modified, "ETag"), Values{"\"x\""});
}

TEST(ClientResponseHead, DropsHopByHopHeaders) {
    auto head = client_head(
        "HTTP/1.1 200 OK\r\n"
        "Connection: keep-alive, X-Backend-Hop\r\n"
        "Keep-Alive: timeout=30\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "TE: trailers\r\n"
        "Upgrade: h2c\r\n"
        "X-Backend-Hop: 1\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Cache-Control: no-cache\r\n"
        "Set-Cookie: a=1\r\n"
        "Set-Cookie: b=2\r\n"
        "\r\n",
        Framing::chunked, 0, true);
    for (auto name :
         {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade", "X-Backend-Hop"})
        EXPECT_EQ(values_of(head, name), Values{}) << name << " passed on:\n" << head;
    EXPECT_EQ(values_of(head, "Transfer-Encoding"), Values{"chunked"});
    EXPECT_EQ(values_of(head, "Cache-Control"), Values{"no-cache"});
    EXPECT_EQ(values_of(head, "Set-Cookie"), (Values{"a=1", "b=2"}));
}

// 1xx heads go to the client as received, less hop-by-hop and framing
// fields, with no Connection field of ours.
TEST(InterimResponseHead, PassesEndToEndFieldsOnly) {
    auto p = parse_head<false>(
        "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\nConnection: X-Hop\r\n"
        "X-Hop: 1\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\n\r\n");
    std::string head;
    dsgw::proxy::build_interim_response_head(p->head(), head);
    EXPECT_EQ(head, "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n");

    auto q = parse_head<false>("HTTP/1.1 100 \r\n\r\n");
    head.clear();
    dsgw::proxy::build_interim_response_head(q->head(), head);
    EXPECT_EQ(head, "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST(ClientResponseHead, ConnectionCloseWhenNotKeptAlive) {
    auto head =
        client_head("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
                    Framing::content_length, 2, false);
    EXPECT_EQ(values_of(head, "Connection"), Values{"close"}) << head;

    auto http10 = client_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
                              Framing::content_length, 2, false, 10);
    EXPECT_EQ(values_of(http10, "Connection"), Values{"close"}) << http10;
}

TEST(ClientResponseHead, KeepAliveForHttp10ClientsOnly) {
    auto http10 = client_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
                              Framing::content_length, 2, true, 10);
    EXPECT_EQ(values_of(http10, "Connection"), Values{"keep-alive"}) << http10;

    auto http11 = client_head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
                              Framing::content_length, 2, true, 11);
    EXPECT_EQ(values_of(http11, "Connection"), Values{})
        << "HTTP/1.1 keeps alive by default; the upstream's Connection is its own:\n"
        << http11;
}

TEST(ClientResponseHead, IsValidHttpThatBeastParsesBack) {
    auto head = client_head(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
        Framing::chunked, 0, true);
    http::response_parser<http::string_body> p;
    error_code ec;
    p.put(asio::buffer(head), ec);
    ASSERT_FALSE(ec) << ec.message() << "\n" << head;
    EXPECT_TRUE(p.is_header_done());
    EXPECT_TRUE(p.chunked());
    EXPECT_TRUE(p.keep_alive());
    EXPECT_EQ(p.get().result_int(), 200u);
}

// ================================================================== errors

TEST(ErrorResponse, BodyIsTheOpenAiErrorShape) {
    EXPECT_EQ(dsgw::proxy::local_reply_body(503, "no upstream server available"),
              R"({"error":{"message":"no upstream server available",)"
              R"("type":"gateway_error","code":503}})");
}

TEST(ErrorResponse, EscapesTheMessageForJson) {
    EXPECT_EQ(dsgw::proxy::local_reply_body(400, "bad \"x\"\nline2\\\t\x01"),
              R"({"error":{"message":"bad \"x\"\nline2\\\t\u0001",)"
              R"("type":"gateway_error","code":400}})");
}

// Parses a complete response with Beast; returns the parser for inspection.
std::unique_ptr<http::response_parser<http::string_body>> parse_response(const std::string& text) {
    auto p = std::make_unique<http::response_parser<http::string_body>>();
    p->eager(true);
    error_code ec;
    auto n = p->put(asio::buffer(text), ec);
    EXPECT_FALSE(ec) << ec.message() << "\n" << text;
    EXPECT_EQ(n, text.size()) << "bytes after the body:\n" << text;
    EXPECT_TRUE(p->is_done()) << text;
    return p;
}

TEST(ErrorResponse, IsValidHttpWithExactBodyAndLength) {
    struct Case {
        unsigned status;
        const char* reason;
    };
    for (auto c : {Case{400, "Bad Request"}, Case{403, "Forbidden"}, Case{408, "Request Timeout"},
                   Case{413, "Payload Too Large"}, Case{431, "Request Header Fields Too Large"},
                   Case{502, "Bad Gateway"}, Case{503, "Service Unavailable"},
                   Case{504, "Gateway Timeout"}}) {
        const std::string message = "message for " + std::to_string(c.status);
        auto text = dsgw::proxy::local_reply(c.status, message, true);
        EXPECT_EQ(start_line(text), "HTTP/1.1 " + std::to_string(c.status) + " " + c.reason);
        auto p = parse_response(text);
        const auto& res = p->get();
        EXPECT_EQ(res.result_int(), c.status);
        EXPECT_EQ(res[http::field::content_type], "application/json");
        EXPECT_EQ(res.body(), R"({"error":{"message":")" + message +
                                  R"(","type":"gateway_error","code":)" + std::to_string(c.status) +
                                  "}}");
        EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
        EXPECT_FALSE(res.keep_alive()) << "close=true sends Connection: close";
    }
}

TEST(ErrorResponse, EscapedMessageKeepsContentLengthRight) {
    auto text = dsgw::proxy::local_reply(400, "quote \" and\r\nnewline", false);
    auto p = parse_response(text);
    const auto& res = p->get();
    EXPECT_EQ(res.body(), R"({"error":{"message":"quote \" and\r\nnewline",)"
                          R"("type":"gateway_error","code":400}})");
    EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
    EXPECT_TRUE(res.keep_alive()) << "close=false leaves the connection open";
    EXPECT_EQ(res.count(http::field::connection), 0u);
}

TEST(ErrorResponse, ExtraHeadersAreIncluded) {
    auto text = dsgw::proxy::local_reply(503, "busy", true, "Retry-After: 2\r\n");
    auto p = parse_response(text);
    EXPECT_EQ(p->get()[http::field::retry_after], "2");
    EXPECT_EQ(p->get().body(), dsgw::proxy::local_reply_body(503, "busy"));
}

}  // namespace
