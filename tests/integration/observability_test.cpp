// Observability (issue 5, SPEC §5 and §6) end to end: the real gateway with an
// admin listener on port 0, real mock servers, and real Prometheus tools.
// Counters are checked to move by exactly the number of requests sent, the
// in-flight gauge by an open stream, readiness by a dead server; promtool
// checks a real scrape, and a real Prometheus server scrapes the gateway.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "admin_scrape.hpp"
#include "harness.hpp"

namespace dsgw::it {
namespace {

// The absolute path of a program on PATH (the harness exec()s without a search).
std::optional<std::string> which(const std::string& program) {
    auto r = run_command("/bin/sh", {"-c", "command -v " + program});
    if (!r.exit_code || *r.exit_code != 0 || r.out.empty()) return std::nullopt;
    return r.out.front();
}

std::string completion_request(const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    auto h = extra;
    h.emplace_back("Content-Type", "application/json");
    return http_request("POST", "/v1/chat/completions", h, chat_body(false));
}

}  // namespace

TEST(Observability, AdminEndpointsAnswerAndRefuseStrangers) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    auto admin = start_with_admin(gw, basic_config(mocks),
                                  "admin:\n  address: 127.0.0.1:0\n  access:\n"
                                  "    allow: [127.0.0.1/32]\n");
    ASSERT_TRUE(admin) << gw.logs();

    auto h = admin_get(*admin, "/healthz");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    EXPECT_EQ(h->body, "ok\n");
    auto r = admin_get(*admin, "/readyz");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    auto m = admin_get(*admin, "/metrics");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 200);
    EXPECT_EQ(m->header("Content-Type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
    Scrape s(m->body);
    EXPECT_EQ(s.sum(P + "build_info"), 1) << m->body.substr(0, 2000);
    EXPECT_TRUE(s.value("process_start_time_seconds"));
    auto head = admin_get(*admin, "/metrics", "HEAD");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    auto nf = admin_get(*admin, "/v1/models");
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404) << "the admin listener does not proxy";

    Conn stranger;
    if (stranger.connect(*admin, "127.0.0.1", "127.0.0.2")) {
        stranger.send_all(http_request("GET", "/metrics"));
        auto c = stranger.wait_close(5s);
        EXPECT_TRUE(c.closed);
        EXPECT_TRUE(c.data.empty()) << c.data.substr(0, 200);
    } else {
        EXPECT_EQ(stranger.last_errno(), ECONNRESET);
    }
}

