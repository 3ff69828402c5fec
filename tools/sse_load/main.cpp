// sse_load: opens N concurrent streaming completions against a host:port and
// reports how they went. Used by the memory and streaming-lag measurements
// (bench/) and by hand. Loopback only is the intended use.
//
//   sse_load --target 127.0.0.1:8080 --streams 1000 [--tokens 20] [--delay-ms 50]
//            [--first-delay-ms 0] [--ramp-ms 2000] [--hold-file FILE]
//
// Each event's lag is measured against the "t_ns" field the mock server puts
// in every event (CLOCK_MONOTONIC when it wrote the event; same machine).
// With --hold-file, once every stream has received its first event the tool
// writes "open" to FILE, so a script can sample the gateway's memory while all
// streams are open (choose --tokens and --delay-ms so they stay open a while).

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

struct Options {
    std::string host = "127.0.0.1";
    std::string port;
    int streams = 100;
    int tokens = 20;
    int delay_ms = 50;
    int first_delay_ms = 0;
    int ramp_ms = 0;
    std::string hold_file;
};

struct Stats {
    int ok = 0;
    int failed = 0;
    int first_events = 0;
    long events = 0;
    std::vector<double> lags_ms;
};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

asio::awaitable<void> one_stream(const Options& o, tcp::endpoint ep, int index, Stats& st) {
    auto ex = co_await asio::this_coro::executor;
    if (o.ramp_ms > 0) {
        asio::steady_timer t(ex, std::chrono::microseconds(
                                     static_cast<long>(o.ramp_ms) * 1000 * index / o.streams));
        co_await t.async_wait(nothrow);
    }
    tcp::socket s(ex);
    auto [cec] = co_await s.async_connect(ep, nothrow);
    if (cec) {
        ++st.failed;
        co_return;
    }
    std::string body = R"({"model":"deepseek-mock","stream":true,"messages":[{"role":"user","content":"hi"}]})";
    std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: " + o.host +
                      "\r\nContent-Type: application/json\r\nX-Mock-Tokens: " +
                      std::to_string(o.tokens) +
                      "\r\nX-Mock-Token-Delay-Ms: " + std::to_string(o.delay_ms) +
                      "\r\nX-Mock-First-Token-Delay-Ms: " + std::to_string(o.first_delay_ms) +
                      "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
    auto [wec, wn] = co_await asio::async_write(s, asio::buffer(req), nothrow);
    if (wec) {
        ++st.failed;
        co_return;
    }
    std::string carry;
    char buf[4096];
    int events = 0;
    bool done = false;
    for (;;) {
        auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), nothrow);
        if (rec) break;
        const auto t = now_ns();
        carry.append(buf, n);
        std::size_t pos = 0;
        for (;;) {
            auto nl = carry.find('\n', pos);
            if (nl == std::string::npos) break;
            std::string_view line(carry.data() + pos, nl - pos);
            pos = nl + 1;
            if (line.rfind("data: ", 0) != 0) continue;
            if (line.find("[DONE]") != std::string_view::npos) {
                done = true;
                continue;
            }
            ++events;
            ++st.events;
            if (events == 1) ++st.first_events;
            auto k = line.find("\"t_ns\":");
            if (k != std::string_view::npos) {
                auto sent = std::strtoll(line.data() + k + 7, nullptr, 10);
                st.lags_ms.push_back(static_cast<double>(t - sent) / 1e6);
            }
        }
        carry.erase(0, pos);
    }
    if (done && events == o.tokens)
        ++st.ok;
    else
        ++st.failed;
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    return v[i];
}

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view a = argv[i];
        std::string v = argv[i + 1];
        if (a == "--target") {
            auto c = v.rfind(':');
            o.host = v.substr(0, c);
            o.port = v.substr(c + 1);
        } else if (a == "--streams") o.streams = std::atoi(v.c_str());
        else if (a == "--tokens") o.tokens = std::atoi(v.c_str());
        else if (a == "--delay-ms") o.delay_ms = std::atoi(v.c_str());
        else if (a == "--first-delay-ms") o.first_delay_ms = std::atoi(v.c_str());
        else if (a == "--ramp-ms") o.ramp_ms = std::atoi(v.c_str());
        else if (a == "--hold-file") o.hold_file = v;
        else {
            std::fprintf(stderr, "sse_load: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (o.port.empty()) {
        std::fprintf(stderr, "usage: sse_load --target HOST:PORT [--streams N] [--tokens N] "
                             "[--delay-ms N] [--first-delay-ms N] [--ramp-ms N] [--hold-file F]\n");
        return 2;
    }
    asio::io_context io(1);
    tcp::endpoint ep(asio::ip::make_address(o.host), static_cast<unsigned short>(std::stoi(o.port)));
    Stats st;
    for (int i = 0; i < o.streams; ++i) asio::co_spawn(io, one_stream(o, ep, i, st), asio::detached);
    bool signalled = false;
    auto timer = std::make_shared<asio::steady_timer>(io);
    std::function<void()> poll;  // outlives io.run(): the timer calls it
    if (!o.hold_file.empty()) {
        // Poll: once every stream has its first event, say so.
        poll = [&, timer] {
            if (!signalled && st.first_events + st.failed >= o.streams) {
                signalled = true;
                std::ofstream(o.hold_file) << "open\n";
                return;
            }
            timer->expires_after(std::chrono::milliseconds(5));
            timer->async_wait([&](boost::system::error_code) { poll(); });
        };
        poll();
    }
    const auto t0 = Clock::now();
    io.run();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("{\"streams\":%d,\"ok\":%d,\"failed\":%d,\"events\":%ld,\"seconds\":%.3f,"
                "\"lag_ms_p50\":%.3f,\"lag_ms_p99\":%.3f,\"lag_ms_max\":%.3f}\n",
                o.streams, st.ok, st.failed, st.events, secs, percentile(st.lags_ms, 0.50),
                percentile(st.lags_ms, 0.99), percentile(st.lags_ms, 1.0));
    return st.failed == 0 ? 0 : 1;
}
