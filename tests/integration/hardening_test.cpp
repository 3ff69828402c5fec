// Regression tests for the defects of issue 15, each written against the
// intended behaviour (they fail before the fix):
//   1. bytes past the end of an upstream response never reach another request
//   2. Transfer-Encoding in an HTTP/1.0 request is refused
//   3. absolute-form targets are forwarded in origin form, Host from the target
//   4. invalid Host values are refused
//   5. interim (1xx) responses are forwarded, capped and in bounded memory
//   6. lingering close: a client that writes its whole body first still reads
//      the gateway's early answer
//   7. an upstream response with invalid framing gets a 502 with the JSON body

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "raw_upstream.hpp"

namespace dsgw::it {
namespace {

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const std::string kHost = "Host: gw.test\r\n";
const std::string kSmuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";

// Parses one response out of raw bytes (what read_until_close() returned).
std::optional<Response> parse_response(std::string_view data, bool head = false) {
    ResponseParser p(head);
    p.feed(data);
    if (!p.done()) p.feed_eof();
    if (!p.done()) return std::nullopt;
    return p.response();
}

std::size_t count(std::string_view hay, std::string_view needle) {
    std::size_t n = 0;
    for (auto pos = hay.find(needle); pos != std::string_view::npos;
         pos = hay.find(needle, pos + needle.size()))
        ++n;
    return n;
}

// Sends `raw` on a new connection, expects the gateway's own 400 and a
// close, and that the upstream received nothing.
void expect_refused(Gateway& gw, const RawUpstream& up, const std::string& raw) {
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all(raw));
    std::string err;
    auto r = c.read_response(5s, false, &err);
    ASSERT_TRUE(r) << err;
    std::string why;
    EXPECT_TRUE(is_gateway_error(*r, 400, &why)) << why;
    EXPECT_TRUE(c.wait_close(3s).closed) << "the connection stayed open";
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(up.received_all(), "") << "the upstream received bytes";
}

// The same, on a gateway and upstream of its own (what the upstream received
// is then this request's alone).
void expect_refused_by_a_fresh_gateway(const std::string& raw) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    expect_refused(gw, up, raw);
}