TEST(Observability, CountersMoveByExactlyTheRequestsSent) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    auto admin = start_with_admin(gw, basic_config(mocks));
    ASSERT_TRUE(admin) << gw.logs();
    const std::string server = mocks[0]->address();

    auto before = scrape(*admin);
    ASSERT_TRUE(before);
    EXPECT_EQ(before->sum(P + "requests_total"), 0) << "no request sent yet";

    constexpr int kOk = 7, kFail = 3, kMissing = 2;
    std::uint64_t sent_bytes = 0;
    auto send = [&](const std::string& raw, int status) {
        sent_bytes += raw.size();
        auto resp = request_once(gw.port(), raw);
        ASSERT_TRUE(resp);
        EXPECT_EQ(resp->status, status);
    };
    for (int i = 0; i < kOk; ++i) send(completion_request(), 200);
    for (int i = 0; i < kFail; ++i) send(completion_request({{"X-Mock-Fail-Status", "503"}}), 503);
    for (int i = 0; i < kMissing; ++i) send(http_request("GET", "/no/such/path"), 404);
    constexpr int kAll = kOk + kFail + kMissing;

    // A request is counted once its response has been written: poll briefly.
    auto s = scrape_until(*admin, [&](const Scrape& x) {
        return x.sum(P + "requests_total") >= kAll &&
               x.sum(P + "downstream_connections_active") == 0;
    });
    ASSERT_TRUE(s);
    Labels base{{"listener", "main"}, {"route", "default"}, {"upstream", "pool"}};
    auto code = [&](Labels l, const std::string& c) {
        l["code"] = c;
        return l;
    };
    EXPECT_EQ(s->value(P + "requests_total", code(base, "200")), kOk) << s->text();
    EXPECT_EQ(s->value(P + "requests_total", code(base, "503")), kFail);
    EXPECT_EQ(s->value(P + "requests_total", code(base, "404")), kMissing);
    EXPECT_EQ(s->sum(P + "requests_total"), kAll);
    EXPECT_EQ(s->value(P + "request_duration_seconds_count", base), kAll);

    Labels srv{{"upstream", "pool"}, {"server", server}};
    EXPECT_EQ(s->value(P + "upstream_requests_total", code(srv, "200")), kOk);
    EXPECT_EQ(s->value(P + "upstream_requests_total", code(srv, "503")), kFail);
    EXPECT_EQ(s->value(P + "upstream_requests_total", code(srv, "404")), kMissing);
    EXPECT_EQ(s->value(P + "upstream_first_byte_seconds_count", srv), kAll);
    EXPECT_EQ(s->sum(P + "upstream_errors_total"), 0);
    EXPECT_EQ(s->value(P + "upstream_server_healthy", srv), 1);
    EXPECT_EQ(s->value(P + "upstream_requests_in_flight", srv), 0);

    Labels lis{{"listener", "main"}};
    EXPECT_EQ(s->value(P + "downstream_connections_total", lis), kAll);
    EXPECT_EQ(s->value(P + "downstream_connections_active", lis), 0);
    EXPECT_EQ(s->value(P + "received_bytes_total", lis), static_cast<double>(sent_bytes));
    EXPECT_GT(s->value(P + "sent_bytes_total", lis).value_or(0), 0);
    EXPECT_EQ(s->sum(P + "access_denied_total"), 0);

    // Nothing more moves without traffic.
    std::this_thread::sleep_for(200ms);
    auto later = scrape(*admin);
    ASSERT_TRUE(later);
    EXPECT_EQ(later->sum(P + "requests_total"), kAll);
}

// admin.metrics: false (for measuring what metrics cost, bench scenario g):
// requests are served and counted nowhere, /metrics answers 404 while
// /healthz and /readyz stay; a reload turning metrics on makes /metrics
// answer again, counting only what came after.
TEST(Observability, MetricsCanBeSwitchedOffAndBackOnByReload) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    const auto cfg = basic_config(mocks);
    auto admin =
        start_with_admin(gw, cfg, "admin:\n  address: 127.0.0.1:0\n  metrics: false\n");
    ASSERT_TRUE(admin) << gw.logs();
    for (int i = 0; i < 3; ++i) {
        auto r = request_once(gw.port(), completion_request());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
    }
    auto off = admin_get(*admin, "/metrics");
    ASSERT_TRUE(off);
    EXPECT_EQ(off->status, 404);
    EXPECT_NE(off->body.find("admin.metrics: false"), std::string::npos) << off->body;
    auto health = admin_get(*admin, "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    auto ready = admin_get(*admin, "/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200);

    // Same file with admin.metrics on (the admin port stays: 0 means "the
    // one bound at start" is kept, address changes need a restart).
    {
        std::ofstream f(gw.config_path(), std::ios::trunc);
        f << with_admin(cfg.yaml(), "admin:\n  address: 127.0.0.1:0\n  metrics: true\n");
    }
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    ASSERT_TRUE(gw.process().wait_for_line(std::regex("configuration reloaded"), 10s))
        << gw.logs();
    for (int i = 0; i < 2; ++i) {
        auto r = request_once(gw.port(), completion_request());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
    }
    auto s = scrape_until(*admin, [](const Scrape& x) { return x.sum(P + "requests_total") >= 2; });
    ASSERT_TRUE(s);
    EXPECT_EQ(s->sum(P + "requests_total"), 2) << "requests made with metrics off were counted";
}

