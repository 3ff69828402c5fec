// Command line, exit codes, startup failures and signals (SPEC §2, §7), and
// the access log line.

#include <signal.h>
#include <strings.h>

#include <cerrno>

#include <gtest/gtest.h>

#include <iostream>
#include <regex>

#include "harness.hpp"

namespace dsgw::it {
namespace {

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
    auto pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << "config template lacks: " << from;
    if (pos != std::string::npos) s.replace(pos, from.size(), to);
    return s;
}

GatewayConfig three_server_config() {
    return basic_config({"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"}, "round_robin");
}

// Lines of stderr that start an error about a configuration key.
std::vector<std::string> key_error_lines(const std::vector<std::string>& lines) {
    static const std::regex key_line(
        R"((^|[\s:])(workers|listeners|upstreams|limits|logging|admin|shutdown_timeout)([\[.][^\s:]*)?: )");
    std::vector<std::string> out;
    for (const auto& l : lines)
        if (std::regex_search(l, key_line)) out.push_back(l);
    return out;
}

TEST(Cli, CheckConfigReportsEveryErrorWithItsKeyPath) {
    TempDir dir;
    std::string yaml = three_server_config().yaml();
    yaml = replace_once(yaml, "balancer: round_robin", "balancer: fastest");
    yaml = replace_once(yaml, "127.0.0.1:9002", "127.0.0.1:99999");
    yaml = replace_once(yaml, "logging:\n", "limits:\n  max_bdy: 1MiB\nlogging:\n");
    std::string path = dir.write("bad.yaml", yaml);

    RunResult r = run_command(gateway_bin(), {"--check-config", "--config", path});
    ASSERT_TRUE(r.exit_code.has_value()) << "--check-config did not exit";
    EXPECT_EQ(*r.exit_code, 1) << r.err_text();

    const std::vector<std::string> paths = {"upstreams[0].balancer",
                                            "upstreams[0].servers[1].address", "limits.max_bdy"};
    for (const auto& p : paths) {
        int n = 0;
        for (const auto& l : r.err)
            if (l.find(p + ": ") != std::string::npos) ++n;
        EXPECT_EQ(n, 1) << "expected exactly one line with \"" << p << ": \"\nstderr:\n"
                        << r.err_text();
    }
    auto errs = key_error_lines(r.err);
    EXPECT_EQ(errs.size(), 3u) << "expected three error lines, stderr:\n" << r.err_text();
    // The bad port value is quoted back to the user.
    EXPECT_NE(r.err_text().find("99999"), std::string::npos) << r.err_text();
}

TEST(Cli, CheckConfigAcceptsValidConfig) {
    TempDir dir;
    std::string path = dir.write("good.yaml", three_server_config().yaml());
    RunResult r = run_command(gateway_bin(), {"--check-config", "--config", path});
    ASSERT_TRUE(r.exit_code.has_value());
    EXPECT_EQ(*r.exit_code, 0) << r.err_text();
    EXPECT_TRUE(key_error_lines(r.err).empty()) << r.err_text();
}

TEST(Cli, MissingConfigFileIsAConfigError) {
    RunResult r =
        run_command(gateway_bin(), {"--check-config", "--config", "/nonexistent/dsgw-it.yaml"});
    ASSERT_TRUE(r.exit_code.has_value());
    EXPECT_EQ(*r.exit_code, 1) << r.err_text();
    EXPECT_NE(r.err_text().find("/nonexistent/dsgw-it.yaml"), std::string::npos)
        << "the message should name the file:\n"
        << r.err_text();
}

TEST(Cli, BadCommandLineExits2) {
    for (std::vector<std::string> args :
         {std::vector<std::string>{"--no-such-flag"}, std::vector<std::string>{"--config"}}) {
        RunResult r = run_command(gateway_bin(), args);
        ASSERT_TRUE(r.exit_code.has_value());
        EXPECT_EQ(*r.exit_code, 2) << "args: " << args[0] << "\n" << r.err_text();
        EXPECT_FALSE(r.err.empty()) << "a one-line message is expected on stderr";
    }
}

TEST(Cli, ListenerPortInUseExits3) {
    BusyPort busy;
    ASSERT_NE(busy.port(), 0);
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    GatewayConfig cfg = basic_config(mocks);
    std::string addr = "127.0.0.1:" + std::to_string(busy.port());
    cfg.listener().address = addr;
    TempDir dir;
    std::string path = dir.write("busy.yaml", cfg.yaml());
    RunResult r = run_command(gateway_bin(), {"--config", path}, 20s);
    ASSERT_TRUE(r.exit_code.has_value()) << "gateway kept running on a port in use";
    EXPECT_EQ(*r.exit_code, 3) << r.err_text();
    EXPECT_NE(r.err_text().find(addr), std::string::npos)
        << "the message should name " << addr << ":\n"
        << r.err_text();
}

TEST(Cli, StartsWithPortZeroAndReportsListeners) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    GatewayConfig cfg = basic_config(mocks);
    GatewayConfig::Listener second;
    second.name = "second";
    cfg.listeners.push_back(second);
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    ASSERT_NE(gw.port("main"), 0);
    ASSERT_NE(gw.port("second"), 0);
    EXPECT_NE(gw.port("main"), gw.port("second"));
    for (const char* l : {"main", "second"}) {
        auto r = request_once(gw.port(l), http_request("GET", "/v1/models"));
        ASSERT_TRUE(r) << l;
        EXPECT_EQ(r->status, 200) << l;
        EXPECT_EQ(r->header("X-Mock-Server").value_or(""), "m0");
    }
}

