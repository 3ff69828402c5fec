// Operations (issue 6, SPEC §7): SIGHUP reload under load, rejected reloads,
// listeners added / removed / moved by a reload, SIGTERM drain, and the
// systemd notification protocol through a fake NOTIFY_SOCKET.

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <ctime>
#include <iostream>
#include <mutex>
#include <set>

#include "harness.hpp"
#include "ops_notify.hpp"

namespace dsgw::it {
namespace {

std::string plain_request() {
    return http_request("POST", "/v1/chat/completions", {{"Content-Type", "application/json"}},
                        chat_body(false));
}

std::uint64_t monotonic_us() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

std::vector<std::string> addresses(const std::vector<std::unique_ptr<MockServer>>& mocks) {
    std::vector<std::string> v;
    for (const auto& m : mocks) v.push_back(m->address());
    return v;
}

// A gateway started with NOTIFY_SOCKET (and optionally WATCHDOG_USEC) pointing
// at a socket this fixture owns, so a test knows when a reload is in effect.
class Notified {
public:
    bool start(const GatewayConfig& cfg, const std::string& watchdog_usec = "") {
        if (!notify_.ok()) return false;
        std::vector<std::pair<std::string, std::string>> env = {{"NOTIFY_SOCKET", notify_.path()}};
        if (!watchdog_usec.empty()) env.emplace_back("WATCHDOG_USEC", watchdog_usec);
        EnvGuard guard(env);
        return gw.start(cfg) && notify_.wait_for("READY=1", 10s).has_value();
    }
    // Rewrites the config, sends SIGHUP and waits for RELOADING=1 then
    // READY=1. Returns the RELOADING=1 datagram.
    std::optional<std::string> reload(const std::string& yaml) {
        gw.dir().write("gateway.yaml", yaml);
        if (!gw.process().signal(SIGHUP)) return std::nullopt;
        auto reloading = notify_.wait_for("RELOADING=1", 10s);
        if (!reloading || !notify_.wait_for("READY=1", 10s)) return std::nullopt;
        return reloading;
    }
    NotifySocket& notify() { return notify_; }