TEST(Observability, AccessLogNamesMatchMetricLabels) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    auto admin = start_with_admin(gw, basic_config(mocks));
    ASSERT_TRUE(admin) << gw.logs();
    auto resp = request_once(gw.port(), completion_request());
    ASSERT_TRUE(resp);
    ASSERT_EQ(resp->status, 200);
    auto line = gw.process().wait_for_line(std::regex(R"(^(\{.*"status":200.*\})$)"), 5s,
                                           Process::Stream::out);
    ASSERT_TRUE(line) << gw.logs();
    auto j = parse_json((*line)[1]);
    ASSERT_TRUE(j) << (*line)[1];
    for (const char* f : {"listener", "upstream", "server"}) ASSERT_NE(j->get(f), nullptr) << f;
    auto s = scrape_until(*admin, [](const Scrape& x) { return x.sum(P + "requests_total") >= 1; });
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value(P + "requests_total", {{"listener", j->get("listener")->str},
                                              {"route", j->get("route")->str},
                                              {"upstream", j->get("upstream")->str},
                                              {"code", "200"}}),
              1);
    EXPECT_EQ(s->value(P + "upstream_requests_total", {{"upstream", j->get("upstream")->str},
                                                        {"server", j->get("server")->str},
                                                        {"code", "200"}}),
              1);
}

TEST(Observability, InFlightGaugeFollowsAnOpenStream) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    auto admin = start_with_admin(gw, basic_config(mocks));
    ASSERT_TRUE(admin) << gw.logs();
    Labels srv{{"upstream", "pool"}, {"server", mocks[0]->address()}};

    Conn c;
    ASSERT_TRUE(c.connect(gw.port()));
    auto sent = Clock::now();
    ASSERT_TRUE(c.send_all(stream_request(15, 100)));
    StreamReader reader(sent);
    ASSERT_TRUE(c.read_into(reader, 10s, 1)) << "no first event";

    auto during = scrape_until(*admin, [&](const Scrape& s) {
        return s.value(P + "upstream_requests_in_flight", srv) == 1;
    });
    ASSERT_TRUE(during);
    EXPECT_EQ(during->value(P + "upstream_requests_in_flight", srv), 1) << during->text();
    EXPECT_EQ(during->value(P + "downstream_connections_active", {{"listener", "main"}}), 1);
    EXPECT_EQ(during->sum(P + "requests_total"), 0) << "counted when it ends, not when it starts";

    ASSERT_TRUE(c.read_into(reader, 20s));
    EXPECT_TRUE(reader.result().saw_done());
    auto after = scrape_until(*admin, [&](const Scrape& s) {
        return s.value(P + "upstream_requests_in_flight", srv) == 0 &&
               s.sum(P + "requests_total") == 1;
    });
    ASSERT_TRUE(after);
    EXPECT_EQ(after->value(P + "upstream_requests_in_flight", srv), 0);
    EXPECT_EQ(
        after->value(
            P + "requests_total",
            {{"listener", "main"}, {"route", "default"}, {"upstream", "pool"}, {"code", "200"}}),
        1);
    auto duration =
        after->value(P + "request_duration_seconds_sum",
                     {{"listener", "main"}, {"route", "default"}, {"upstream", "pool"}});
    EXPECT_GE(duration.value_or(0), 1.0) << "the whole 1.5 s stream, not its first byte";
}

TEST(Observability, RefusedConnectionsMoveAccessDenied) {
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    GatewayConfig cfg = basic_config(mocks);
    cfg.listener().allow = {"127.0.0.1/32", "127.0.0.3/32"};
    cfg.listener().deny = {"127.0.0.3/32"};
    Gateway gw;
    auto admin = start_with_admin(gw, cfg);
    ASSERT_TRUE(admin) << gw.logs();
    for (const char* source : {"127.0.0.2", "127.0.0.3", "127.0.0.2"}) {
        Conn c;
        if (c.connect(gw.port(), "127.0.0.1", source)) c.wait_close(5s);
    }
    auto s = scrape_until(*admin, [](const Scrape& x) {
        return x.sum(P + "access_denied_total") >= 3;
    });
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value(P + "access_denied_total", {{"listener", "main"}, {"reason", "not_allowed"}}),
              2)
        << s->text();
    EXPECT_EQ(s->value(P + "access_denied_total", {{"listener", "main"}, {"reason", "deny_list"}}),
              1);
    EXPECT_EQ(s->value(P + "downstream_connections_total", {{"listener", "main"}}), 0)
        << "refused connections are not admitted ones";
    EXPECT_EQ(s->sum(P + "requests_total"), 0);
}

