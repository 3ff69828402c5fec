// How exchanges end: the failure replies, the local reply's write, the metrics and the access log.

#include "proxy/outcome.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/proxy/head.hpp"
#include "deepseek_gateway/proxy/local_reply.hpp"
#include "proxy/client_side.hpp"
#include "proxy/relay.hpp"

#include <boost/beast/http/error.hpp>

namespace dsgw::proxy {

namespace {
using metrics::ConfigMetrics;
const std::vector<config::RouteConfig> kNoRoutes;
}  // namespace

Failure reply_to_bad_request(const boost::system::error_code& ec) {
    namespace http = boost::beast::http;
    if (ec == http::error::header_limit) return {431, true, "request header fields too large"};
    if (ec == http::error::body_limit) return {413, true, "request body too large"};
    return {400, true, "malformed request: " + ec.message()};
}

net::Task<void> send_reply(ClientSide& client, Outcome& o, const Failure& f, bool request_unread,
                           WriteList& out, std::string& bytes) {
    if (f.status != 0) o.status = f.status;  // else the upstream's, or 499 later
    if (o.response_started || client.gone) {
        o.keep_alive = false;
        co_return;
    }
    if (f.close) o.keep_alive = false;
    if (f.status == 0) co_return;
    // Closing before the request was read to its end (or with more of it
    // buffered): linger, so the client reads this answer.
    if (!o.keep_alive && request_unread) client.linger = true;
    bytes = f.body.empty() ? local_reply(f.status, f.message, !o.keep_alive, f.extra_headers)
                           : local_response(f.status, f.body, !o.keep_alive, f.extra_headers);
    out.iov.clear();
    out.iov.emplace_back(bytes.data(), bytes.size());
    const auto ec = co_await write_to_client(client, out.iov, o.bytes_out);
    o.response_started = true;
    if (ec) o.keep_alive = false;
}

void record(const Outcome& o, const ClientSide& client, const Head* request) {
    auto& worker = client.worker;
    worker.note_request();
    const auto& rt = client.rt;
    const auto& routes = client.lc ? client.lc->routes : kNoRoutes;
    int route = o.route;
    if (route == kUnrouted)
        route = routes.empty() ? ConfigMetrics::kDefaultRoute : ConfigMetrics::kNoRoute;
    if (rt && rt->metrics && client.lc && request) {
        const auto i = client.listener_index;
        const auto* m = rt->metrics->requests(i, ConfigMetrics::route_slot(routes.size(), route));
        if (m) m->record(o.status, std::chrono::duration<double>(Clock::now() - o.started).count());
        rt->metrics->listener(i)->bytes(o.bytes_in, o.bytes_out);
    }
    auto& log = worker.access_log();
    if (!log.enabled() || !request) return;
    log::AccessRecord r;
    r.time = o.started_wall;
    r.listener = client.listener_name;
    r.client = client.ip_text;
    r.method = request->method_string();
    r.path = request->target();
    r.status = o.status;
    r.upstream = o.upstream;
    r.server = o.server;
    r.bytes_in = o.bytes_in;
    r.bytes_out = o.bytes_out;
    r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - o.started).count();
    r.first_byte_ms = o.first_byte_ms;
    r.client_cert = client.cert;
    r.api_key = o.api_key;
    r.model = o.model;
    if (route >= 0)
        r.route = routes[static_cast<std::size_t>(route)].name;
    else
        r.route = route == ConfigMetrics::kDefaultRoute ? "default" : "none";
    log.write(r);
}

}  // namespace dsgw::proxy
