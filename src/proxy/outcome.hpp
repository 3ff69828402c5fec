#pragma once
// How an exchange failed: one type for every failure (which side, the local
// reply it is due, whether another server may take the request, what it is
// counted as), so that the end of every exchange is one path
// (Exchange::finish(), outcome.cpp).

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace dsgw::metrics {
enum class UpstreamErrorKind : std::uint8_t;
}

namespace dsgw::proxy {

enum class Side : std::uint8_t {
    client,    // the request was refused or its client failed (4xx, or gone)
    upstream,  // the server failed (502, 504), or none could take it (503)
};

// A local reply due to the client: nothing when `status` is 0. Sent only
// while no byte of a response went out and the client is still there.
struct Failure {
    unsigned status = 0;
    Side side = Side::client;
    bool close = true;  // Connection: close after the reply
    std::string message = {};
    std::string extra_headers = {};  // whole lines, CRLF-terminated
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

}  // namespace dsgw::proxy
