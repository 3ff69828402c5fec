#pragma once
// How an exchange ended: what the client is owed (Failure), what a server is
// charged with (ServerFault), what the exchange did
// (Outcome: status, bytes, timings, keep-alive), and the steps of the one
// path every exchange ends by (Exchange::finish()): the local reply, then
// metrics and the access log.

#include "deepseek_gateway/net/socket.hpp"
#include "proxy/deadline.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsgw::metrics {
enum class UpstreamErrorKind : std::uint8_t;
}

namespace dsgw::proxy {

inline constexpr int kUnrouted = -3;

// What the client is owed when an exchange fails: a local reply, or nothing
// when `status` is 0 (the client left, or a response already started). Who
// failed shows in the status (4xx: the request or its client; 502, 503,
// 504: the servers); what a server is charged with is a ServerFault.
struct Failure {
    unsigned status = 0;
    bool close = true;  // Connection: close after the reply
    std::string message = {};
    std::string extra_headers = {};  // whole lines, CRLF-terminated
    // The JSON body as it is, instead of the gateway's error shape with
    // `message` (OpenAI's own errors; the answer to GET /v1/models).
    std::string body = {};
};

// What one failure on a server costs it: a count in
// upstream_errors_total{kind}, a step towards passive ejection (`eject`),
// and a log line (`what`, `ec`). `retryable`: the request cannot have
// reached the server, so another may take it.
struct ServerFault {
    metrics::UpstreamErrorKind kind;
    const char* what;
    boost::system::error_code ec = {};
    bool eject = false;
    bool retryable = false;
    bool quiet = false;  // debug, not warn (per-attempt connect failures)
};

// The reply to a request the parser refused: 431, 413 or 400.
Failure reply_to_bad_request(const boost::system::error_code& ec);

// What one exchange did, for the client (keep-alive), the metrics and the
// access log. Reset by begin() for each request.
struct Outcome {
    std::optional<Failure> failure;  // the first failure stands
    unsigned status = 0;             // the status the client got (499: it left first)
    bool keep_alive = true;          // the connection may serve another request
    bool response_started = false;   // a byte of a response went out
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    double first_byte_ms = -1;
    std::string_view upstream;
    std::string_view server;
    std::string_view api_key;
    // The route taken (SPEC §8): an index in the listener's routes,
    // metrics::ConfigMetrics::kDefaultRoute or kNoRoute, or kUnrouted before
    // routing (then "default" without routes, "none" with them).
    int route = kUnrouted;
    std::string_view model;  // the body's "model", when it was read
    Clock::time_point started;
    std::chrono::system_clock::time_point started_wall;

    void begin() { *this = Outcome{}; }
    void fail(Failure f) {
        if (!failure) failure = std::move(f);
    }
};

class ClientSide;
struct WriteList;
class Head;

// The one way the gateway answers by itself (its bytes: local_reply.hpp).
// Nothing goes out once a response has started (the connection closes: the
// client must not take a partial response as whole) or when the client is
// gone. `request_unread`: the request was not read to its end, so closing
// now lingers. `bytes` holds the reply while it is written.
net::Task<void> send_reply(ClientSide& client, Outcome& outcome, const Failure& f,
                           bool request_unread, WriteList& out, std::string& bytes);

// The request's metrics and access-log line. `request`: its head, null when
// none was parsed.
void record(const Outcome& outcome, const ClientSide& client, const Head* request);

}  // namespace dsgw::proxy
