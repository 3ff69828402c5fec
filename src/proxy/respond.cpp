// The relay phase: the response head (interim responses, 101), its rewrite, and the body relay.

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"
#include "proxy/exchange.hpp"

namespace dsgw::proxy {

namespace {

using error_code = boost::system::error_code;
using net::Task;

constexpr std::uint32_t kUpstreamHeaderLimit = 64 * 1024;
// Interim (1xx) responses passed on per exchange; one more is a 502.
constexpr unsigned kMaxInterim = 16;

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

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
    if (relay_buffered()) co_return end_response(relayed_);
    const bool clean = co_await relay_rest();
    co_return clean;
}

// The response body goes from the upstream connection to the client.
BodySource Exchange::response_source() {
    auto& conn = *up_.conn;
    return {*conn.stream, conn.buffer,          conn.read_size,
            &conn.inq,    Phase::response_body, up_.upstream->config().timeouts.idle};
}
BodySink Exchange::response_sink() {
    return {client_.stream, Phase::client_write, client_.rt->config->limits.client_idle};
}

// The first step of the body relay (relay_at_once()), from this object's
// state: relay()'s own frame stays small (see exchange.hpp).
bool Exchange::relay_buffered() {
    framing_ = begin_response();
    relayed_ = RelayEnd{};
    relay_start_ = RelayStart{};
    auto from = response_source();
    auto to = response_sink();
    return relay_at_once(*res_, from, to, framing_, head_out_, out_, relayed_, relay_start_);
}

// The rest of the body, as it comes (a stream).
Task<bool> Exchange::relay_rest() {
    relayed_ = co_await relay_body(*res_, response_source(), response_sink(), framing_,
                                   client_.deadline, out_, relayed_, relay_start_);
    co_return end_response(relayed_);
}

}  // namespace dsgw::proxy