    Gateway gw;

private:
    TempDir dir_;
    NotifySocket notify_{dir_.path() + "/notify.sock"};
};

// ---- reload under load -------------------------------------------------------

struct Outcome {
    Clock::time_point sent, done;
    std::string server;  // X-Mock-Server
    std::string error;   // empty: a complete 200
    int kind = 0;
};

// Four kinds of client: keep-alive plain, new connection plain, keep-alive
// stream, new connection stream.
void client_loop(std::uint16_t port, int kind, const std::atomic<bool>& stop,
                 std::vector<Outcome>& out) {
    const bool keep_alive = kind == 0 || kind == 2;
    const bool stream = kind >= 2;
    Conn c;
    while (!stop) {
        Outcome o;
        o.kind = kind;
        if (!c.is_open() || !keep_alive) {
            c = Conn();
            if (!c.connect(port)) {
                o.sent = Clock::now();
                o.error = "connect failed: errno " + std::to_string(c.last_errno());
                out.push_back(o);
                continue;
            }
        }
        o.sent = Clock::now();
        if (!c.send_all(stream ? stream_request(6, 10) : plain_request())) {
            o.error = "send failed";
        } else if (stream) {
            auto r = c.read_stream(o.sent, 10s);
            if (!r.ok || r.response.status != 200 || !r.saw_done() || r.token_events().size() != 6)
                o.error = "stream: status " + std::to_string(r.response.status) + " " + r.error;
            o.server = r.response.header("X-Mock-Server").value_or("");
        } else {
            std::string err;
            auto r = c.read_response(10s, false, &err);
            if (!r || r->status != 200)
                o.error = "plain: " + (r ? "status " + std::to_string(r->status) : err);
            else
                o.server = r->header("X-Mock-Server").value_or("");
        }
        o.done = Clock::now();
        if (!o.error.empty()) c = Conn();
        out.push_back(o);
    }
}

// SPEC §7: "A valid new configuration takes over for new requests, in-flight
// requests finish on the old one, and no connection is dropped."
TEST(Reload, TwentyReloadsUnderLoadDropNothingAndTrafficFollows) {
    auto set_a = start_mocks(2, {}, "a");
    auto set_b = start_mocks(2, {}, "b");
    for (auto* set : {&set_a, &set_b})
        for (auto& m : *set) ASSERT_TRUE(m->ok());
    const std::set<std::string> ids_a = {"a0", "a1"}, ids_b = {"b0", "b1"};
    auto cfg_a = basic_config(addresses(set_a));
    auto cfg_b = basic_config(addresses(set_b));

    Notified n;
    ASSERT_TRUE(n.start(cfg_a)) << n.gw.logs();
    const auto port = n.gw.port();

    std::atomic<bool> stop{false};
    std::vector<std::vector<Outcome>> outcomes(4);
    std::vector<std::thread> clients;
    for (int k = 0; k < 4; ++k)
        clients.emplace_back(client_loop, port, k, std::cref(stop), std::ref(outcomes[k]));

    // Window i: a request sent after ready[i] (reload i in effect) and
    // answered before hup[i + 1] (the next one begins) must reach set i.
    std::vector<Clock::time_point> hup, ready;
    std::vector<const std::set<std::string>*> expected;
    hup.push_back(Clock::time_point{});
    ready.push_back(Clock::time_point{});
    expected.push_back(&ids_a);
    bool reloads_ok = true;
    for (int i = 1; i <= 20 && reloads_ok; ++i) {
        std::this_thread::sleep_for(150ms);
        const bool to_b = i % 2 == 1;
        hup.push_back(Clock::now());
        reloads_ok = n.reload((to_b ? cfg_b : cfg_a).yaml()).has_value();
        ready.push_back(Clock::now());
        expected.push_back(to_b ? &ids_b : &ids_a);
    }
    std::this_thread::sleep_for(300ms);
    stop = true;
    for (auto& t : clients) t.join();
    ASSERT_TRUE(reloads_ok) << "a reload did not complete (RELOADING=1/READY=1)\n" << n.gw.logs();

    std::size_t total = 0, failed = 0, misrouted = 0, checked = 0;
    std::size_t per_kind[4] = {0, 0, 0, 0};
    std::map<std::string, std::size_t> per_server;
    std::string first_failures, first_misroutes;
    for (const auto& list : outcomes) {
        for (const auto& o : list) {
            ++total;
            ++per_kind[o.kind];
            if (!o.error.empty()) {
                if (++failed <= 5) first_failures += "  kind " + std::to_string(o.kind) + ": " + o.error + "\n";
                continue;
            }
            ++per_server[o.server];
            // Which window was the request sent in? Between a SIGHUP and its
            // READY=1 either configuration may answer.
            for (std::size_t w = ready.size(); w-- > 0;) {
                if (o.sent < hup[w]) continue;
                const bool in_window = o.sent >= ready[w] && (w + 1 == hup.size() || o.done < hup[w + 1]);
                checked += in_window;
                if (in_window && !expected[w]->count(o.server) && ++misrouted <= 5)
                    first_misroutes += "  kind " + std::to_string(o.kind) + " (keep-alive: " +
                                       (o.kind % 2 == 0 ? "yes" : "no") + ") after reload " +
                                       std::to_string(w) + " went to " + o.server + "\n";
                break;
            }
        }
    }
    EXPECT_EQ(failed, 0u) << failed << " of " << total << " requests failed:\n" << first_failures;
    EXPECT_EQ(misrouted, 0u) << misrouted << " requests sent after a reload was in effect went "
                             << "to the previous upstream set:\n" << first_misroutes;
    EXPECT_GE(checked, 100u) << "too few requests fell inside a reload window to tell";
    for (int k = 0; k < 4; ++k) EXPECT_GE(per_kind[k], 10u) << "client kind " << k << " barely ran";
    for (const auto& id : {"a0", "a1", "b0", "b1"})
        EXPECT_GE(per_server[id], 5u) << "server " << id << " got almost no traffic";
    EXPECT_EQ(n.gw.stop(20s), 0) << n.gw.logs();
}

// A keep-alive connection that sat idle through a reload: its next request
// is a new request, so it takes the new configuration.
TEST(Reload, IdleKeepAliveConnectionTakesTheNewConfig) {
    auto old_set = start_mocks(1, {}, "old");
    auto new_set = start_mocks(1, {}, "new");
    ASSERT_TRUE(old_set[0]->ok() && new_set[0]->ok());
    Notified n;
    ASSERT_TRUE(n.start(basic_config(addresses(old_set)))) << n.gw.logs();
    Conn c;
    ASSERT_TRUE(c.connect(n.gw.port()));
    ASSERT_TRUE(c.send_all(plain_request()));
    auto r = c.read_response(5s);
    ASSERT_TRUE(r && r->status == 200);
    EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "old0");

