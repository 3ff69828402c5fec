// The exchange's phases inspect, route, forward and relay, and the one finish (admit is in
// admit.cpp).

#include "proxy/exchange.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"

#include <boost/beast/core/string.hpp>

namespace dsgw::proxy {

namespace {

namespace beast = boost::beast;
using error_code = boost::system::error_code;
using net::Task;

constexpr std::uint32_t kUpstreamHeaderLimit = 64 * 1024;
// The arena's first block: a typical request and response head fit in it.
constexpr std::size_t kArenaChunk = 2048;
// Interim (1xx) responses passed on per exchange; one more is a 502.
constexpr unsigned kMaxInterim = 16;

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

Exchange::Exchange(ClientSide& client, std::pmr::memory_resource& blocks)
    : client_(client), arena_(kArenaChunk, &blocks), interim_arena_(kArenaChunk, &blocks) {}

RelayParser<true>& Exchange::begin() {
    outcome_.begin();
    sent_continue_ = false;
    up_.upstream = nullptr;
    up_.server_name = {};
    release();
    interim_count_ = 0;
    const auto& limits = client_.rt->config->limits;
    req_.emplace(&arena_);
    req_->header_limit(
        static_cast<std::uint32_t>(std::min<std::uint64_t>(limits.max_header_bytes, UINT32_MAX)));
    req_->body_limit(limits.max_request_body);
    req_->eager(false);
    return *req_;
}

void Exchange::head_read() {
    outcome_.started = Clock::now();
    outcome_.started_wall = std::chrono::system_clock::now();
}

void Exchange::release() {
    res_.reset();
    req_.reset();
    arena_.release();
    if (interim_count_ > 0) interim_arena_.release();
}

bool Exchange::request_unread() const {
    return !req_ || !req_->is_done() || client_.buf.size() > pending_consume_;
}

void Exchange::on_client_gone() {
    outcome_.keep_alive = false;
    if (up_.queued) up_.queued->timer.cancel();
    up_.close();  // the inference server stops now
}

void Exchange::cancel_upstream() {
    if (!up_.conn) return;
    error_code ec;
    up_.conn->socket.cancel(ec);
}

Task<void> Exchange::run() {
    // admit
    bool admitted = admit_shape();
    // Most listeners have neither: no coroutine frame for nothing.
    if (admitted && (!client_.lc->access.trusted_proxies.empty() || client_.lc->auth.enabled())) {
        const bool ok = co_await admit_client();
        admitted = ok;
    }
    bool clean = false;
    if (admitted) {
        inspect();
        const auto ctx = route();
        const bool forwarded = co_await forward(ctx);
        if (forwarded) {
            const bool relayed = co_await relay();
            clean = relayed;
        }
    }
    // finish, written out: most exchanges need no coroutine frame for it
    settle(clean);
    if (outcome_.failure) co_await reply(*outcome_.failure);
    record_end();
}

// ---- route ------------------------------------------------------------------

// The listener's upstream, and what its balancer picks a server by. Model
// routing (SPEC §8) chooses among upstreams here.
balancer::PickContext Exchange::route() {
    const auto& rt = *client_.rt;
    const auto i = client_.lc->upstream_index;
    up_.upstream = &rt.upstream(i);
    up_.book = ServerBook(up_.upstream, rt.metrics.get(), i);
    return balancer::PickContext{client_.ip, nullptr, Clock::now()};
}

// ---- forward ----------------------------------------------------------------

// "Expect: 100-continue" on an HTTP/1.1 request with a body to come: our own
// 100 Continue, so the client sends it. False when the client is gone.
Task<bool> Exchange::send_continue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    out_.iov.clear();
    out_.iov.emplace_back(kContinue.data(), kContinue.size());
    std::uint64_t not_counted = 0;  // as an interim response, not in bytes_out
    const auto ec = co_await write_to_client(client_, out_.iov, not_counted);
    if (ec) co_return false;
    sent_continue_ = true;
    co_return true;
}

// The rewritten head and the body bytes at hand go to a server in one write;
// then the rest of the body, piece by piece. False when the exchange failed.
// The request framing (chunked if the client sent chunked, Content-Length if
// it sent one, else none). True when the client waits for a 100 Continue.
bool Exchange::frame_request() {
    outcome_.keep_alive = req_->keep_alive();
    if (req_->chunked())
        req_framing_ = Framing::chunked;
    else if (req_->content_length())
        req_framing_ = Framing::content_length;
    else
        req_framing_ = Framing::none;
    const auto& head = req_->head();
    return !req_->is_done() && head.version() >= 11 &&
           beast::iequals(head[Known::expect], "100-continue");
}

// The rewritten head, and the body bytes that came with it, framed in out_
// for one write. False when those bytes are refused.
bool Exchange::build_request() {
    const auto& head = req_->head();
    head_out_.clear();
    ForwardContext fctx{client_.ip_text, client_.stream.tls() ? "https" : "http",
                        head[Known::host]};
    fctx.forwarded_for = forwarded_for_;
    fctx.strip_authorization = client_.lc->auth.enabled() && !client_.lc->auth.forward;
    if (target_.form == TargetForm::absolute) {
        fctx.origin_form = target_.path;
        fctx.authority = target_.authority;
    }
    const auto& servers = up_.upstream->servers();
    std::string default_host = servers.empty() ? std::string() : servers[0]->authority();
    fctx.default_host = default_host;
    build_upstream_request_head(head, fctx, req_framing_, req_->content_length().value_or(0),
                                head_out_);

    req_->eager(true);
    req_->clear_pieces();
    error_code ec;
    pending_consume_ = parse_buffered(*req_, client_.buf, ec);
    if (ec) {
        fail(reply_to_bad_request(ec));  // a framing error in the body at hand
        return false;
    }
    out_.iov.clear();
    out_.iov.emplace_back(head_out_.data(), head_out_.size());
    out_.add_body(req_framing_, req_->is_done(), req_->pieces(), req_->piece_bytes());
    return true;
}

// The body bytes that went with the head (or that a failure answers) are
// consumed.
void Exchange::request_sent() {
    client_.buf.consume(pending_consume_);
    outcome_.bytes_in += pending_consume_;
    pending_consume_ = 0;
    outcome_.server = up_.server_name;
}

// connect_and_send(), when send_at_once() could not do it all.
Task<bool> Exchange::send_slowly(const balancer::PickContext& ctx, SendStart sending) {
    auto failure = co_await connect_and_send(up_, client_, ctx, out_.iov, req_->is_done(), sending);
    if (!failure) co_return true;
    fail(std::move(*failure));
    co_return false;
}

// The rest of the request body, piece by piece.
Task<bool> Exchange::send_body() {
    const auto& limits = client_.rt->config->limits;
    BodySource from{client_.stream, client_.buf,         client_.read_size,
                    nullptr,        Phase::request_body, limits.client_idle};
    BodySink to{*up_.conn->stream, Phase::upstream_write, up_.upstream->config().timeouts.idle};
    RelayEnd end;
    RelayStart start;
    if (!relay_at_once(*req_, from, to, req_framing_, {}, out_, end, start))
        end =
            co_await relay_body(*req_, from, to, req_framing_, client_.deadline, out_, end, start);
    outcome_.bytes_in += end.consumed;
    if (end.step == RelayEnd::Step::done) co_return true;
    outcome_.keep_alive = outcome_.keep_alive && req_->is_done();
    up_.abort();
    if (end.step == RelayEnd::Step::read) {
        if (end.timeout)
            fail({408, true, "request body not received in time"});
        else
            fail({});
    } else if (end.step == RelayEnd::Step::parse) {
        fail(reply_to_bad_request(end.ec));
    } else if (!client_.gone) {
        fail({502, true, "upstream failed while the request was sent"});
    }
    co_return false;
}

// The rewritten head and the body bytes at hand go to a server in one write;
// then the rest of the body. False when the exchange failed. The usual
// request costs no coroutine beyond this one: see send_at_once().
Task<bool> Exchange::forward(const balancer::PickContext& ctx) {
    if (frame_request()) {
        const bool sent = co_await send_continue();
        if (!sent) {
            client_.on_gone();
            co_return false;
        }
    }
    if (!build_request()) co_return false;
    SendStart sending;
    bool sent = send_at_once(up_, client_, ctx, out_.iov, sending);
    if (!sent) {
        const bool ok = co_await send_slowly(ctx, sending);
        sent = ok;
    }
    request_sent();
    if (!sent) co_return false;
    req_->clear_pieces();
    if (req_->is_done()) co_return true;
    const bool body = co_await send_body();
    co_return body;
}

// ---- relay ------------------------------------------------------------------

void Exchange::new_response_parser(std::pmr::memory_resource* mr) {
    res_.emplace(mr);
    res_->header_limit(kUpstreamHeaderLimit);
    res_->body_limit(std::nullopt);
    res_->eager(false);
    if (req_->head().method() == http::verb::head) res_->skip(true);
}

// Reads the upstream's response head, passing interim responses on. False
// when the exchange failed.
Task<bool> Exchange::read_response_head() {
    const auto& ucfg = up_.upstream->config();
    auto& conn = *up_.conn;
    const auto sent = Clock::now();
    new_response_parser(&arena_);
    client_.deadline.arm(Phase::first_byte, ucfg.timeouts.first_byte);
    bool any_byte = conn.buffer.size() > 0;
    for (;;) {
        error_code ec;
        auto used = parse_buffered(*res_, conn.buffer, ec);
        conn.buffer.consume(used);
        if (ec) {
            client_.deadline.disarm();
            upstream_failed({metrics::UpstreamErrorKind::protocol, "bad response", ec},
                            {502, !req_->is_done(), "upstream sent an invalid response"});
            co_return false;
        }
        if (res_->is_header_done()) {
            auto code = res_->head().result_int();
            if (code >= 100 && code < 200 && code != 101) {
                const bool go_on = co_await forward_interim();
                if (!go_on) co_return false;
                client_.deadline.arm(Phase::first_byte, ucfg.timeouts.first_byte);
                continue;
            }
            break;
        }
        auto [rec, n] = co_await conn.stream->read_some(conn.buffer, conn.read_size, &conn.inq);
        if (rec) {
            const bool timeout = client_.deadline.timed_out(Phase::first_byte) ||
                                 client_.deadline.timed_out(Phase::response_body);
            client_.deadline.disarm();
            if (client_.gone) {
                fail({});
                co_return false;
            }
            if (timeout)
                upstream_failed(
                    {metrics::UpstreamErrorKind::timeout, "no response in time", rec, true},
                    {504, false, "upstream timed out before responding"});
            else
                upstream_failed({metrics::UpstreamErrorKind::reset,
                                 any_byte ? "response cut" : "closed before responding", rec, true},
                                {502, false, "upstream closed the connection before responding"});
            co_return false;
        }
        if (!any_byte) {
            any_byte = true;
            outcome_.first_byte_ms = ms_between(sent, Clock::now());
            client_.deadline.arm(Phase::response_body, ucfg.timeouts.idle);
        }
        conn.buffer.commit(n);
        adapt_read_size(n, conn.read_size);
    }
    client_.deadline.disarm();
    if (res_->head().result_int() == 101) {
        upstream_failed(
            {metrics::UpstreamErrorKind::protocol, "101 Switching Protocols (not supported)"},
            {502, true, "upstream tried to switch protocols"});
        co_return false;
    }
    co_return true;
}

// An interim (1xx) response is passed on to an HTTP/1.1 client (RFC 9110
// §15.2; an HTTP/1.0 client gets none), except a 100 Continue when the
// gateway sent its own. Its head is then dropped and the next one parsed in
// memory of its own, released each time, so a flood of them cannot grow the
// process; past kMaxInterim the exchange fails with a 502.
Task<bool> Exchange::forward_interim() {
    if (++interim_count_ > kMaxInterim) {
        upstream_failed({metrics::UpstreamErrorKind::protocol, "too many interim responses"},
                        {502, true, "upstream sent too many interim responses"});
        co_return false;
    }
    const auto code = res_->head().result_int();
    if (req_->head().version() >= 11 && !(code == 100 && sent_continue_)) {
        head_out_.clear();
        build_interim_response_head(res_->head(), head_out_);
        out_.iov.clear();
        out_.iov.emplace_back(head_out_.data(), head_out_.size());
        const auto ec = co_await write_to_client(client_, out_.iov, outcome_.bytes_out);
        if (ec) {
            client_.on_gone();
            fail({});
            co_return false;
        }
    }
    res_.reset();
    interim_arena_.release();
    new_response_parser(&interim_arena_);
    co_return true;
}

Framing Exchange::choose_response_framing() const {
    const auto code = res_->head().result_int();
    if (req_->head().method() == http::verb::head || code == 204 || code == 304 ||
        (code >= 100 && code < 200))
        return Framing::none;
    if (res_->content_length()) return Framing::content_length;
    if (req_->head().version() >= 11) return Framing::chunked;
    return Framing::close;
}

// The response: head, then each body piece as soon as it is read. True when
// it ended cleanly (the upstream connection may be reused). While it is
// awaited and relayed, a client that hangs up closes the upstream connection
// at once, so the inference server stops generating.
// The response head is in: the server's bookkeeping and metrics, the framing
// towards the client, the rewritten head in head_out_.
Framing Exchange::begin_response() {
    const auto framing = choose_response_framing();
    if (framing == Framing::close) outcome_.keep_alive = false;
    if (client_.worker.draining() || client_.last_request) outcome_.keep_alive = false;
    outcome_.status = res_->head().result_int();
    auto* server = up_.lease.get();
    if (outcome_.status >= 500 && up_.upstream->config().passive.on_5xx)
        up_.book.eject_step(*server);
    else
        up_.book.success(*server);
    if (const auto* sm = up_.book.metrics_of(server))
        sm->response(outcome_.status,
                     outcome_.first_byte_ms >= 0 ? outcome_.first_byte_ms / 1000.0 : -1);
    head_out_.clear();
    build_client_response_head(res_->head(), framing, res_->content_length().value_or(0),
                               outcome_.keep_alive, req_->head().version(), head_out_);
    if (framing == Framing::chunked || framing == Framing::close) {
        // A long stream: keep no idle client buffer for its lifetime.
        if (client_.buf.size() == 0) client_.buf.shrink_to_fit();
    }
    return framing;
}

// How the body relay ended. True when cleanly.
bool Exchange::end_response(const RelayEnd& end) {
    outcome_.bytes_out += end.written;
    if (end.sent_any) outcome_.response_started = true;
    if (end.step == RelayEnd::Step::write) client_.on_gone();
    client_.stop_watch();
    if (end.step == RelayEnd::Step::done) return true;
    // The client saw a partial response: it must not take it as whole.
    outcome_.keep_alive = false;
    if (end.step == RelayEnd::Step::parse) {
        // Broken before a byte of it was sent: the client can be told.
        upstream_failed({metrics::UpstreamErrorKind::protocol, "bad response body", end.ec},
                        {end.sent_any ? 0u : 502u, true, "upstream sent an invalid response"});
    } else if (end.step == RelayEnd::Step::read && !client_.gone) {
        upstream_failed(
            {end.timeout ? metrics::UpstreamErrorKind::timeout : metrics::UpstreamErrorKind::reset,
             end.timeout ? "stream idle too long" : "stream cut", end.ec},
            {});
    }
    up_.abort();
    return false;
}

// The response: head, then each body piece as soon as it is read. True when
// it ended cleanly (the upstream connection may be reused). While it is
// awaited and relayed, a client that hangs up closes the upstream connection
// at once, so the inference server stops generating.
Task<bool> Exchange::relay() {
    client_.watch_soon();
    const bool head_ok = co_await read_response_head();
    if (!head_ok) {
        client_.stop_watch();
        co_return false;
    }
    // A small answer whose body came with its head goes without a coroutine.
    if (relay_at_once_()) co_return end_response(relayed_);
    const bool clean = co_await relay_rest();
    co_return clean;
}

// The first step of the body relay (relay_at_once()), from this object's
// state: relay()'s own frame stays small (see exchange.hpp).
bool Exchange::relay_at_once_() {
    framing_ = begin_response();
    relayed_ = RelayEnd{};
    relay_start_ = RelayStart{};
    auto& conn = *up_.conn;
    BodySource from{*conn.stream, conn.buffer,          conn.read_size,
                    &conn.inq,    Phase::response_body, up_.upstream->config().timeouts.idle};
    BodySink to{client_.stream, Phase::client_write, client_.rt->config->limits.client_idle};
    return relay_at_once(*res_, from, to, framing_, head_out_, out_, relayed_, relay_start_);
}

// The rest of the body, as it comes (a stream).
Task<bool> Exchange::relay_rest() {
    auto& conn = *up_.conn;
    BodySource from{*conn.stream, conn.buffer,          conn.read_size,
                    &conn.inq,    Phase::response_body, up_.upstream->config().timeouts.idle};
    BodySink to{client_.stream, Phase::client_write, client_.rt->config->limits.client_idle};
    relayed_ = co_await relay_body(*res_, from, to, framing_, client_.deadline, out_, relayed_,
                                   relay_start_);
    co_return end_response(relayed_);
}

// ---- finish -----------------------------------------------------------------

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
    // A named local: GCC 12 destroys a temporary with a destructor in a
    // co_await expression twice.
    const Failure late{408, true, "request head not received in time"};
    co_await reply(late);
}

// Every exchange ends here, once: the upstream connection is pooled or
// closed and the server slot given back (UpstreamSide::finish()), the local
// reply due goes out, then the metrics and the access-log line.
Task<void> Exchange::finish(bool clean) {
    settle(clean);
    if (outcome_.failure) co_await reply(*outcome_.failure);
    record_end();
}

void Exchange::settle(bool clean) {
    const bool reusable = clean && res_ && res_->keep_alive() && req_->is_done();
    up_.finish(reusable, outcome_.status, client_.worker.pool());
}

void Exchange::record_end() {
    if (client_.gone && outcome_.status == 0) outcome_.status = 499;
    if (up_.upstream) outcome_.upstream = up_.upstream->name();
    record(outcome_, client_, req_ ? &req_->head() : nullptr);
}

}  // namespace dsgw::proxy