// Sends `raw` and expects a 200 "ok" and exactly `want` upstream (the
// upstream only ever receives this test's requests, in order).
void expect_forwarded(Gateway& gw, const RawUpstream& up, const std::string& raw,
                      const std::string& want) {
    const auto before = up.received_all().size();
    std::string err;
    auto r = request_once(gw.port(), raw, "", 5s, &err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200) << r->body;
    const auto deadline = Clock::now() + 3s;
    while (up.received_all().size() < before + want.size() && Clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(up.received_all().substr(before), want);
}

// ---------------------------------------------------------------- defect 1

// Bytes after the end of a response, in the same write: the client gets the
// response as framed, the connection is closed (a protocol error, counted),
// the next request opens a new connection, and another client on the
// one-worker gateway gets its own answer.
TEST(Hardening1, LeftoverBytesCloseTheUpstreamConnection) {
    struct Case {
        const char* name;
        std::string method;
        std::string reply;
        int status;
        std::string body;
    };
    const std::string chunked_ok =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    const std::vector<Case> cases = {
        {"past Content-Length", "GET", kOk + kSmuggled, 200, "ok"},
        {"after the last chunk", "GET", chunked_ok + kSmuggled, 200, "ok"},
        {"stray CRLF", "GET", kOk + "\r\n", 200, "ok"},
        {"body on 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n" + kSmuggled, 204, ""},
        {"body on 304", "GET", "HTTP/1.1 304 Not Modified\r\n\r\n" + kSmuggled, 304, ""},
        {"body on the answer to HEAD", "HEAD",
         "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kSmuggled.size()) + "\r\n\r\n" +
             kSmuggled,
         200, ""},
    };
    // Requests whose path starts with /odd get the case's reply; every
    // other request gets an answer naming its connection and path.
    std::atomic<std::size_t> current{0};
    std::atomic<std::size_t> odd_conn{0};
    RawUpstream up([&](std::size_t conn, std::size_t, const std::string& req) {
        if (req.find(" /odd") != std::string::npos) {
            odd_conn = conn;
            return reply(cases[current].reply);
        }
        const auto path =
            req.substr(req.find(' ') + 1, req.find(' ', req.find(' ') + 1) - req.find(' ') - 1);
        const std::string body = "conn " + std::to_string(conn) + " " + path;
        return reply("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + body);
    });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin);
    double errors = upstream_errors(*admin, "protocol");
    ASSERT_GE(errors, 0);

    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        SCOPED_TRACE(c.name);
        current = i;
        Conn a;
        ASSERT_TRUE(a.connect(gw.port()));
        ASSERT_TRUE(a.send_all(c.method + " /odd HTTP/1.1\r\n" + kHost + "\r\n"));
        std::string err;
        auto r = a.read_response(5s, c.method == "HEAD", &err);
        ASSERT_TRUE(r) << err;
        EXPECT_EQ(r->status, c.status);
        EXPECT_EQ(r->body, c.body);
        const std::size_t next_conn = up.connections();
        EXPECT_TRUE(up.wait_peer_closed(odd_conn, 2s))
            << "the gateway kept the upstream connection after leftover bytes";

        // The same client's next request: a new upstream connection.
        ASSERT_TRUE(a.send_all("GET /a2 HTTP/1.1\r\n" + kHost + "\r\n"));
        auto r2 = a.read_response(5s, false, &err);
        ASSERT_TRUE(r2) << err;
        EXPECT_EQ(r2->status, 200);
        EXPECT_EQ(r2->body, "conn " + std::to_string(next_conn) + " /a2");

        // Another client: its own answer, never the leftovers.
        std::string errb;
        auto rb = request_once(gw.port(), "GET /b HTTP/1.1\r\n" + kHost + "\r\n", "", 5s, &errb);
        ASSERT_TRUE(rb) << errb;
        EXPECT_EQ(rb->status, 200);
        EXPECT_NE(rb->body.find(" /b"), std::string::npos) << "client B got: " << rb->body;

        const double now = upstream_errors(*admin, "protocol");
        EXPECT_EQ(now - errors, 1) << "protocol errors not counted once";
        errors = now;
    }

    // Six broken responses from one server, one warning: the log is rate
    // limited per server (once a minute), the counter is not.
    int warnings = 0;
    for (const auto& line : gw.process().lines(Process::Stream::any))
        if (line.find("bytes after the end of a response") != std::string::npos) ++warnings;
    EXPECT_EQ(warnings, 1) << gw.logs();
}

// An idle pooled connection that receives bytes is evicted: the next request
// goes on a new connection and gets a correct answer.
TEST(Hardening1, BytesOnAnIdlePooledConnectionEvictIt) {
    RawUpstream up([](std::size_t conn, std::size_t index, const std::string&) {
        RawUpstream::Reply r;
        if (index == 0) {
            r.bytes = kOk;
            r.then_after = 100ms;
            r.then = kSmuggled;
        } else {
            const std::string body = "conn " + std::to_string(conn);
            r.bytes = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
        }
        return r;
    });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    auto r1 = request_once(gw.port(), "GET / HTTP/1.1\r\n" + kHost + "\r\n");
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->body, "ok");
    EXPECT_TRUE(up.wait_peer_closed(0, 3s)) << "the idle connection was not evicted";
    auto r2 = request_once(gw.port(), "GET / HTTP/1.1\r\n" + kHost + "\r\n");
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->status, 200);
    EXPECT_EQ(r2->body, "conn 1");
    EXPECT_EQ(up.connections(), 2u);
}

// ---------------------------------------------------------------- defect 2

TEST(Hardening2, TransferEncodingInHttp10IsRefused) {
    for (const std::string fields :
         {"Transfer-Encoding: chunked\r\n", "Transfer-Encoding: identity\r\n",
          "Transfer-Encoding: gzip, chunked\r\n",
          "Transfer-Encoding: chunked\r\nContent-Length: 15\r\n",
          "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n"}) {
        SCOPED_TRACE(fields);
        expect_refused_by_a_fresh_gateway("POST / HTTP/1.0\r\n" + kHost + fields +
                                          "\r\n5\r\nhello\r\n0\r\n\r\n");
    }
}

// ---------------------------------------------------------------- defect 3