    ASSERT_TRUE(n.reload(basic_config(addresses(new_set)).yaml())) << n.gw.logs();
    ASSERT_TRUE(c.send_all(plain_request()));
    r = c.read_response(5s);
    ASSERT_TRUE(r) << "the idle keep-alive connection was dropped by the reload";
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "new0")
        << "a request that arrived after the reload was served on the old configuration";
    EXPECT_EQ(n.gw.stop(20s), 0) << n.gw.logs();
}

std::size_t count_lines(const std::string& path) {
    std::ifstream f(path);
    std::size_t n = 0;
    for (std::string line; std::getline(f, line);) n += !line.empty();
    return n;
}

// logrotate moves the file away, then `systemctl reload` starts a new one.
TEST(Reload, AccessLogFileIsReopened) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    TempDir logs;
    const auto path = logs.path() + "/access.log";
    auto cfg = basic_config(mocks);
    cfg.access_log = path;
    Notified n;
    ASSERT_TRUE(n.start(cfg)) << n.gw.logs();
    auto wait_lines = [](const std::string& p, std::size_t want) {
        for (auto until = Clock::now() + 3s; Clock::now() < until; std::this_thread::sleep_for(20ms))
            if (count_lines(p) >= want) return true;
        return false;
    };
    auto r = request_once(n.gw.port(), plain_request());
    ASSERT_TRUE(r && r->status == 200);
    ASSERT_TRUE(wait_lines(path, 1)) << "no access log line in " << path;
    ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);

    ASSERT_TRUE(n.reload(cfg.yaml())) << n.gw.logs();
    r = request_once(n.gw.port(), plain_request());
    ASSERT_TRUE(r && r->status == 200);
    EXPECT_TRUE(wait_lines(path, 1)) << "the reload did not start a new access log file";
    EXPECT_EQ(count_lines(path + ".1"), 1u) << "a line went to the rotated file";
}

// ---- rejected reloads --------------------------------------------------------

TEST(Reload, InvalidFileIsRejectedWithKeyPathAndOldConfigKeepsServing) {
    auto old_set = start_mocks(1, {}, "old");
    auto new_set = start_mocks(1, {}, "new");
    ASSERT_TRUE(old_set[0]->ok() && new_set[0]->ok());
    Notified n;
    ASSERT_TRUE(n.start(basic_config(addresses(old_set)))) << n.gw.logs();

    // An invalid value: rejected with its key path; nothing changes.
    auto bad = basic_config({new_set[0]->address(), "127.0.0.1:99999"});
    ASSERT_TRUE(n.reload(bad.yaml())) << n.gw.logs();
    EXPECT_TRUE(n.gw.process().wait_for_line(
        std::regex(R"(reload rejected: upstreams\[0\]\.servers\[1\]\.address: .*99999)"), 5s))
        << n.gw.logs();
    EXPECT_TRUE(n.gw.process().wait_for_line(
        std::regex("reload rejected: 1 error\\(s\\) in .*previous configuration keeps serving"), 5s))
        << n.gw.logs();
    for (int i = 0; i < 4; ++i) {
        auto r = request_once(n.gw.port(), plain_request());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "old0") << "the rejected file took effect";
    }

    // A listener that cannot be bound rejects the whole reload, the upstream
    // change with it.
    BusyPort busy;
    auto bind_fails = basic_config(addresses(new_set));
    GatewayConfig::Listener extra;
    extra.name = "extra";
    extra.address = "127.0.0.1:" + std::to_string(busy.port());
    bind_fails.listeners.push_back(extra);
    ASSERT_TRUE(n.reload(bind_fails.yaml())) << n.gw.logs();
    EXPECT_TRUE(n.gw.process().wait_for_line(
        std::regex("reload rejected: listeners\\[1\\]\\.address: cannot bind 127\\.0\\.0\\.1:" +
                   std::to_string(busy.port())),
        5s))
        << n.gw.logs();
    auto r = request_once(n.gw.port(), plain_request());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "old0");

    // And a valid file afterwards is taken.
    ASSERT_TRUE(n.reload(basic_config(addresses(new_set)).yaml())) << n.gw.logs();
    r = request_once(n.gw.port(), plain_request());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "new0") << n.gw.logs();
    EXPECT_EQ(n.gw.stop(20s), 0) << n.gw.logs();
}

