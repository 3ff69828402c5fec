#pragma once
// A scripted upstream for the desync and hardening tests (issue 15): a raw
// socket server in the test process that records exactly the bytes each
// connection received and answers each request with bytes the test chose,
// malformed or not. The mock server cannot do that: it speaks correct HTTP.
//
// Requests are delimited the way a correct origin would (head, then a
// Content-Length or chunked body); each answer goes out with ONE send() call,
// so bytes a test appends past the end of a response arrive together with
// it, as a buggy server's would. Everything is bounded in time, and the
// destructor stops the serving thread.

#include "harness.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dsgw::it {

class RawUpstream {
public:
    // What to do once a request is complete.
    struct Reply {
        std::string bytes;           // written with one send() (the rest, if any, at once after)
        milliseconds then_after{0};  // delay before `then`
        std::string then;            // more bytes, later (empty: none)
        bool close = false;          // close the connection after all of it
        // Instead of the above: the test writes itself on the socket (e.g. a
        // flood). It must return within a few seconds; sends time out after 2 s.
        std::function<void(int fd)> custom;
    };
    // conn: index of the connection (0-based, in accept order); index: the
    // request's index among all requests this upstream received (0-based);
    // request: its bytes as received.
    using Script =
        std::function<Reply(std::size_t conn, std::size_t index, const std::string& request)>;

    explicit RawUpstream(Script script);
    ~RawUpstream();
    RawUpstream(const RawUpstream&) = delete;
    RawUpstream& operator=(const RawUpstream&) = delete;

    bool ok() const { return port_ != 0; }
    std::uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    std::size_t connections() const;
    // Every byte connection `conn` received, in order ("" if no such connection).
    std::string received(std::size_t conn) const;
    // All connections' bytes, concatenated in accept order.
    std::string received_all() const;
    // The complete requests connection `conn` received.
    std::vector<std::string> requests(std::size_t conn) const;
    std::size_t request_count() const;
    // True once the peer (the gateway) closed connection `conn`.
    bool peer_closed(std::size_t conn) const;

    bool wait_connections(std::size_t n, milliseconds timeout) const;
    bool wait_requests(std::size_t n, milliseconds timeout) const;
    bool wait_peer_closed(std::size_t conn, milliseconds timeout) const;

private:
    struct Connection {
        int fd = -1;
        std::string received;
        std::size_t parsed = 0;  // bytes of `received` that belong to complete requests
        std::vector<std::string> requests;
        bool peer_closed = false;
        // A delayed write pending.
        Clock::time_point then_at{};
        std::string then;
        bool close_after_then = false;
    };

    void serve();
    void on_readable(std::size_t index);
    void answer(std::size_t index, Reply reply);
    template <class Pred>
    bool wait(Pred pred, milliseconds timeout) const;

    Script script_;
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    std::thread thread_;
    mutable std::mutex mu_;
    std::vector<Connection> conns_;
    std::size_t request_count_ = 0;
};

// The length of the complete HTTP/1.1 request at the start of `data` (head,
// then a Content-Length or chunked body), or 0 while it is incomplete.
std::size_t complete_request_length(std::string_view data);

// ---- helpers shared by desync_test.cpp and hardening_test.cpp --------------

// A reply of `bytes`, in one send(), the connection kept open.
RawUpstream::Reply reply(std::string bytes);

// A gateway config in front of `upstream` alone: one worker (so that two
// clients share one upstream pool), no retries (one try = one connection).
GatewayConfig raw_config(const RawUpstream& upstream);
// The admin listener's port (GatewayConfig always has one on port 0).
std::optional<std::uint16_t> admin_port(Gateway& gw);
// Sum of deepseek_gateway_upstream_errors_total over every series with
// kind="<kind>", from the admin /metrics; -1 if it could not be read.
double upstream_errors(std::uint16_t admin, std::string_view kind);
// Every byte the peer sends until it closes (or `timeout`), raw (1xx and
// all). `closed` says whether the peer closed (EOF or reset).
struct RawRead {
    std::string data;
    bool closed = false;
    bool reset = false;
};
RawRead read_until_close(Conn& c, milliseconds timeout);
// What the gateway forwards upstream for a request from 127.0.0.1 over plain
// HTTP (forward.cpp): the start line, the fields it keeps in the order
// received (each "Name: value\r\n"), then `framing` ("Content-Length:
// N\r\n", "Transfer-Encoding: chunked\r\n" or ""), X-Forwarded-For,
// -Proto, -Host (when `forwarded_host` is not empty), Via, the blank line and
// the body.
std::string forwarded(std::string_view start_line, std::string_view fields,
                      std::string_view forwarded_host, std::string_view framing = "",
                      std::string_view body = "");
// True when `r` is the gateway's own JSON error for `status`
// ({"error":{"message":...,"type":"gateway_error","code":status}}).
bool is_gateway_error(const Response& r, int status, std::string* why = nullptr);
// The gateway's VmRSS in KiB (/proc/PID/status), or -1.
long vm_rss_kib(pid_t pid);

}  // namespace dsgw::it