TEST(Observability, ReadyzGoesUnreadyWhenTheOnlyServerIsDown) {
    ClosedPort dead;
    GatewayConfig cfg = basic_config({dead.address()});
    Gateway gw;
    auto admin = start_with_admin(gw, cfg);
    ASSERT_TRUE(admin) << gw.logs();
    Labels srv{{"upstream", "pool"}, {"server", dead.address()}};

    // Without health checks a server is known dead once a connect failed;
    // the backoff that follows lasts at least 1 s, so ask right away.
    bool saw_unready = false;
    std::optional<Scrape> s;
    for (int i = 0; i < 20 && !saw_unready; ++i) {
        auto resp = request_once(gw.port(), completion_request());
        ASSERT_TRUE(resp);
        EXPECT_TRUE(resp->status == 502 || resp->status == 503) << resp->status;
        auto r = admin_get(*admin, "/readyz");
        ASSERT_TRUE(r);
        if (r->status == 503) {
            saw_unready = true;
            EXPECT_NE(r->body.find("pool"), std::string::npos) << r->body;
            s = scrape(*admin);
        }
    }
    ASSERT_TRUE(saw_unready) << "/readyz stayed 200 with its only server refusing connections";
    ASSERT_TRUE(s);
    EXPECT_GE(s->value(P + "upstream_errors_total",
                       {{"upstream", "pool"}, {"server", dead.address()}, {"kind", "connect"}})
                  .value_or(0),
              1)
        << s->text();
    EXPECT_GE(s->sum(P + "requests_total", {{"code", "502"}}) +
                  s->sum(P + "requests_total", {{"code", "503"}}),
              1);
    auto h = admin_get(*admin, "/healthz");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200) << "alive even when not ready";
}

TEST(Observability, ReloadsAreCountedAndVanishedServersLeave) {
    auto mocks = start_mocks(2);
    ASSERT_TRUE(mocks[0]->ok() && mocks[1]->ok());
    GatewayConfig cfg = basic_config(mocks);
    Gateway gw;
    auto admin = start_with_admin(gw, cfg);
    ASSERT_TRUE(admin) << gw.logs();
    auto s = scrape(*admin);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->any_with("server", mocks[1]->address())) << s->text();

    cfg.upstream().servers.pop_back();
    {
        std::ofstream f(gw.config_path(), std::ios::trunc);
        f << with_admin(cfg.yaml());
    }
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    s = scrape_until(*admin, [&](const Scrape& x) {
        return x.value(P + "config_reloads_total", {{"result", "success"}}) == 1 &&
               !x.any_with("server", mocks[1]->address());
    });
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value(P + "config_reloads_total", {{"result", "success"}}), 1) << gw.logs();
    EXPECT_FALSE(s->any_with("server", mocks[1]->address())) << s->text();
    EXPECT_TRUE(s->any_with("server", mocks[0]->address()));

    {
        std::ofstream f(gw.config_path(), std::ios::trunc);
        f << "listeners: [this is not valid\n";
    }
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    s = scrape_until(*admin, [&](const Scrape& x) {
        return x.value(P + "config_reloads_total", {{"result", "failure"}}) == 1;
    });
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value(P + "config_reloads_total", {{"result", "failure"}}), 1) << gw.logs();
    EXPECT_EQ(s->value(P + "config_reloads_total", {{"result", "success"}}), 1);
}