TEST(Hardening3, AbsoluteFormIsForwardedInOriginFormWithHostFromTheTarget) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    // The target's authority replaces the Host value, in Host's place.
    expect_forwarded(
        gw, up,
        "GET http://example.test:8080/v1/models?x=1 HTTP/1.1\r\nX-A: 1\r\n"
        "Host: other.test\r\nX-B: 2\r\n\r\n",
        forwarded("GET /v1/models?x=1 HTTP/1.1", "X-A: 1\r\nHost: example.test:8080\r\nX-B: 2\r\n",
                  "example.test:8080"));
    expect_forwarded(gw, up, "GET http://example.test HTTP/1.1\r\nHost: other.test\r\n\r\n",
                     forwarded("GET / HTTP/1.1", "Host: example.test\r\n", "example.test"));
    expect_forwarded(gw, up, "GET HTTP://example.test/ HTTP/1.1\r\nHost: other.test\r\n\r\n",
                     forwarded("GET / HTTP/1.1", "Host: example.test\r\n", "example.test"));
    expect_forwarded(gw, up, "GET https://example.test/x HTTP/1.1\r\nHost: example.test\r\n\r\n",
                     forwarded("GET /x HTTP/1.1", "Host: example.test\r\n", "example.test"));
    expect_forwarded(gw, up, "OPTIONS * HTTP/1.1\r\n" + kHost + "\r\n",
                     forwarded("OPTIONS * HTTP/1.1", kHost, "gw.test"));
}

TEST(Hardening3, OtherTargetFormsAreRefused) {
    for (const std::string target :
         {"ftp://h/", "http://u@h/", "http:///x", "http://h:x/", "*", "example.test:443", "foo"}) {
        SCOPED_TRACE(target);
        expect_refused_by_a_fresh_gateway("GET " + target + " HTTP/1.1\r\n" + kHost + "\r\n");
    }
    // A space inside the authority breaks the request line itself.
    expect_refused_by_a_fresh_gateway("GET http://a b/ HTTP/1.1\r\n" + kHost + "\r\n");
}

// ---------------------------------------------------------------- defect 4

TEST(Hardening4, InvalidHostValuesAreRefused) {
    for (const std::string host : {"gw.test/x", "a b", "u@gw.test", "h?x", "h#x", "h\\x", "h:x",
                                   "h:8a", "[::1", "::1]", "[zz]", "[::1]x", "h\xc3\xa9.test"}) {
        SCOPED_TRACE(host);
        expect_refused_by_a_fresh_gateway("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    }
}

TEST(Hardening4, ValidHostValuesAreForwardedUnchanged) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    for (const std::string host : {"example.com", "example.com:8080", "127.0.0.1:80", "[::1]:8080",
                                   "xn--bcher-kva.example", "a_b.example", "h:", "a!$&'()*+,;=b"}) {
        SCOPED_TRACE(host);
        expect_forwarded(gw, up, "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n",
                         forwarded("GET / HTTP/1.1", "Host: " + host + "\r\n", host));
    }
    // An empty Host: the server's authority is sent instead.
    expect_forwarded(gw, up, "GET / HTTP/1.1\r\nHost: \r\n\r\n",
                     forwarded("GET / HTTP/1.1", "Host: " + up.address() + "\r\n", ""));
}

// ---------------------------------------------------------------- defect 5

const std::string k103 = "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n";

TEST(Hardening5, EarlyHintsReachAnHttp11ClientAndNotAnHttp10One) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) {
        return reply(
            "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\nConnection: x-hop\r\n"
            "X-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n" +
            kOk);
    });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();

    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all("GET / HTTP/1.1\r\n" + kHost + "Connection: close\r\n\r\n"));
    auto got = read_until_close(c, 5s);
    ASSERT_TRUE(got.closed);
    const auto end_103 = got.data.find("\r\n\r\n");
    ASSERT_EQ(got.data.rfind("HTTP/1.1 103 Early Hints\r\n", 0), 0u) << got.data;
    ASSERT_NE(end_103, std::string::npos);
    const std::string interim = got.data.substr(0, end_103 + 4);
    EXPECT_NE(interim.find("\r\nLink: </a>; rel=preload\r\n"), std::string::npos) << interim;
    EXPECT_EQ(interim.find("X-Hop"), std::string::npos) << interim;
    EXPECT_EQ(interim.find("Keep-Alive"), std::string::npos) << interim;
    EXPECT_EQ(interim.find("Connection"), std::string::npos) << interim;
    auto final_response = parse_response(std::string_view(got.data).substr(end_103 + 4));
    ASSERT_TRUE(final_response) << got.data;
    EXPECT_EQ(final_response->status, 200);
    EXPECT_EQ(final_response->body, "ok");

    Conn c10;
    ASSERT_TRUE(c10.connect(gw.port()));
    ASSERT_TRUE(c10.send_all("GET / HTTP/1.0\r\n" + kHost + "\r\n"));
    auto got10 = read_until_close(c10, 5s);
    ASSERT_TRUE(got10.closed);
    EXPECT_EQ(got10.data.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got10.data;
    EXPECT_EQ(got10.data.find("103"), std::string::npos) << got10.data;
}