// ---- listeners -----------------------------------------------------------------

std::uint16_t port_from_log(Gateway& gw, const std::string& pattern) {
    auto m = gw.process().wait_for_line(std::regex(pattern), 5s);
    return m ? static_cast<std::uint16_t>(std::stoi((*m)[1])) : 0;
}

bool refused(std::uint16_t port, const std::string& host = "127.0.0.1") {
    Conn c;
    return !c.connect(port, host, "", 2s) && c.last_errno() == ECONNREFUSED;
}

TEST(Reload, ListenersAddedRemovedAndMoved) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    auto cfg = basic_config(mocks);
    GatewayConfig::Listener old_listener;
    old_listener.name = "old";
    cfg.listeners.push_back(old_listener);
    Notified n;
    ASSERT_TRUE(n.start(cfg)) << n.gw.logs();
    const auto main_port = n.gw.port("main");
    const auto old_port = n.gw.port("old");
    ASSERT_NE(old_port, 0);

    // On the listener about to go: one idle keep-alive connection, one
    // stream in flight.
    Conn idle;
    ASSERT_TRUE(idle.connect(old_port));
    ASSERT_TRUE(idle.send_all(plain_request()));
    auto first = idle.read_response(5s);
    ASSERT_TRUE(first && first->status == 200);
    Conn streaming;
    ASSERT_TRUE(streaming.connect(old_port));
    ASSERT_TRUE(streaming.send_all(stream_request(20, 50)));
    StreamReader rd(Clock::now());
    ASSERT_TRUE(streaming.read_into(rd, 5s, 1)) << rd.result().error;

    // Remove "old", add "extra", move "main" to another address, and ask for
    // a worker count that needs a restart.
    auto next = basic_config(mocks);
    next.workers = "3";
    next.listener().address = "127.0.0.2:0";
    GatewayConfig::Listener extra;
    extra.name = "extra";
    next.listeners.push_back(extra);
    ASSERT_TRUE(n.reload(next.yaml())) << n.gw.logs();

    const auto extra_port =
        port_from_log(n.gw, R"(reload: listener extra listening on 127\.0\.0\.1:(\d+))");
    ASSERT_NE(extra_port, 0) << n.gw.logs();
    const auto moved_port =
        port_from_log(n.gw, R"(reload: listener main moved from 127\.0\.0\.1:0 to 127\.0\.0\.2:(\d+))");
    ASSERT_NE(moved_port, 0) << n.gw.logs();
    EXPECT_TRUE(n.gw.process().wait_for_line(
        std::regex("reload: workers: 2 -> 3 takes effect at the next restart"), 1s))
        << n.gw.logs();

    auto r = request_once(extra_port, plain_request());
    ASSERT_TRUE(r) << "the listener added by the reload does not answer";
    EXPECT_EQ(r->status, 200);
    r = request_once(moved_port, plain_request(), "", 5s, nullptr, "127.0.0.2");
    ASSERT_TRUE(r) << "the moved listener does not answer at its new address";
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(refused(old_port)) << "the removed listener still accepts";
    EXPECT_TRUE(refused(main_port)) << "the moved listener still accepts at its old address";

    // The idle connection of the removed listener is closed; the stream
    // finishes, then its connection closes.
    auto closed = idle.wait_close(3s);
    EXPECT_TRUE(closed.closed) << "idle keep-alive connection of a removed listener left open";
    EXPECT_TRUE(streaming.read_into(rd, 10s)) << rd.result().error;
    EXPECT_TRUE(rd.result().ok && rd.result().saw_done()) << "stream cut by the reload";
    EXPECT_EQ(rd.result().token_events().size(), 20u);
    EXPECT_TRUE(streaming.wait_close(3s).closed)
        << "a connection of a removed listener stayed open after its request";
    EXPECT_EQ(n.gw.stop(20s), 0) << n.gw.logs();
}

