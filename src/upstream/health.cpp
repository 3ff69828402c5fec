#include "deepseek_gateway/upstream/health.hpp"

#include "http_get.hpp"

#include "deepseek_gateway/tls/context.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>

namespace dsgw::upstream {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// The status code of an HTTP/1.x status line, or 0.
int status_of(const std::string& head) {
    if (head.size() < 12 || head.compare(0, 7, "HTTP/1.") != 0) return 0;
    int code = 0;
    for (int i = 9; i < 12; ++i) {
        if (head[i] < '0' || head[i] > '9') return 0;
        code = code * 10 + (head[i] - '0');
    }
    return code;
}

template <class Stream>
asio::awaitable<std::string> exchange(Stream& s, const std::string& request) {
    auto [wec, wn] = co_await asio::async_write(s, asio::buffer(request), nothrow);
    if (wec) co_return "write failed: " + wec.message();
    std::string head;
    char buf[512];
    while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
        auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), nothrow);
        if (rec) co_return "no status line: " + rec.message();
        head.append(buf, n);
    }
    const int code = status_of(head);
    if (code >= 200 && code < 400) co_return std::string();
    if (code == 0) co_return "not an HTTP response";
    co_return "status " + std::to_string(code);
}

// One probe. Returns "" on success, else why it failed.
asio::awaitable<std::string> probe(const Upstream& up, const UpstreamServer& server) {
    const auto& hc = up.config().health_check;
    auto ex = co_await asio::this_coro::executor;
    // Shared with the deadline's handler: when the timer fires as the answer
    // completes, cancel() cannot stop the handler already queued, and it
    // runs after this frame is gone.
    struct State {
        explicit State(const asio::any_io_executor& e) : sock(e) {}
        tcp::socket sock;
        bool expired = false;
        bool over = false;
    };
    auto state = std::make_shared<State>(ex);
    auto& sock = state->sock;
    asio::steady_timer deadline(ex);
    deadline.expires_after(hc.timeout);
    deadline.async_wait([state](error_code ec) {
        if (ec || state->over) return;
        state->expired = true;
        error_code ignored;
        state->sock.close(ignored);
    });
    std::string result;
    auto [cec] = co_await sock.async_connect(server.endpoint(), nothrow);
    const std::string host = host_of(server.authority());
    const std::string request = "GET " + hc.path + " HTTP/1.1\r\nHost: " + server.authority() +
                                "\r\nUser-Agent: deepseek-gateway-health-check\r\n"
                                "Connection: close\r\n\r\n";
    if (cec) {
        result = "connect failed: " + cec.message();
    } else if (auto* tls = up.tls()) {
        asio::ssl::stream<tcp::socket&> stream(sock, tls->context());
        tls->prepare(stream.native_handle(), host);
        auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, nothrow);
        if (hec)
            result = "TLS handshake failed: " + hec.message();
        else
            result = co_await exchange(stream, request);
    } else {
        result = co_await exchange(sock, request);
    }
    state->over = true;
    deadline.cancel();
    if (state->expired) result = "no answer within " + std::to_string(hc.timeout.count()) + " ms";
    co_return result;
}

// "; slow start over 30000 ms", or nothing when the upstream has none.
std::string ramp_note(const UpstreamServer& server) {
    const auto span = std::chrono::duration_cast<std::chrono::milliseconds>(server.slow_start());
    if (span.count() <= 0) return {};
    return "; slow start over " + std::to_string(span.count()) + " ms";
}

asio::awaitable<void> probe_loop(std::shared_ptr<const UpstreamSet> set, const Upstream* up,
                                 UpstreamServer* server, std::shared_ptr<std::uint64_t> gen,
                                 std::uint64_t my_gen) {
    const auto& hc = up->config().health_check;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer pause(ex);
    unsigned successes = 0;
    unsigned failures = 0;
    while (*gen == my_gen) {
        auto why = co_await probe(*up, *server);
        if (*gen != my_gen) break;
        if (why.empty()) {
            failures = 0;
            ++successes;
            if (!server->healthy() && successes >= hc.healthy_after) {
                server->set_healthy(true);
                server->on_success();
                server->begin_slow_start(Clock::now());
                spdlog::warn("upstream {} server {}: healthy again after {} successful checks{}",
                             up->name(), server->name(), successes, ramp_note(*server));
            }
        } else {
            successes = 0;
            ++failures;
            if (server->healthy() && failures >= hc.unhealthy_after) {
                server->set_healthy(false);
                spdlog::warn("upstream {} server {}: unhealthy after {} failed checks: {}",
                             up->name(), server->name(), failures, why);
            }
        }
        pause.expires_after(hc.interval);
        co_await pause.async_wait(nothrow);
    }
    (void)set;  // held so `up` and `server` outlive the loop
}

}  // namespace

HealthChecker::HealthChecker() = default;

HealthChecker::~HealthChecker() {
    stop();
}

void HealthChecker::apply(std::shared_ptr<const UpstreamSet> set) {
    asio::post(side_.io(), [this, set = std::move(set)] {
        ++*side_.generation();
        upstreams_ = set;
        for (const auto& up : set->upstreams) {
            const bool checked = up->config().health_check.enabled;
            for (const auto& s : up->servers()) {
                if (!checked) {
                    // Checks switched off by a reload: nothing may keep a
                    // server out on their behalf. One that was out comes
                    // back cold, like any re-admitted server.
                    if (s->set_healthy(true)) s->begin_slow_start(Clock::now());
                    continue;
                }
                asio::co_spawn(
                    side_.io(),
                    probe_loop(set, up.get(), s.get(), side_.generation(), *side_.generation()),
                    asio::detached);
            }
        }
    });
}

void HealthChecker::stop() {
    side_.stop();
}

}  // namespace dsgw::upstream