TEST(Hardening5, SeveralInterimResponsesAreAllForwarded) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) {
        return reply("HTTP/1.1 100 Continue\r\n\r\n" + k103 + k103 + kOk);
    });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all("GET / HTTP/1.1\r\n" + kHost + "Connection: close\r\n\r\n"));
    auto got = read_until_close(c, 5s);
    ASSERT_TRUE(got.closed);
    EXPECT_EQ(count(got.data, "HTTP/1.1 100 Continue\r\n"), 1u) << got.data;
    EXPECT_EQ(count(got.data, "HTTP/1.1 103 Early Hints\r\n"), 2u) << got.data;
    EXPECT_EQ(got.data.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103", 0), 0u) << got.data;
    const auto last = got.data.rfind("HTTP/1.1 200 OK\r\n");
    ASSERT_NE(last, std::string::npos) << got.data;
    auto final_response = parse_response(std::string_view(got.data).substr(last));
    ASSERT_TRUE(final_response);
    EXPECT_EQ(final_response->body, "ok");
}

TEST(Hardening5, AFloodOfInterimResponsesIsCutAt16) {
    std::string flood;
    for (int i = 0; i < 200; ++i) flood += k103;
    RawUpstream up(
        [&](std::size_t, std::size_t, const std::string&) { return reply(flood + kOk); });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    auto admin = admin_port(gw);
    ASSERT_TRUE(admin);
    const double before = upstream_errors(*admin, "protocol");
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all("GET / HTTP/1.1\r\n" + kHost + "\r\n"));
    auto got = read_until_close(c, 5s);
    EXPECT_TRUE(got.closed) << "the gateway neither cut the flood nor closed";
    EXPECT_LE(count(got.data, "HTTP/1.1 103"), 16u);
    // Exactly 16 pass, then the gateway's own final answer (interim
    // responses do not end an exchange: a 502 after them is valid HTTP).
    EXPECT_EQ(count(got.data, "HTTP/1.1 103"), 16u);
    const auto final_at = got.data.find("HTTP/1.1 502");
    ASSERT_NE(final_at, std::string::npos) << got.data.substr(0, 400);
    auto r = parse_response(got.data.substr(final_at));
    ASSERT_TRUE(r);
    std::string why;
    EXPECT_TRUE(is_gateway_error(*r, 502, &why)) << why;
    EXPECT_EQ(got.data.find("HTTP/1.1 200"), std::string::npos)
        << "a final response after the flood";
    EXPECT_EQ(upstream_errors(*admin, "protocol") - before, 1);
    EXPECT_TRUE(up.wait_peer_closed(0, 3s));
}

TEST(Hardening5, SwitchingProtocolsIs502AndClosesTheUpstreamConnection) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) {
        return reply(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
    });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    std::string err;
    auto r = request_once(gw.port(), "GET / HTTP/1.1\r\n" + kHost + "\r\n", "", 5s, &err);
    ASSERT_TRUE(r) << err;
    std::string why;
    EXPECT_TRUE(is_gateway_error(*r, 502, &why)) << why;
    EXPECT_TRUE(up.wait_peer_closed(0, 3s));
}