// ---- drain ---------------------------------------------------------------------

TEST(Drain, SigtermRefusesNewConnectionsLetsTheStreamFinishAndExitsZero) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    auto cfg = basic_config(mocks);
    cfg.shutdown_timeout = "20s";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();

    Conn idle;
    ASSERT_TRUE(idle.connect(gw.port()));
    ASSERT_TRUE(idle.send_all(plain_request()));
    ASSERT_TRUE(idle.read_response(5s));
    Conn s;
    ASSERT_TRUE(s.connect(gw.port()));
    ASSERT_TRUE(s.send_all(stream_request(60, 50)));  // 3 s
    StreamReader rd(Clock::now());
    ASSERT_TRUE(s.read_into(rd, 5s, 1)) << rd.result().error;

    ASSERT_TRUE(gw.process().signal(SIGTERM));
    // Refused at connect while the stream is still running.
    bool was_refused = false;
    for (auto until = Clock::now() + 1s; !was_refused && Clock::now() < until;)
        if (!(was_refused = refused(gw.port()))) std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(was_refused) << "new connections still accepted after SIGTERM";
    EXPECT_TRUE(idle.wait_close(1s).closed) << "an idle keep-alive connection kept the drain waiting";
    EXPECT_FALSE(gw.process().exited()) << "exited before the stream finished";

    EXPECT_TRUE(s.read_into(rd, 10s)) << rd.result().error;
    EXPECT_TRUE(rd.result().ok && rd.result().saw_done()) << "stream cut by the drain";
    EXPECT_EQ(rd.result().token_events().size(), 60u);
    const auto done = Clock::now();
    auto code = gw.process().wait_exit(5s);
    ASSERT_TRUE(code.has_value()) << "no exit after the last stream ended\n" << gw.logs();
    EXPECT_EQ(*code, 0);
    EXPECT_LT(ms_between(done, Clock::now()), 3000) << "the drain waited for something else";
    EXPECT_TRUE(gw.process().wait_for_line(std::regex("drained: every connection closed"), 1s))
        << gw.logs();
}

TEST(Drain, ShutdownTimeoutCutsWhatIsLeftAndExitsZero) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    auto cfg = basic_config(mocks);
    cfg.shutdown_timeout = "1s";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    Conn s;
    ASSERT_TRUE(s.connect(gw.port()));
    ASSERT_TRUE(s.send_all(stream_request(200, 50)));
    StreamReader rd(Clock::now());
    ASSERT_TRUE(s.read_into(rd, 5s, 1));
    const auto t0 = Clock::now();
    ASSERT_TRUE(gw.process().signal(SIGTERM));
    auto code = gw.process().wait_exit(8s);
    ASSERT_TRUE(code.has_value()) << gw.logs();
    EXPECT_EQ(*code, 0);
    const double ms = ms_between(t0, Clock::now());
    EXPECT_GT(ms, 800) << "exited before shutdown_timeout";
    EXPECT_LT(ms, 5000) << "shutdown_timeout not honoured";
    EXPECT_TRUE(gw.process().wait_for_line(
        std::regex(R"(shutdown_timeout \(1000 ms\) reached: closing 1 connection\(s\))"), 1s))
        << gw.logs();
    s.read_into(rd, 2s);
    EXPECT_FALSE(rd.result().saw_done());
}

TEST(Drain, SecondSignalExitsAtOnce) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    auto cfg = basic_config(mocks);
    cfg.shutdown_timeout = "60s";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    Conn s;
    ASSERT_TRUE(s.connect(gw.port()));
    ASSERT_TRUE(s.send_all(stream_request(200, 50)));
    StreamReader rd(Clock::now());
    ASSERT_TRUE(s.read_into(rd, 5s, 1));
    ASSERT_TRUE(gw.process().signal(SIGINT));
    ASSERT_TRUE(gw.process().wait_for_line(std::regex("draining: no new connections"), 5s));
    const auto t0 = Clock::now();
    ASSERT_TRUE(gw.process().signal(SIGTERM));
    auto code = gw.process().wait_exit(3s);
    ASSERT_TRUE(code.has_value()) << "a second signal did not end the drain\n" << gw.logs();
    EXPECT_EQ(*code, 0);
    EXPECT_LT(ms_between(t0, Clock::now()), 2000);
    EXPECT_TRUE(gw.process().wait_for_line(std::regex("second signal"), 1s)) << gw.logs();
}

