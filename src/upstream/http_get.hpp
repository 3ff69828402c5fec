#pragma once
// One GET to one upstream server, for the side clients of src/upstream that
// read a small document from each server (ModelLister: GET /v1/models;
// LoadScraper: its Prometheus endpoint): connect, TLS when the upstream uses
// it, the request, a response with a capped body, all within one deadline,
// on a fresh connection closed afterwards. Private to src/upstream.

#include "deepseek_gateway/upstream/upstream.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace dsgw::upstream {

struct HttpGet {
    std::string_view target;      // "/v1/models"
    std::string_view accept;      // the Accept header
    std::string_view user_agent;  // the User-Agent header
    Clock::duration timeout;      // the whole exchange, from connect to the last body byte
    std::uint64_t max_body;       // a longer body is a failure
};

// Returns "" with the body of a 200 in `body`, else why not ("connect
// failed: ...", "status 503", "no answer within 300 ms", ...). `get`'s
// strings must outlive the call.
// The host of a configured "host:port" ("[::1]:8000" gives "::1"): the TLS
// server name of the side clients' connections.
std::string host_of(const std::string& host_port);

boost::asio::awaitable<std::string> http_get(const Upstream& up, const UpstreamServer& server,
                                             const HttpGet& get, std::string& body);

}  // namespace dsgw::upstream
