// The end of every exchange: the local reply, what a failure costs a server, keep-alive, the pool,
// metrics and the access log.

#include "proxy/outcome.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/proxy/local_reply.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"
#include "proxy/exchange.hpp"

#include <openssl/ssl.h>
#include <boost/beast/http/error.hpp>

#include <sys/socket.h>

namespace dsgw::proxy {

using net::Task;

Failure reply_to_bad_request(const boost::system::error_code& ec) {
    if (ec == http::error::header_limit)
        return {431, Side::client, true, "request header fields too large"};
    if (ec == http::error::body_limit) return {413, Side::client, true, "request body too large"};
    return {400, Side::client, true, "malformed request: " + ec.message()};
}

void Exchange::fail(Failure f) {
    if (!failure_) failure_ = std::move(f);
}

void Exchange::upstream_failed(const ServerFault& fault, Failure reply) {
    up_.book.fault(up_.lease.get(), fault);
    up_.abort();
    fail(std::move(reply));
}

Task<void> Exchange::refuse_head(boost::system::error_code ec) {
    fail(reply_to_bad_request(ec));
    co_await finish(false);
}

Task<void> Exchange::head_timed_out() {
    co_await reply({408, Side::client, true, "request head not received in time"});
}

// The one way the gateway answers by itself. Nothing goes out once a
// response has started (the client must not take a partial response as
// whole: the connection closes) or when the client is gone.
Task<void> Exchange::reply(const Failure& f) {
    if (f.status != 0) status_ = f.status;  // else the upstream's, or 499 later
    if (response_started_ || client_.gone) {
        keep_alive_ = false;
        co_return;
    }
    if (f.close) keep_alive_ = false;
    if (f.status == 0) co_return;
    // Closing before the request was read to its end (or with more of it
    // buffered): linger, so the client reads this answer.
    if (!keep_alive_ && request_unread()) client_.linger = true;
    reply_ = local_reply(f.status, f.message, !keep_alive_, f.extra_headers);
    out_.iov.clear();
    out_.iov.emplace_back(reply_.data(), reply_.size());
    const auto ec = co_await write_client();
    response_started_ = true;
    if (ec) keep_alive_ = false;
}

// Whether the upstream sent anything past the end of the response that just
// ended: bytes buffered (by us, or by OpenSSL on a TLS connection), or left
// in the kernel by the last plain read. Such a connection is never reused
// (the bytes would be taken for the next request's response, maybe another
// client's). `fin` is set when a FIN alone is waiting: the server is
// closing, which is no fault.
bool Exchange::bytes_after_response(bool& fin) {
    auto& conn = *up_.conn;
    fin = false;
    if (conn.buffer.size() > 0 || conn.inq > 1) return true;
    // Over TLS the kernel count is unknown (-1); what OpenSSL holds,
    // decrypted or not, is bytes after the response too.
    if (conn.stream->tls_pending()) return true;
    if (conn.inq != 1) return false;
    char c;  // TCP_INQ says 1 for one byte and for a FIN alone
    const auto r = ::recv(conn.socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    fin = r == 0;
    return r > 0;
}

// Every exchange ends here, once: the upstream connection goes back to the
// pool only when the exchange was clean and nothing followed the response;
// the server slot is given back; the local reply due, if any, goes out;
// then metrics and the access log.
Task<void> Exchange::finish(bool clean) {
    if (up_.conn) {
        bool fin = false;
        if (clean && res_ && bytes_after_response(fin)) {
            up_.book.bytes_after_response(up_.lease.get(), status_);
            clean = false;
        }
        if (clean && !fin && res_ && res_->keep_alive() && req_->is_done())
            client_.worker.pool().put(std::move(up_.conn), up_.upstream->config().keepalive);
        else
            up_.abort();
        up_.conn.reset();
    }
    up_.lease.release();
    if (failure_) co_await reply(*failure_);
    if (client_.gone && status_ == 0) status_ = 499;
    log();
}

void Exchange::log() {
    auto& worker = client_.worker;
    worker.note_request();
    const auto& rt = client_.rt;
    if (rt && rt->metrics && client_.lc && req_) {
        const auto i = client_.listener_index;
        rt->metrics->requests(i)->record(
            status_, std::chrono::duration<double>(Clock::now() - started_).count());
        rt->metrics->listener(i)->bytes(bytes_in_, bytes_out_);
    }
    auto& log = worker.access_log();
    if (!log.enabled() || !req_) return;
    const auto& h = req_->head();
    log::AccessRecord r;
    r.time = started_wall_;
    r.listener = client_.listener_name;
    r.client = client_.ip_text;
    r.method = h.method_string();
    r.path = h.target();
    r.status = status_;
    r.upstream = up_.upstream ? std::string_view(up_.upstream->name()) : std::string_view();
    r.server = server_name_;
    r.bytes_in = bytes_in_;
    r.bytes_out = bytes_out_;
    r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
    r.first_byte_ms = first_byte_ms_;
    r.client_cert = client_.cert;
    r.api_key = api_key_name_;
    log.write(r);
}

}  // namespace dsgw::proxy