// ---- systemd -------------------------------------------------------------------

// SPEC §7: READY=1 once listening, RELOADING=1/READY=1 around a reload,
// STOPPING=1 on shutdown, WATCHDOG=1 when WATCHDOG_USEC is set, STATUS=.
TEST(Systemd, NotifySequenceAndWatchdog) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Notified n;
    ASSERT_TRUE(n.start(basic_config(mocks), "300000")) << n.gw.logs();
    const auto ready = n.notify().received().back();
    EXPECT_NE(NotifySocket::field(ready, "STATUS").value_or("").find("connection"),
              std::string::npos)
        << "READY=1 without a STATUS= summary: " << ready;

    // WATCHDOG=1 at half of WATCHDOG_USEC, i.e. about every 150 ms.
    ASSERT_TRUE(n.notify().wait_for("WATCHDOG=1", 2s)) << n.gw.logs();
    const auto w0 = Clock::now();
    ASSERT_TRUE(n.notify().wait_for("WATCHDOG=1", 2s));
    ASSERT_TRUE(n.notify().wait_for("WATCHDOG=1", 2s));
    EXPECT_LT(ms_between(w0, Clock::now()), 2000) << "watchdog beats too slow for WATCHDOG_USEC=300ms";

    const auto before = monotonic_us();
    auto reloading = n.reload(basic_config(mocks).yaml());
    ASSERT_TRUE(reloading) << n.gw.logs();
    const auto usec = NotifySocket::field(*reloading, "MONOTONIC_USEC");
    ASSERT_TRUE(usec) << "RELOADING=1 without MONOTONIC_USEC: " << *reloading;
    const auto v = std::stoull(*usec);
    EXPECT_GE(v, before);
    EXPECT_LE(v, monotonic_us());

    ASSERT_TRUE(n.gw.process().signal(SIGTERM));
    ASSERT_TRUE(n.notify().wait_for("STOPPING=1", 5s)) << n.gw.logs();
    auto code = n.gw.process().wait_exit(10s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0);

    // The order of the state changes, whatever STATUS=/WATCHDOG=1 came between.
    std::vector<std::string> states;
    for (const auto& m : n.notify().received())
        for (const char* s : {"READY=1", "RELOADING=1", "STOPPING=1"})
            if (NotifySocket::has_line(m, s)) states.push_back(s);
    EXPECT_EQ(states, (std::vector<std::string>{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}));
}

TEST(Systemd, NoWatchdogWithoutWatchdogUsec) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Notified n;
    ASSERT_TRUE(n.start(basic_config(mocks))) << n.gw.logs();
    EXPECT_FALSE(n.notify().wait_for("WATCHDOG=1", 700ms)) << "WATCHDOG=1 sent though not asked";
}

// ---- journald priorities ---------------------------------------------------------

// Under systemd, stderr is the journal and JOURNAL_STREAM names it: every line
// then starts with its syslog priority ("<4>" for a warning), which journald
// stores as PRIORITY, so `journalctl -p warning` finds the gateway's warnings.
// The launcher sets JOURNAL_STREAM to the device:inode of the stderr pipe, as
// systemd does for the stream it connects.
TEST(Journal, LinesCarryTheirPriorityWhenStderrIsTheJournal) {
    ClosedPort dead;
    Gateway gw;
    gw.set_launcher({"/bin/sh", "-c",
                     "export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec \"$@\"",
                     "sh"});
    auto cfg = basic_config({dead.address()});
    cfg.log_level = "info";
    ASSERT_TRUE(gw.start(cfg.yaml())) << gw.logs();
    // Failed connects eject the server after unhealthy_after (3): a warning.
    for (int i = 0; i < 4; ++i) {
        auto r = request_once(gw.port(), plain_request());
        ASSERT_TRUE(r);
        EXPECT_GE(r->status, 502);
    }
    ASSERT_TRUE(gw.process().wait_for_line(std::regex("^<4>.*\\[warning\\]"), 5s,
                                           Process::Stream::err))
        << gw.logs();
    EXPECT_TRUE(gw.process().wait_for_line(std::regex("^<6>.*gateway ready"), 1s, Process::Stream::err))
        << gw.logs();
    // Outside systemd (no JOURNAL_STREAM, as in every other test) lines have no prefix.
    Gateway plain;
    ASSERT_TRUE(plain.start(basic_config({dead.address()}).yaml())) << plain.logs();
    EXPECT_TRUE(plain.process().wait_for_line(std::regex("^[0-9{].*gateway ready"), 1s,
                                              Process::Stream::err))
        << plain.logs();
}