TEST(Cli, Ipv6LoopbackListener) {
    Conn probe;
    if (!probe.connect(1, "::1", "", 1s) && probe.last_errno() != ECONNREFUSED)
        GTEST_SKIP() << "no IPv6 loopback here";
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    GatewayConfig cfg = basic_config(mocks);
    cfg.listener().address = "[::1]:0";
    cfg.listener().allow = {"::1/128"};
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();
    EXPECT_TRUE(gw.process().wait_for_line(std::regex(R"(listening on \[::1\]:\d+)"), 0ms))
        << "IPv6 listener address not logged as [::1]:PORT";
    ASSERT_NE(gw.port(), 0);
    std::string err;
    auto r = request_once(gw.port(), http_request("GET", "/mock/echo"), "", 10s, &err, "::1");
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->status, 200);
    auto j = r->json();
    ASSERT_TRUE(j);
    std::string xff;
    if (const Json* h = j->get("headers"))
        for (const auto& kv : h->arr)
            if (kv.arr.size() == 2 && strcasecmp(kv.arr[0].str.c_str(), "X-Forwarded-For") == 0)
                xff = kv.arr[1].str;
    EXPECT_EQ(xff, "::1");
}

TEST(Signals, SigtermExitsZero) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    auto r = request_once(gw.port(), http_request("GET", "/v1/models"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    auto code = gw.stop(15s);
    ASSERT_TRUE(code.has_value()) << "gateway did not exit within 15 s of SIGTERM";
    EXPECT_EQ(*code, 0) << gw.logs();
}

// SPEC §7: SIGTERM stops accepting but lets an in-flight stream finish.
TEST(Signals, SigtermDrainsInFlightStream) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    GatewayConfig cfg = basic_config(mocks);
    cfg.shutdown_timeout = "20s";
    Gateway gw;
    ASSERT_TRUE(gw.start(cfg)) << gw.logs();

    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    ASSERT_TRUE(c.send_all(stream_request(10, 100)));
    StreamReader rd(Clock::now());
    ASSERT_TRUE(c.read_into(rd, 5s, 1)) << "no first event: " << rd.result().error;
    ASSERT_TRUE(gw.process().signal(SIGTERM));
    EXPECT_TRUE(c.read_into(rd, 20s)) << rd.result().error;
    // The stream must arrive complete, ending with [DONE].
    EXPECT_TRUE(rd.result().ok) << rd.result().error;
    EXPECT_EQ(rd.result().token_events().size(), 10u) << "stream cut by SIGTERM";
    EXPECT_TRUE(rd.result().saw_done()) << "stream cut by SIGTERM";

    // New connections are no longer served.
    Conn late;
    bool served = false;
    if (late.connect(gw.port(), "127.0.0.1", "", 1s) &&
        late.send_all(http_request("GET", "/v1/models"))) {
        auto r = late.read_response(2s);
        served = r.has_value() && r->status == 200;
    }
    EXPECT_FALSE(served) << "gateway accepted a new request after SIGTERM";
    auto code = gw.process().wait_exit(15s);
    ASSERT_TRUE(code.has_value()) << "gateway did not exit after draining";
    EXPECT_EQ(*code, 0) << gw.logs();
}

TEST(AccessLog, OneJsonLinePerRequest) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    ASSERT_TRUE(gw.start(basic_config(mocks))) << gw.logs();
    auto r = request_once(gw.port(), http_request("GET", "/v1/models?x=1"));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    auto line =
        gw.process().wait_for_line(std::regex(R"(^\{.*"/v1/models.*$)"), 5s, Process::Stream::out);
    ASSERT_TRUE(line) << "no access log line on stdout:\n" << gw.logs();
    auto j = parse_json((*line)[0]);
    ASSERT_TRUE(j) << "access log line is not JSON";
    for (const char* f : {"time", "listener", "client", "method", "path", "status", "upstream",
                          "server", "bytes_in", "bytes_out", "duration_ms", "first_byte_ms"})
        EXPECT_NE(j->get(f), nullptr) << "access log lacks field " << f;
    auto str = [&](const char* f) { return j->get(f) ? j->get(f)->str : std::string(); };
    EXPECT_EQ(str("listener"), "main");
    EXPECT_EQ(str("method"), "GET");
    EXPECT_EQ(str("upstream"), "pool");
    EXPECT_NE(str("server").find(std::to_string(mocks[0]->port())), std::string::npos)
        << str("server");
    EXPECT_NE(str("client").find("127.0.0.1"), std::string::npos) << str("client");
    ASSERT_NE(j->get("status"), nullptr);
    EXPECT_EQ(j->get("status")->as_int(), 200);
    ASSERT_NE(j->get("bytes_out"), nullptr);
    EXPECT_GE(j->get("bytes_out")->as_int(), static_cast<std::int64_t>(r->body.size()));
}

}  // namespace
}  // namespace dsgw::it