// 4 MiB of "100 Continue" must not grow the gateway (it grew ~39 MiB). The
// memory of an exchange is released when it ends, so the peak is what
// counts: VmRSS is sampled while the flood is written and a little after.
TEST(Hardening5, AFloodOf100ContinueKeepsMemoryBounded) {
    std::atomic<bool> flood_done{false};
    std::atomic<std::size_t> flood_sent{0};
    RawUpstream up([&](std::size_t, std::size_t index, const std::string&) {
        RawUpstream::Reply r;
        if (index == 0) {
            r.bytes = kOk;  // warm-up
            return r;
        }
        r.custom = [&](int fd) {
            std::string block;
            while (block.size() < 64 * 1024) block += "HTTP/1.1 100 Continue\r\n\r\n";
            std::size_t sent = 0;
            const auto deadline = Clock::now() + 10s;
            while (sent < 4u * 1024 * 1024 && Clock::now() < deadline) {
                auto n = ::send(fd, block.data(), block.size(), MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (n <= 0) break;  // the gateway closed: that is the point
                sent += static_cast<std::size_t>(n);
            }
            flood_sent = sent;
            flood_done = true;
        };
        return r;
    });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    auto warm = request_once(gw.port(), "GET / HTTP/1.1\r\n" + kHost + "\r\n");
    ASSERT_TRUE(warm);
    const long before = vm_rss_kib(gw.process().pid());
    ASSERT_GT(before, 0);
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all("GET / HTTP/1.1\r\n" + kHost + "\r\n"));
    long peak = before;
    const auto deadline = Clock::now() + 15s;
    while (!flood_done && Clock::now() < deadline) {
        peak = std::max(peak, vm_rss_kib(gw.process().pid()));
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(flood_done);
    for (int i = 0; i < 30; ++i) {  // the gateway may still be parsing what it read
        peak = std::max(peak, vm_rss_kib(gw.process().pid()));
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_LT(peak - before, 4 * 1024) << "VmRSS " << before << " KiB -> peak " << peak
                                       << " KiB; flood sent " << flood_sent << " bytes";
    // What the client got meanwhile: at most 16 interim responses.
    std::string got;
    while (c.recv_some(got, 100ms) > 0) {
    }
    EXPECT_LE(count(got, "HTTP/1.1 100 Continue"), 16u);
}

// The gateway answered Expect: 100-continue itself: the upstream's 100 is not
// passed on a second time, a 103 still is.
TEST(Hardening5, An100AfterOurOwnIsNotForwardedTwice) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) {
        return reply("HTTP/1.1 100 Continue\r\n\r\n" + k103 + kOk);
    });
    ASSERT_TRUE(up.ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(
        c.send_all("POST / HTTP/1.1\r\n" + kHost +
                   "Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"));
    std::string first;
    const auto deadline = Clock::now() + 3s;
    while (first.find("\r\n\r\n") == std::string::npos && Clock::now() < deadline)
        c.recv_some(first, 100ms);
    ASSERT_EQ(first, "HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_TRUE(c.send_all("hello"));
    auto got = read_until_close(c, 5s);
    const std::string all = first + got.data;
    EXPECT_EQ(count(all, "HTTP/1.1 100 Continue"), 1u) << all;
    EXPECT_EQ(count(all, "HTTP/1.1 103 Early Hints"), 1u) << all;
    EXPECT_NE(all.find("HTTP/1.1 200 OK"), std::string::npos) << all;
}

// ---------------------------------------------------------------- defect 6

// Writes `head` and a `body_size` body with blocking sends (Python's
// http.client does), then reads everything until the gateway closes.
RawRead send_whole_body_then_read(std::uint16_t port, const std::string& head,
                                  std::size_t body_size, bool* send_ok) {
    Conn c;
    if (!c.connect(port)) return {};
    timeval tv{10, 0};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const std::string body(body_size, 'x');
    bool ok = false;
    std::thread writer([&] { ok = c.send_all(head) && c.send_all(body); });
    writer.join();
    if (send_ok) *send_ok = ok;
    return read_until_close(c, 10s);
}

// A 2 MiB body written whole before the client reads (as Python's
// http.client does): the answer `status` arrives complete, then the close,
// no reset, and nothing reached the upstream.
void expect_whole_answer_after_whole_body(const Gateway& gw, const RawUpstream& up, int status) {
    bool sent = false;
    auto got = send_whole_body_then_read(
        gw.port(),
        "POST /v1/chat/completions HTTP/1.1\r\n" + kHost + "Content-Length: 2097152\r\n\r\n",
        2 * 1024 * 1024, &sent);
    EXPECT_TRUE(sent) << "the gateway cut the body off";
    EXPECT_TRUE(got.closed);
    EXPECT_FALSE(got.reset) << "connection reset instead of the " << status;
    auto r = parse_response(got.data);
    ASSERT_TRUE(r) << "no complete response: " << got.data.size() << " bytes";
    std::string why;
    EXPECT_TRUE(is_gateway_error(*r, status, &why)) << why;
    EXPECT_EQ(up.received_all(), "");
}

TEST(Hardening6, A413AfterTheWholeBodyIsReadNotReset) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    GatewayConfig cfg = raw_config(up);
    cfg.max_request_body = "1MiB";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    expect_whole_answer_after_whole_body(gw, up, 413);
}