// ---- socket activation ---------------------------------------------------------

// systemd-socket-activate(1) does what a .socket unit does: it opens the
// listening socket, waits for the first connection, then execs the daemon
// with LISTEN_FDS=1 and the socket as descriptor 3.
const char* kSocketActivate = "/usr/bin/systemd-socket-activate";

std::uint16_t a_free_port() {
    ClosedPort p;  // bound, not listening; released when it goes out of scope
    return p.port();
}

// The gateway with `listener_address`, launched by systemd-socket-activate
// listening on 127.0.0.1:`passed`; returns once that socket is open (the
// gateway itself starts at the first connection).
void start_socket_activated(Process& sa, TempDir& dir, std::uint16_t passed,
                            const std::string& listener_address,
                            const std::vector<std::unique_ptr<MockServer>>& mocks) {
    auto cfg = basic_config(mocks);
    cfg.listener().address = listener_address;
    const auto path = dir.write("gateway.yaml", cfg.yaml());
    const auto addr = "127.0.0.1:" + std::to_string(passed);
    ASSERT_TRUE(sa.start(kSocketActivate, {"-l", addr, gateway_bin(), "--config", path},
                         "socket-activate"));
    ASSERT_TRUE(sa.wait_for_line(std::regex("Listening on 127\\.0\\.0\\.1:" + std::to_string(passed)),
                                 5s))
        << sa.tail();
}

TEST(SocketActivation, ListenerTakesTheSocketSystemdOpened) {
    if (::access(kSocketActivate, X_OK) != 0) GTEST_SKIP() << kSocketActivate << " missing";
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    const auto port = a_free_port();
    TempDir dir;
    Process sa;
    start_socket_activated(sa, dir, port, "127.0.0.1:" + std::to_string(port), mocks);
    if (HasFatalFailure()) return;
    // The first connection makes systemd-socket-activate exec the gateway,
    // which must accept it on the inherited socket.
    auto r = request_once(port, plain_request());
    ASSERT_TRUE(r) << sa.tail();
    EXPECT_EQ(r->status, 200) << r->body;
    ASSERT_TRUE(sa.wait_for_line(std::regex("listening on 127\\.0\\.0\\.1:" +
                                            std::to_string(port) + " \\(socket from systemd\\)"),
                                 5s))
        << sa.tail();
    for (int i = 0; i < 5; ++i) {
        auto again = request_once(port, plain_request());
        ASSERT_TRUE(again);
        EXPECT_EQ(again->status, 200);
    }
    EXPECT_EQ(sa.stop(10s), 0) << sa.tail();
}

TEST(SocketActivation, SocketThatMatchesNoListenerStopsTheStart) {
    if (::access(kSocketActivate, X_OK) != 0) GTEST_SKIP() << kSocketActivate << " missing";
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    const auto passed = a_free_port();
    TempDir dir;
    Process sa;
    // The listener binds its own port: not the socket systemd passes.
    start_socket_activated(sa, dir, passed, "127.0.0.1:0", mocks);
    if (HasFatalFailure()) return;
    Conn c;
    ASSERT_TRUE(c.connect(passed));  // triggers the exec
    auto status = sa.wait_exit(10s);
    ASSERT_TRUE(status) << sa.tail();
    EXPECT_EQ(*status, 3) << sa.tail();
    EXPECT_TRUE(sa.wait_for_line(std::regex("socket activation: the socket on 127\\.0\\.0\\.1:" +
                                            std::to_string(passed) +
                                            " \\(fd 3\\) matches no listeners\\[\\]\\.address"),
                                 1s))
        << sa.tail();
}

}  // namespace
}  // namespace dsgw::it