TEST(Observability, RealScrapePassesPromtoolCheckMetrics) {
    ASSERT_TRUE(which("promtool"))
        << "promtool not found: install Debian's prometheus package (scripts/install-deps.sh)";
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    auto admin = start_with_admin(gw, basic_config(mocks));
    ASSERT_TRUE(admin) << gw.logs();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(request_once(gw.port(), completion_request()));
    auto m = admin_get(*admin, "/metrics");
    ASSERT_TRUE(m);
    ASSERT_EQ(m->status, 200);
    auto file = gw.dir().write("scrape.txt", m->body);
    auto r = run_command("/bin/sh", {"-c", "promtool check metrics < " + file}, 60s);
    ASSERT_TRUE(r.exit_code);
    std::string out;
    for (const auto& l : r.out) out += l + "\n";
    EXPECT_EQ(*r.exit_code, 0) << out << r.err_text();
}

namespace {

// A port that was free a moment ago (Prometheus takes no port 0).
std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

std::string url_encode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

// The value of the single sample an instant query returns, if exactly one.
std::optional<double> prometheus_query(std::uint16_t port, const std::string& promql) {
    auto r = request_once(port, http_request("GET", "/api/v1/query?query=" + url_encode(promql),
                                             {}, "", "HTTP/1.1", "127.0.0.1"),
                          "", 5s);
    if (!r || r->status != 200) return std::nullopt;
    auto j = r->json();
    if (!j) return std::nullopt;
    const Json* data = j->get("data");
    const Json* result = data ? data->get("result") : nullptr;
    if (!result || result->arr.size() != 1) return std::nullopt;
    const Json* value = result->arr[0].get("value");
    if (!value || value->arr.size() != 2) return std::nullopt;
    return std::strtod(value->arr[1].str.c_str(), nullptr);
}

}  // namespace

TEST(Observability, RealPrometheusScrapesTheGateway) {
    auto prometheus = which("prometheus");
    ASSERT_TRUE(prometheus)
        << "prometheus not found: install Debian's prometheus package (scripts/install-deps.sh)";
    auto mocks = start_mocks(1);
    ASSERT_TRUE(mocks[0]->ok());
    Gateway gw;
    auto admin = start_with_admin(gw, basic_config(mocks));
    ASSERT_TRUE(admin) << gw.logs();
    constexpr int kRequests = 4;
    for (int i = 0; i < kRequests; ++i) {
        auto r = request_once(gw.port(), completion_request());
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200);
    }

    TempDir dir;
    auto config = dir.write("prometheus.yml",
                            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                            "scrape_configs:\n"
                            "  - job_name: deepseek-gateway\n"
                            "    scrape_interval: 1s\n"
                            "    scrape_timeout: 1s\n"
                            "    static_configs: [{targets: ['127.0.0.1:" +
                                std::to_string(*admin) + "']}]\n");
    // A Process is started once: a fresh one per attempt (the port may be
    // taken between free_port() and Prometheus binding it).
    std::unique_ptr<Process> prom;
    std::uint16_t port = 0;
    for (int attempt = 0; attempt < 3 && port == 0; ++attempt) {
        auto p = free_port();
        prom = std::make_unique<Process>();
        ASSERT_TRUE(prom->start(*prometheus,
                                {"--config.file=" + config,
                                 "--storage.tsdb.path=" + dir.path() + "/data",
                                 "--web.listen-address=127.0.0.1:" + std::to_string(p)},
                                "prometheus"));
        if (prom->wait_for_line(std::regex("Server is ready to receive web requests"), 30s))
            port = p;
        else
            prom->stop(5s);
    }
    ASSERT_NE(port, 0) << prom->tail();

    std::optional<double> up, total;
    auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
        up = prometheus_query(port, "up{job=\"deepseek-gateway\"}");
        total = prometheus_query(port, "sum(deepseek_gateway_requests_total{job=\"deepseek-gateway\","
                                       "listener=\"main\",code=\"200\"})");
        if (up == 1.0 && total == kRequests) break;
        std::this_thread::sleep_for(250ms);
    }
    EXPECT_EQ(up, 1.0) << prom->tail();
    EXPECT_EQ(total, kRequests) << prom->tail();
    prom->stop(5s);
}

}  // namespace dsgw::it