TEST(Hardening6, A401AfterTheWholeBodyIsReadNotReset) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    TempDir dir;
    const std::string key_in = dir.write("key.txt", "sk-test-secret\n");
    auto hashed = run_command("/bin/sh", {"-c", gateway_bin() + " hash-key < " + key_in});
    ASSERT_EQ(hashed.exit_code, 0) << hashed.err_text();
    std::string file;
    for (const auto& l : hashed.out) file += l + "\n";
    const std::string keys = dir.write("keys.yaml", file);
    std::string yaml = raw_config(up).yaml();
    const std::string at = "    upstream: pool\n";
    ASSERT_NE(yaml.find(at), std::string::npos);
    yaml.insert(yaml.find(at), "    auth: {api_keys_file: " + keys + "}\n");
    Gateway gw;
    ASSERT_TRUE(gw.start(yaml)) << gw.logs();
    expect_whole_answer_after_whole_body(gw, up, 401);
}

// A client that never stops sending after a 413 is cut off (the gateway
// lingers 5 s at most), and other clients are served meanwhile.
TEST(Hardening6, AnEndlessSenderIsCutOffAndOthersAreServed) {
    RawUpstream up([](std::size_t, std::size_t, const std::string&) { return reply(kOk); });
    ASSERT_TRUE(up.ok());
    GatewayConfig cfg = raw_config(up);
    cfg.max_request_body = "1MiB";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    timeval tv{1, 0};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ASSERT_TRUE(c.send_all("POST / HTTP/1.1\r\n" + kHost + "Content-Length: 1000000000\r\n\r\n"));
    const auto start = Clock::now();
    std::atomic<bool> cut{false};
    std::atomic<double> cut_after_ms{-1};
    std::thread sender([&] {
        const std::string block(64 * 1024, 'x');
        const int fd = c.fd();
        while (Clock::now() - start < 20s) {
            auto n = ::send(fd, block.data(), block.size(), MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            if (n < 0) {
                cut = true;
                cut_after_ms = ms_between(start, Clock::now());
                return;
            }
        }
    });
    // Others are served while it sends.
    for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(300ms);
        std::string err;
        auto r = request_once(gw.port(), "GET / HTTP/1.1\r\n" + kHost + "\r\n", "", 2s, &err);
        ASSERT_TRUE(r) << err;
        EXPECT_EQ(r->status, 200);
    }
    sender.join();
    EXPECT_TRUE(cut) << "still accepting bytes after 20 s";
    EXPECT_LT(cut_after_ms.load(), 10000.0);
}

// ---------------------------------------------------------------- defect 7

TEST(Hardening7, InvalidFramingBeforeAnyByteIs502WithTheJsonBody) {
    for (const std::string& bad :
         {std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
          std::string("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nok")}) {
        SCOPED_TRACE(bad);
        RawUpstream up([&](std::size_t, std::size_t, const std::string&) { return reply(bad); });
        ASSERT_TRUE(up.ok());
        Gateway gw;
        ASSERT_TRUE(gw.start(raw_config(up))) << gw.logs();
        auto admin = admin_port(gw);
        ASSERT_TRUE(admin);
        const double before = upstream_errors(*admin, "protocol");
        std::string err;
        auto r = request_once(gw.port(), "GET / HTTP/1.1\r\n" + kHost + "\r\n", "", 5s, &err);
        ASSERT_TRUE(r) << "no response: " << err;
        std::string why;
        EXPECT_TRUE(is_gateway_error(*r, 502, &why)) << why;
        EXPECT_EQ(upstream_errors(*admin, "protocol") - before, 1);
    }
}

}  // namespace
}  // namespace dsgw::it
