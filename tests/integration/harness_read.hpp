#pragma once
// The reading loops of the test clients, written once for the plain client
// (Conn) and the TLS client (TlsConn). `C` offers:
//   long recv_some(std::string& out, milliseconds timeout)  >0 bytes, 0 EOF, -1 error, -2 timeout
//   std::string& pending_bytes()   bytes read past the previous response
//   std::string recv_error() const the last -1's reason
//   bool recv_was_reset() const    the last -1 was a connection reset

#include "harness.hpp"

namespace dsgw::it::reading {

template <class C>
std::optional<Response> response(C& c, milliseconds timeout, bool head_request,
                                 std::string* error) {
    ResponseParser parser(head_request);
    auto deadline = Clock::now() + timeout;
    auto fail = [&](const std::string& why) -> std::optional<Response> {
        if (error) *error = why;
        return std::nullopt;
    };
    auto& buf = c.pending_bytes();
    if (!buf.empty()) {
        std::size_t used = parser.feed(buf);
        buf.erase(0, used);
    }
    while (!parser.done()) {
        if (parser.failed()) return fail(parser.error());
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (left <= 0ms) return fail("timed out reading response");
        std::string chunk;
        long n = c.recv_some(chunk, left);
        if (n == -2) return fail("timed out reading response");
        if (n == -1) return fail(c.recv_error());
        if (n == 0) {
            parser.feed_eof();
            if (!parser.done()) return fail(parser.error().empty() ? "closed" : parser.error());
            break;
        }
        std::size_t used = parser.feed(chunk);
        buf.append(chunk, used, std::string::npos);
    }
    return parser.response();
}

template <class C>
bool into(C& c, StreamReader& reader, milliseconds timeout, std::size_t until_events) {
    auto deadline = Clock::now() + timeout;
    auto enough = [&] {
        return reader.finished() || reader.result().events.size() >= until_events;
    };
    auto& buf = c.pending_bytes();
    if (!buf.empty()) {
        std::string pending = std::move(buf);
        buf.clear();
        reader.on_data(pending, Clock::now());
    }
    while (!enough()) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (left <= 0ms) {
            if (reader.result().error.empty()) reader.result().error = "timed out reading stream";
            return false;
        }
        std::string chunk;
        long n = c.recv_some(chunk, left);
        auto now = Clock::now();
        if (n == -2) continue;
        if (n == -1) {
            reader.result().error = c.recv_error();
            return false;
        }
        if (n == 0) {
            reader.on_eof(now);
            return reader.result().ok;
        }
        reader.on_data(chunk, now);
    }
    return reader.result().ok || reader.result().events.size() >= until_events;
}

template <class C>
StreamResult stream(C& c, Clock::time_point sent_at, milliseconds timeout) {
    StreamReader reader(sent_at);
    into(c, reader, timeout, static_cast<std::size_t>(-1));
    return reader.result();
}

template <class C>
Conn::CloseResult close_wait(C& c, milliseconds timeout) {
    Conn::CloseResult cr;
    auto& buf = c.pending_bytes();
    cr.data = std::move(buf);
    buf.clear();
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (left <= 0ms) {
            cr.timed_out = true;
            return cr;
        }
        long n = c.recv_some(cr.data, left);
        if (n == -2) {
            cr.timed_out = true;
            return cr;
        }
        if (n == 0) {
            cr.closed = true;
            return cr;
        }
        if (n == -1) {
            cr.closed = true;
            cr.reset = c.recv_was_reset();
            return cr;
        }
    }
}

}  // namespace dsgw::it::reading
