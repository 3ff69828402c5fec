// The desync corpus (issue 15), both directions, on the real gateway in
// front of a scripted raw-socket upstream.
//
// Requests: each row is the bytes a client sends, what the client must get
// back, and EXACTLY the bytes the upstream must receive (nothing, or the
// request as the gateway rewrites it: start line HTTP/1.1, fields in the
// order received, Host if missing, its own framing header, X-Forwarded-*,
// Via). Sources: RFC 9112 (§2.2 bare CR/LF, §3 request line, §3.2 Host and
// target forms, §5 fields and obs-fold, §6 body length, §7 chunked, §9.3
// pipelining), PortSwigger's request-smuggling research (CL.TE, TE.CL and the
// TE.TE obfuscations), the HTTP Garden findings and http_desync_guardian's
// classification, kept to what a gateway sees on HTTP/1.x.
//
// Responses: the upstream answers client A with an odd response; then a
// second client B, on another connection of a one-worker gateway (so only the
// pool can carry anything from A to B), must get its own answer. Each row says
// what A gets, whether the upstream connection could be reused (connections
// the upstream accepted) and whether the gateway counted a protocol error.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "harness.hpp"
#include "raw_upstream.hpp"

namespace dsgw::it {
namespace {

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const std::string kHost = "Host: gw.test\r\n";

// ---------------------------------------------------------------- requests

struct RequestCase {
    std::string name;
    std::string client;  // raw bytes, one write
    int status;          // the (first) response's status
    bool closes;         // the gateway closes the connection after
    // Exactly what the upstream receives; nothing when not set.
    std::optional<std::string> upstream;
    int responses = 1;  // pipelined requests answered
};

std::ostream& operator<<(std::ostream& os, const RequestCase& c) {
    return os << c.name;
}

// A POST with `fields` (each line with its CRLF) after the Host line and a
// body.
std::string post(const std::string& fields, const std::string& body) {
    return "POST / HTTP/1.1\r\n" + kHost + fields + "\r\n" + body;
}

RequestCase refused(std::string name, std::string client) {
    return {std::move(name), std::move(client), 400, true, std::nullopt};
}

std::vector<RequestCase> request_cases() {
    const std::string get_fwd = forwarded("GET / HTTP/1.1", kHost, "gw.test");
    const std::string hello_fwd =
        forwarded("POST / HTTP/1.1", kHost, "gw.test", "Content-Length: 5\r\n", "hello");
    const std::string chunked_fwd =
        forwarded("POST / HTTP/1.1", kHost, "gw.test", "Transfer-Encoding: chunked\r\n",
                  "5\r\nhello\r\n0\r\n\r\n");
    const std::string chunked_body = "5\r\nhello\r\n0\r\n\r\n";
    std::vector<RequestCase> v = {
        // --- baselines: what a correct request turns into
        {"Get", "GET / HTTP/1.1\r\n" + kHost + "\r\n", 200, false, get_fwd},
        {"PostContentLength", post("Content-Length: 5\r\n", "hello"), 200, false, hello_fwd},
        {"PostChunked", post("Transfer-Encoding: chunked\r\n", chunked_body), 200, false,
         chunked_fwd},
        // Transfer codings are case-insensitive, and OWS around a value is
        // not part of it (RFC 9110 §5.5, §7.3.1... "chunked" is "chunked").
        {"ChunkedAnyCase", post("Transfer-Encoding: ChUnKeD\r\n", chunked_body), 200, false,
         chunked_fwd},
        {"ChunkedWithTabBeforeValue", post("Transfer-Encoding:\tchunked\r\n", chunked_body), 200,
         false, chunked_fwd},
        // Leading zeros are still 1*DIGIT (RFC 9110 §8.6); we send our own.
        {"ContentLengthLeadingZero", post("Content-Length: 05\r\n", "hello"), 200, false,
         hello_fwd},
        // Chunk extensions (quoted strings may hold ';') are dropped, the
        // body re-chunked.
        {"ChunkExtensionQuoted",
         post("Transfer-Encoding: chunked\r\n", "5;a=\"b;c\"\r\nhello\r\n0\r\n\r\n"), 200, false,
         chunked_fwd},
        // Framing fields in a trailer section are refused, as Beast refuses
        // them (RFC 9110 §6.5.1: they cannot be processed there); other
        // trailer fields are dropped, never forwarded.
        refused("TrailerContentLength",
                post("Transfer-Encoding: chunked\r\n",
                     "5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n")),
        refused("TrailerTransferEncoding",
                post("Transfer-Encoding: chunked\r\n",
                     "5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n")),
        {"TrailerOtherField",
         post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n"),
         200, false, chunked_fwd},
        // A body that holds a second request is a body: one request upstream.
        {"BodyHoldsARequest",
         post("Content-Length: 32\r\n", "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"), 200, false,
         forwarded("POST / HTTP/1.1", kHost, "gw.test", "Content-Length: 32\r\n",
                   "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")},
        // Hop-by-hop abuse: naming Content-Length in Connection does not
        // remove the framing (we write our own).
        {"ConnectionNamesContentLength",
         post("Connection: Content-Length\r\nContent-Length: 5\r\n", "hello"), 200, false,
         hello_fwd},
        // h2c upgrade: Upgrade, Connection and what it lists are hop-by-hop;
        // the request goes on as plain HTTP/1.1.
        {"UpgradeH2cIsIgnored",
         "GET / HTTP/1.1\r\n" + kHost +
             "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
             "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
         200, false, get_fwd},
        // Pipelining (RFC 9112 §9.3): two requests in one write, answered in
        // order, forwarded one after the other.
        {"PipelinedTwoGets",
         "GET /a HTTP/1.1\r\n" + kHost + "\r\nGET /b HTTP/1.1\r\n" + kHost + "\r\n", 200, false,
         forwarded("GET /a HTTP/1.1", kHost, "gw.test") +
             forwarded("GET /b HTTP/1.1", kHost, "gw.test"),
         2},
        {"PipelinedAfterABody",
         post("Content-Length: 5\r\n", "hello") + "GET /b HTTP/1.1\r\n" + kHost + "\r\n", 200,
         false, hello_fwd + forwarded("GET /b HTTP/1.1", kHost, "gw.test"), 2},
        // Asterisk form only with OPTIONS (RFC 9112 §3.2.4).
        {"OptionsAsterisk", "OPTIONS * HTTP/1.1\r\n" + kHost + "\r\n", 200, false,
         forwarded("OPTIONS * HTTP/1.1", kHost, "gw.test")},
        // Absolute form (RFC 9112 §3.2.2): the target's authority replaces
        // Host; forwarded in origin form. (Defect 3.)
        {"AbsoluteFormMismatchingHost",
         "GET http://example.test/x?y=1 HTTP/1.1\r\nHost: other.test\r\n\r\n", 200, false,
         forwarded("GET /x?y=1 HTTP/1.1", "Host: example.test\r\n", "example.test")},

        // --- CL.TE / TE.CL: both framings in one request (RFC 9112 §6.3)
        refused("ClTe", post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nG")),
        refused("TeCl", post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                             "8\r\nSMUGGLED\r\n0\r\n\r\n")),
        // --- TE.TE obfuscations (PortSwigger)
        refused("TeXchunked", post("Transfer-Encoding: xchunked\r\n", chunked_body)),
        refused("TeChunkedIdentity",
                post("Transfer-Encoding: chunked, identity\r\n", chunked_body)),
        refused("TeIdentityChunked",
                post("Transfer-Encoding: identity, chunked\r\n", chunked_body)),
        refused("TeChunkedChunked", post("Transfer-Encoding: chunked, chunked\r\n", chunked_body)),
        refused("TeWithParameter", post("Transfer-Encoding: chunked;q=1\r\n", chunked_body)),
        refused("TeVerticalTab", post("Transfer-Encoding: \x0b"
                                      "chunked\r\n",
                                      chunked_body)),
        refused("TeTabBeforeColon", post("Transfer-Encoding\t: chunked\r\n", chunked_body)),
        refused("TeSpaceBeforeColon", post("Transfer-Encoding : chunked\r\n", chunked_body)),
        refused("TeTwiceChunkedAndX",
                post("Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", chunked_body)),
        refused("TeTwiceChunked",
                post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked_body)),
        // Whitespace before the first field (RFC 9112 §2.2): " Transfer-Encoding".
        refused("TeLineStartsWithSpace", "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" +
                                             kHost + "\r\n" + chunked_body),
        // obs-fold continuing a TE line (RFC 9112 §5.2).
        refused("TeObsFold", post("Transfer-Encoding:\r\n chunked\r\n", chunked_body)),
        // HTTP/1.0 with Transfer-Encoding: faulty framing (RFC 9112 §6.1). (Defect 2.)
        refused("TeInHttp10", "POST / HTTP/1.0\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n" +
                                  chunked_body),
        refused("TeAndClInHttp10", "POST / HTTP/1.0\r\n" + kHost +
                                       "Transfer-Encoding: chunked\r\nContent-Length: 15\r\n\r\n" +
                                       chunked_body),
        // --- Content-Length variants (RFC 9110 §8.6, RFC 9112 §6.3)
        refused("ClTwiceDifferent", post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!")),
        refused("ClPlusSign", post("Content-Length: +5\r\n", "hello")),
        refused("ClNegative", post("Content-Length: -5\r\n", "hello")),
        refused("ClList", post("Content-Length: 5,6\r\n", "hello!")),
        refused("ClSpaceInside", post("Content-Length: 5 5\r\n", "hello")),
        refused("ClHex", post("Content-Length: 0x5\r\n", "hello")),
        refused("ClEmpty", post("Content-Length: \r\n", "hello")),
        refused("ClOverflow", post("Content-Length: 99999999999999999999999\r\n", "hello")),
        // --- chunked body syntax (RFC 9112 §7.1)
        refused("ChunkSizeOverflow",
                post("Transfer-Encoding: chunked\r\n", "fffffffffffffffff\r\nhello\r\n0\r\n\r\n")),
        refused("ChunkSize0x", post("Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n")),
        refused("ChunkSizeNegative",
                post("Transfer-Encoding: chunked\r\n", "-5\r\nhello\r\n0\r\n\r\n")),
        refused("ChunkSizeLeadingSpace",
                post("Transfer-Encoding: chunked\r\n", " 5\r\nhello\r\n0\r\n\r\n")),
        refused("ChunkDataLongerThanSize",
                post("Transfer-Encoding: chunked\r\n", "5\r\nhelloX\r\n0\r\n\r\n")),
        refused("ChunkBareLf", post("Transfer-Encoding: chunked\r\n", "5\nhello\n0\n\n")),
        // An unterminated quoted chunk extension never completes. (Issue item 8.)
        refused("ChunkExtensionUnterminatedQuote",
                post("Transfer-Encoding: chunked\r\n", "5;a=\"b\r\nhello\r\n0\r\n\r\n")),
        // --- field syntax (RFC 9112 §5, RFC 9110 §5.5)
        refused("ObsFold", post("X-A: a\r\n b\r\nContent-Length: 5\r\n", "hello")),
        refused("BareLfEverywhere", "GET / HTTP/1.1\nHost: gw.test\n\n"),
        refused("BareLfOneField", "GET / HTTP/1.1\r\nHost: gw.test\nX-A: b\r\n\r\n"),
        refused("BareCrInValue", "GET / HTTP/1.1\r\n" + kHost + "X-A: a\rb\r\n\r\n"),
        refused("NulInValue", std::string("GET / HTTP/1.1\r\n") + kHost + "X-A: a" +
                                  std::string(1, '\0') + "b\r\n\r\n"),
        refused("DelInValue", "GET / HTTP/1.1\r\n" + kHost +
                                  "X-A: a\x7f"
                                  "b\r\n\r\n"),
        refused("SpaceInFieldName", "GET / HTTP/1.1\r\n" + kHost + "X A: b\r\n\r\n"),
        refused("FieldWithoutColon", "GET / HTTP/1.1\r\n" + kHost + "X-A\r\n\r\n"),
        refused("EmptyFieldName", "GET / HTTP/1.1\r\n" + kHost + ": b\r\n\r\n"),
        refused("HostSpaceBeforeColon", "GET / HTTP/1.1\r\nHost : gw.test\r\n\r\n"),
        // --- request line (RFC 9112 §3)
        refused("Http09", "GET /\r\n\r\n"),
        refused("Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        refused("DoubleSpaceInRequestLine", "GET  / HTTP/1.1\r\n" + kHost + "\r\n"),
        refused("TrailingSpaceInRequestLine", "GET / HTTP/1.1 \r\n" + kHost + "\r\n"),
        refused("LowerCaseVersion", "GET / http/1.1\r\n" + kHost + "\r\n"),
        refused("Connect", "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n"),
        refused("AsteriskWithGet", "GET * HTTP/1.1\r\n" + kHost + "\r\n"),
        refused("RelativeTarget", "GET foo HTTP/1.1\r\n" + kHost + "\r\n"),
        refused("AuthorityFormWithGet", "GET example.test:443 HTTP/1.1\r\n" + kHost + "\r\n"),
        refused("AbsoluteFormFtp", "GET ftp://example.test/ HTTP/1.1\r\n" + kHost + "\r\n"),
        refused("AbsoluteFormUserinfo", "GET http://u@example.test/ HTTP/1.1\r\n" + kHost + "\r\n"),
        // --- Host (RFC 9112 §3.2)
        refused("NoHost", "GET / HTTP/1.1\r\n\r\n"),
        refused("TwoHosts", "GET / HTTP/1.1\r\n" + kHost + "Host: evil.test\r\n\r\n"),
        refused("HostWithSpace", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
        refused("HostWithSlash", "GET / HTTP/1.1\r\nHost: gw.test/x\r\n\r\n"),
        refused("HostWithAt", "GET / HTTP/1.1\r\nHost: u@gw.test\r\n\r\n"),
    };
    return v;
}

class RequestCorpus : public ::testing::TestWithParam<RequestCase> {};

TEST_P(RequestCorpus, ClientOutcomeAndExactUpstreamBytes) {
    const RequestCase& c = GetParam();
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();

    Conn conn;
    ASSERT_TRUE(conn.connect(gw.port()));
    ASSERT_TRUE(conn.send_all(c.client));
    for (int i = 0; i < c.responses; ++i) {
        std::string err;
        auto r = conn.read_response(5s, false, &err);
        ASSERT_TRUE(r) << "response " << i << ": " << err;
        if (i == 0) {
            EXPECT_EQ(r->status, c.status) << r->body;
        }
        if (r->status == 400) {
            std::string why;
            EXPECT_TRUE(is_gateway_error(*r, 400, &why)) << why;
        } else if (r->status == 200) {
            EXPECT_EQ(r->body, "ok");
        }
    }
    if (c.closes) {
        auto closed = conn.wait_close(3s);
        EXPECT_TRUE(closed.closed) << "the gateway kept the connection open";
        EXPECT_EQ(closed.data, "") << "bytes after the response";
    } else {
        std::string more;
        EXPECT_EQ(conn.recv_some(more, 200ms), -2) << "unexpected: " << more;
    }

    if (c.upstream) {
        const auto& want = *c.upstream;
        const auto deadline = Clock::now() + 3s;
        while (up.received_all().size() < want.size() && Clock::now() < deadline)
            std::this_thread::sleep_for(5ms);
        std::this_thread::sleep_for(50ms);  // and nothing more
        EXPECT_EQ(up.received_all(), want);
    } else {
        std::this_thread::sleep_for(100ms);
        EXPECT_EQ(up.received_all(), "") << "the upstream received bytes";
        EXPECT_EQ(up.connections(), 0u);
    }
}

INSTANTIATE_TEST_SUITE_P(Desync, RequestCorpus, ::testing::ValuesIn(request_cases()),
                         [](const auto& info) { return info.param.name; });

// Expect: 100-continue (RFC 9110 §10.1.1): the gateway answers 100 itself
// and does not pass Expect on; the body follows and is forwarded.
TEST(DesyncRequest, ExpectContinueIsAnsweredAndNotForwarded) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    Conn conn;
    ASSERT_TRUE(conn.connect(gw.port()));
    ASSERT_TRUE(conn.send_all("POST / HTTP/1.1\r\n" + kHost +
                              "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
    std::string got;
    const auto deadline = Clock::now() + 3s;
    while (got.find("\r\n\r\n") == std::string::npos && Clock::now() < deadline)
        conn.recv_some(got, 100ms);
    EXPECT_EQ(got, "HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_TRUE(conn.send_all("hello"));
    auto r = conn.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ASSERT_TRUE(up.wait_requests(1, 3s));
    EXPECT_EQ(up.received_all(),
              forwarded("POST / HTTP/1.1", kHost, "gw.test", "Content-Length: 5\r\n", "hello"));
}

// HTTP/1.0 without Host: the server's authority is sent, Via says 1.0, and
// the connection closes after the response (no keep-alive asked for).
TEST(DesyncRequest, Http10WithoutHostGetsTheServersAuthority) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    Conn conn;
    ASSERT_TRUE(conn.connect(gw.port()));
    ASSERT_TRUE(conn.send_all("GET / HTTP/1.0\r\n\r\n"));
    auto r = conn.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(conn.wait_close(3s).closed);
    ASSERT_TRUE(up.wait_requests(1, 3s));
    std::string want = forwarded("GET / HTTP/1.1", "Host: " + up.address() + "\r\n", "");
    want.replace(want.find("Via: 1.1"), 8, "Via: 1.0");
    EXPECT_EQ(up.received_all(), want);
}

// ---------------------------------------------------------------- responses

struct ResponseCase {
    std::string name;
    std::string reply;  // what the upstream writes, in one send(), for client A
    bool upstream_closes = false;
    std::string method = "GET";
    int status;        // what client A gets
    std::string body;  // A's body (for the gateway's own errors: its JSON shape)
    // Upstream connections after client B's request: 1 when the connection
    // could be reused, 2 when it had to be closed.
    std::size_t connections;
    int protocol_errors;  // upstream_errors_total{kind="protocol"} added; -1: not checked
};

std::ostream& operator<<(std::ostream& os, const ResponseCase& c) {
    return os << c.name;
}

// A complete response that must never reach client B.
const std::string kSmuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";
const std::string kAnswerB = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nanswer-B";

std::vector<ResponseCase> response_cases() {
    const std::string chunked_ok =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    const std::string big_field = "X-Big: " + std::string(70 * 1024, 'a') + "\r\n";
    return {
        // --- clean responses: the connection is reused
        {"ContentLength", kOk, false, "GET", 200, "ok", 1, 0},
        {"Chunked", chunked_ok, false, "GET", 200, "ok", 1, 0},
        {"ChunkedWithTrailer",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
         false, "GET", 200, "ok", 1, 0},
        {"InterimThenFinal",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; "
         "rel=preload\r\n\r\n" +
             kOk,
         false, "GET", 200, "ok", 1, 0},
        {"Head", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", false, "HEAD", 200, "", 1, 0},
        // A close-delimited body ends with the connection (RFC 9112 §6.3 item 8).
        {"CloseDelimited", "HTTP/1.1 200 OK\r\n\r\nok", true, "GET", 200, "ok", 2, 0},
        // --- bytes past the end of the response (defect 1)
        {"BytesPastContentLength", kOk + kSmuggled, false, "GET", 200, "ok", 2, 1},
        {"BytesAfterLastChunk", chunked_ok + kSmuggled, false, "GET", 200, "ok", 2, 1},
        {"StrayCrlf", kOk + "\r\n", false, "GET", 200, "ok", 2, 1},
        {"BodyOn204", "HTTP/1.1 204 No Content\r\n\r\n" + kSmuggled, false, "GET", 204, "", 2, 1},
        {"BodyOn304", "HTTP/1.1 304 Not Modified\r\n\r\n" + kSmuggled, false, "GET", 304, "", 2, 1},
        {"BodyOnHead",
         "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kSmuggled.size()) + "\r\n\r\n" +
             kSmuggled,
         false, "HEAD", 200, "", 2, 1},
        // --- framing the gateway cannot trust: 502, connection closed
        {"ClAndTe",
         "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: "
         "chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
         false, "GET", 502, "", 2, 1},
        {"ClTwiceDifferent", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
         false, "GET", 502, "", 2, 1},
        {"ClNotANumber", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nok", false, "GET", 502, "",
         2, 1},
        {"ClNegative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok", false, "GET", 502, "", 2,
         1},
        {"BadChunkSize", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false,
         "GET", 502, "", 2, 1},
        {"TeNotChunked",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok", false, "GET",
         502, "", 2, 1},
        {"BareLf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false, "GET", 502, "", 2, 1},
        {"Status050", "HTTP/1.1 050 x\r\nContent-Length: 2\r\n\r\nok", false, "GET", 502, "", 2, 1},
        {"Status1000", "HTTP/1.1 1000 x\r\nContent-Length: 2\r\n\r\nok", false, "GET", 502, "", 2,
         1},
        {"ObsFold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok", false, "GET",
         502, "", 2, 1},
        {"NulInField",
         std::string("HTTP/1.1 200 OK\r\nX-A: a") + std::string(1, '\0') +
             "b\r\nContent-Length: 2\r\n\r\nok",
         false, "GET", 502, "", 2, 1},
        {"HeaderSectionOver64KiB",
         "HTTP/1.1 200 OK\r\n" + big_field + "Content-Length: 2\r\n\r\nok", false, "GET", 502, "",
         2, 1},
        // 101 is not supported: 502, closed (defect 5). The metric is not
        // part of the contract here.
        {"SwitchingProtocols",
         "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + kOk,
         false, "GET", 502, "", 2, -1},
    };
}

class ResponseCorpus : public ::testing::TestWithParam<ResponseCase> {};

TEST_P(ResponseCorpus, ClientGetsWhatWasFramedAndTheNextClientItsOwnAnswer) {
    const ResponseCase& c = GetParam();
    RawUpstream up([&c](std::size_t, std::size_t index, const std::string&) {
        RawUpstream::Reply r;
        if (index == 0) {
            r.bytes = c.reply;
            r.close = c.upstream_closes;
        } else {
            r.bytes = kAnswerB;
        }
        return r;
    });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin);
    const double errors_before = upstream_errors(*admin, "protocol");
    ASSERT_GE(errors_before, 0);

    {
        Conn a;
        ASSERT_TRUE(a.connect(gw.port()));
        ASSERT_TRUE(a.send_all(c.method + " /a HTTP/1.1\r\n" + kHost + "\r\n"));
        std::string err;
        auto r = a.read_response(5s, c.method == "HEAD", &err);
        ASSERT_TRUE(r) << "client A got no complete response: " << err;
        EXPECT_EQ(r->status, c.status) << r->body;
        if (c.status == 502) {
            std::string why;
            EXPECT_TRUE(is_gateway_error(*r, 502, &why)) << why;
        } else {
            EXPECT_EQ(r->body, c.body);
        }
        // Nothing past the response on A's connection either.
        std::string more;
        auto n = a.recv_some(more, 200ms);
        EXPECT_TRUE(n == -2 || n == 0) << "client A got more: " << more;
        EXPECT_EQ(more, "");
    }
    ASSERT_TRUE(up.wait_requests(1, 3s));

    // Client B, another connection: only the pool links it to A's exchange.
    Conn b;
    ASSERT_TRUE(b.connect(gw.port()));
    ASSERT_TRUE(b.send_all("GET /b HTTP/1.1\r\n" + kHost + "\r\n"));
    std::string err;
    auto rb = b.read_response(5s, false, &err);
    ASSERT_TRUE(rb) << "client B: " << err;
    EXPECT_EQ(rb->status, 200);
    EXPECT_EQ(rb->body, "answer-B") << "client B got another exchange's bytes";

    EXPECT_EQ(up.connections(), c.connections)
        << (c.connections == 2 ? "the upstream connection was reused" : "it was not reused");
    // B's request went upstream exactly once, as sent.
    EXPECT_EQ(up.request_count(), 2u);
    if (c.protocol_errors >= 0) {
        auto errors = upstream_errors(*admin, "protocol");
        EXPECT_EQ(errors - errors_before, c.protocol_errors);
    }
}

INSTANTIATE_TEST_SUITE_P(Desync, ResponseCorpus, ::testing::ValuesIn(response_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace dsgw::it
