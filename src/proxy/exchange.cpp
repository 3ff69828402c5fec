// The exchange's run through its phases, and the phases inspect, route and forward, and
// the one finish (admit is in admit.cpp, relay in respond.cpp).

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

// The arena's first block: a typical request and response head fit in it.
constexpr std::size_t kArenaChunk = 2048;
// The client buffer a connection keeps after a body read whole.
constexpr std::size_t kMaxIdleBuffer = 64 * 1024;
}  // namespace

Exchange::Exchange(ClientSide& client, std::pmr::memory_resource& blocks)
    : client_(client), arena_(kArenaChunk, &blocks), interim_arena_(kArenaChunk, &blocks) {}

RelayParser<true>& Exchange::begin() {
    outcome_.begin();
    sent_continue_ = false;
    framed_ = false;
    body_read_ = false;
    prompt_ = {};
    parsed_ = 0;
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
    if (admitted && client_.lc->inspects()) {
        const bool routed = co_await inspect();
        admitted = routed;
        if (!routed) drop_read_body();
    }
    if (admitted) {
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

// The upstream of the route inspect() chose (or the listener's), and what its
// balancer picks a server by.
balancer::PickContext Exchange::route() {
    const auto& rt = *client_.rt;
    const auto& lc = *client_.lc;
    const auto i = outcome_.route >= 0
                       ? lc.routes[static_cast<std::size_t>(outcome_.route)].upstream_index
                       : lc.upstream_index;
    up_.upstream = &rt.upstream(i);
    up_.book = ServerBook(up_.upstream, rt.metrics.get(), i);
    balancer::PickContext ctx{client_.ip, nullptr, Clock::now()};
    if (body_read_ && hash_prompt()) ctx.prompt = &prompt_;
    return ctx;
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
    if (body_read_) {
        // Read whole by inspect(): it goes with a Content-Length, whatever
        // the client's framing, and with the model rewritten.
        const auto length = frame_read_body();
        req_framing_ = Framing::content_length;
        build_upstream_request_head(head, fctx, req_framing_, length, head_out_);
        pending_consume_ = parsed_;
        out_.iov.clear();
        out_.iov.emplace_back(head_out_.data(), head_out_.size());
        out_.add_body(req_framing_, true, body_iov_, length);
        return true;
    }
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
    // A long body read whole leaves no large buffer to an idle connection.
    if (body_read_ && client_.buf.capacity() > kMaxIdleBuffer) client_.buf.shrink_to_fit();
    outcome_.server = up_.server_name;
}

// A request answered after inspect() read some of its body: those bytes are
// done with (the next request starts after them, or the connection closes).
void Exchange::drop_read_body() {
    client_.buf.consume(parsed_);
    outcome_.bytes_in += parsed_;
    parsed_ = 0;
    if (client_.buf.capacity() > kMaxIdleBuffer) client_.buf.shrink_to_fit();
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
    if (!framed_ && frame_request()) {
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
    if (prompt_.looked_up) up_.book.prefix_looked_up(prompt_.matched > 0);
    record(outcome_, client_, req_ ? &req_->head() : nullptr);
}

}  // namespace dsgw::proxy
