// Observability (SPEC §5, §6): the metrics module (handles move exactly their
// own series, reloads drop the series of names that left, the exposition is
// valid for promtool), the admin listener (endpoints, HEAD, keep-alive,
// allow/deny at accept, readiness), the admin: configuration section, and the
// deploy/ files (alert rules pass promtool and their own rule tests; the
// Grafana dashboard parses and names only metrics the gateway exports).

#include "deepseek_gateway/admin/admin_server.hpp"
#include "deepseek_gateway/admin/readiness.hpp"
#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/metrics/histogram.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/metrics/sample.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/json/src.hpp>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace dsgw;
using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;

namespace {

// --- the exposition, parsed back -------------------------------------------------

struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
};

// Sample lines of the text format 0.0.4 (comments skipped). Fails the test on a
// line it cannot read.
std::vector<Sample> parse_exposition(const std::string& text) {
    std::vector<Sample> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        Sample s;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        s.name = line.substr(0, i);
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                auto eq = line.find('=', i);
                EXPECT_NE(eq, std::string::npos) << line;
                if (eq == std::string::npos) return out;
                std::string key = line.substr(i, eq - i), value;
                i = eq + 2;  // past ="
                while (i < line.size() && line[i] != '"') {
                    if (line[i] == '\\' && i + 1 < line.size()) {
                        ++i;
                        value += line[i] == 'n' ? '\n' : line[i];
                    } else {
                        value += line[i];
                    }
                    ++i;
                }
                ++i;  // closing quote
                if (i < line.size() && line[i] == ',') ++i;
                s.labels[key] = value;
            }
            ++i;  // '}'
        }
        s.value = std::strtod(line.c_str() + i, nullptr);
        out.push_back(std::move(s));
    }
    return out;
}

std::optional<double> value_of(const std::vector<Sample>& samples, const std::string& name,
                               const Labels& labels = {}) {
    for (const auto& s : samples)
        if (s.name == name && s.labels == labels) return s.value;
    return std::nullopt;
}

// Number of samples of `name` (any labels) with label `key` = `value`.
std::size_t count_with(const std::vector<Sample>& samples, const std::string& key,
                       const std::string& value) {
    std::size_t n = 0;
    for (const auto& s : samples) {
        auto it = s.labels.find(key);
        if (it != s.labels.end() && it->second == value) ++n;
    }
    return n;
}

// "deepseek_gateway_x_bucket" -> "deepseek_gateway_x" for the families that
// are histograms; other names unchanged.
std::string family_of(const std::string& sample_name) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string s(suffix);
        if (sample_name.size() > s.size() &&
            sample_name.compare(sample_name.size() - s.size(), s.size(), s) == 0) {
            auto base = sample_name.substr(0, sample_name.size() - s.size());
            if (base.size() > 8 && base.compare(base.size() - 8, 8, "_seconds") == 0) return base;
        }
    }
    return sample_name;
}

const std::string P = "deepseek_gateway_";

// --- configurations ------------------------------------------------------------------

std::shared_ptr<const config::Config> load(const std::string& yaml) {
    auto r = config::load_config_string(yaml);
    std::string errors;
    for (const auto& e : r.errors) errors += e + "\n";
    EXPECT_TRUE(r.errors.empty()) << errors;
    return r.config;
}

std::string two_listener_yaml(const std::string& pool_servers = "9001, 9002",
                              bool with_internal = true) {
    std::string servers;
    std::istringstream ports(pool_servers);
    for (std::string p; std::getline(ports, p, ',');) {
        p.erase(0, p.find_first_not_of(' '));
        servers += std::string(servers.empty() ? "" : ", ") + "{address: 127.0.0.1:" + p + "}";
    }
    std::string y = "listeners:\n"
                    "  - {name: public, address: 127.0.0.1:0, access: {allow: [127.0.0.0/8]}, "
                    "upstream: pool}\n";
    if (with_internal)
        y += "  - {name: internal, address: 127.0.0.1:0, access: {allow: [127.0.0.0/8]}, "
             "upstream: batch}\n";
    y += "upstreams:\n  - {name: pool, servers: [" + servers + "]}\n";
    y += "  - {name: batch, servers: [{address: 127.0.0.1:9003}]}\n";
    return y;
}

// --- running commands ------------------------------------------------------------

struct CommandResult {
    int exit_code = -1;
    std::string output;
};

CommandResult run_shell(const std::string& command) {
    CommandResult r;
    FILE* p = ::popen(("timeout 120 " + command + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

// promtool comes with Debian's `prometheus` package (scripts/install-deps.sh).
// Missing, the test fails: a skipped check is a check that never runs in CI.
bool have_promtool() {
    return run_shell("sh -c 'command -v promtool'").exit_code == 0;
}
#define REQUIRE_PROMTOOL()                                                                 \
    ASSERT_TRUE(have_promtool())                                                           \
        << "promtool not found: install Debian's prometheus package (scripts/install-deps.sh)"

std::string source_path(const std::string& rel) { return std::string(DSGW_SOURCE_DIR) + "/" + rel; }

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

class TempFile {
public:
    explicit TempFile(const std::string& content) {
        char name[] = "/tmp/dsgw-metrics-XXXXXX";
        int fd = ::mkstemp(name);
        path_ = name;
        if (fd >= 0) {
            auto n = ::write(fd, content.data(), content.size());
            (void)n;
            ::close(fd);
        }
    }
    ~TempFile() { ::unlink(path_.c_str()); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace

// --- status code labels ------------------------------------------------------------

TEST(StatusLabels, CommonCodesHaveTheirOwnAndTheRestTheirClass) {
    for (unsigned c : metrics::kStatusCodes)
        EXPECT_EQ(metrics::status_label(metrics::status_slot(c)), std::to_string(c));
    EXPECT_EQ(metrics::status_label(metrics::status_slot(418)), "4xx");
    EXPECT_EQ(metrics::status_label(metrics::status_slot(100)), "1xx");
    EXPECT_EQ(metrics::status_label(metrics::status_slot(207)), "2xx");
    EXPECT_EQ(metrics::status_label(metrics::status_slot(308)), "3xx");
    EXPECT_EQ(metrics::status_label(metrics::status_slot(599)), "5xx");
    EXPECT_EQ(metrics::status_label(metrics::status_slot(0)), "other");
    EXPECT_EQ(metrics::status_label(metrics::status_slot(99)), "other");
    EXPECT_EQ(metrics::status_label(metrics::status_slot(600)), "other");
    EXPECT_EQ(metrics::status_label(metrics::status_slot(65535)), "other");
    std::set<std::string> labels;
    for (std::size_t i = 0; i < metrics::kStatusSlots; ++i) labels.insert(metrics::status_label(i));
    EXPECT_EQ(labels.size(), metrics::kStatusSlots);
}

// --- the histogram ---------------------------------------------------------------------

TEST(Histogram, BucketsAreCumulativeAndABoundIsInclusive) {
    const double bounds[] = {0.1, 1, 10};
    metrics::Histogram h(bounds);
    for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 50.0}) h.observe(v);
    auto s = h.snapshot();
    EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 4, 5, 6}));
    EXPECT_EQ(s.count(), 6u);
    EXPECT_DOUBLE_EQ(s.sum, 56.65);
}

TEST(Histogram, LatencyBucketsSpan5msTo600s) {
    auto b = metrics::latency_buckets();
    ASSERT_FALSE(b.empty());
    EXPECT_DOUBLE_EQ(b.front(), 0.005);
    EXPECT_DOUBLE_EQ(b.back(), 600);
    EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST(Histogram, ConcurrentObservationsAndCountsAreAllKept) {
    metrics::Metrics m("test");
    auto cm = m.apply(*load(two_listener_yaml()));
    auto* req = cm->requests(0);
    constexpr int kThreads = 4, kEach = 50000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < kEach; ++i) req->record(200, 0.25);
        });
    for (auto& t : threads) t.join();
    auto s = parse_exposition(m.render());
    Labels l{{"listener", "public"}, {"route", "default"}, {"upstream", "pool"}};
    EXPECT_EQ(value_of(s, P + "request_duration_seconds_count", l), kThreads * kEach);
    EXPECT_DOUBLE_EQ(*value_of(s, P + "request_duration_seconds_sum", l), kThreads * kEach * 0.25);
    l["code"] = "200";
    EXPECT_EQ(value_of(s, P + "requests_total", l), kThreads * kEach);
}

// --- handles and series ------------------------------------------------------------------

TEST(Metrics, EachHandleMovesExactlyItsOwnSeries) {
    metrics::Metrics m("1.2.3");
    auto cm = m.apply(*load(two_listener_yaml()));
    ASSERT_EQ(cm->listener_count(), 2u);
    ASSERT_EQ(cm->upstream_count(), 2u);
    ASSERT_EQ(cm->server_count(0), 2u);

    auto* pub = cm->requests(0);
    for (int i = 0; i < 3; ++i) pub->record(200, 0.1);
    pub->record(503, 2.0);
    pub->record(418, 0.004);
    cm->requests(1)->record(200, 1.0);
    auto* s2 = cm->server(0, 1);
    EXPECT_EQ(s2, cm->server("pool", "127.0.0.1:9002"));
    s2->response(200, 0.05);
    s2->response(200, 0.07);
    s2->error(metrics::UpstreamErrorKind::connect);
    s2->error(metrics::UpstreamErrorKind::connect);
    s2->error(metrics::UpstreamErrorKind::reset);
    auto* lm = cm->listener(0);
    EXPECT_EQ(lm, cm->listener("public"));
    lm->connection_opened();
    lm->connection_opened();
    lm->connection_closed();
    lm->denied_by(access::to_deny_reason(access::Decision::not_allowed));
    lm->denied_by(metrics::DenyReason::bad_key);
    lm->bytes(100, 2000);
    lm->bytes(23, 0);
    cm->upstream(0)->queue_wait->observe(0.5);
    cm->upstream(0)->queue_length->Set(3);

    auto s = parse_exposition(m.render());
    auto rq = [&](const std::string& l, const std::string& u, const std::string& code) {
        return value_of(s, P + "requests_total",
                        {{"listener", l}, {"route", "default"}, {"upstream", u}, {"code", code}});
    };
    EXPECT_EQ(rq("public", "pool", "200"), 3);
    EXPECT_EQ(rq("public", "pool", "503"), 1);
    EXPECT_EQ(rq("public", "pool", "4xx"), 1);
    EXPECT_EQ(rq("public", "pool", "404"), 0);
    EXPECT_EQ(rq("internal", "batch", "200"), 1);
    EXPECT_EQ(rq("internal", "batch", "503"), 0);
    EXPECT_FALSE(rq("public", "batch", "200")) << "no series for a pair no listener uses";

    Labels pl{{"listener", "public"}, {"route", "default"}, {"upstream", "pool"}};
    EXPECT_EQ(value_of(s, P + "request_duration_seconds_count", pl), 5);
    auto bucket = [&](const std::string& le) {
        auto l = pl;
        l["le"] = le;
        return value_of(s, P + "request_duration_seconds_bucket", l);
    };
    EXPECT_EQ(bucket("0.005"), 1);
    EXPECT_EQ(bucket("0.1"), 4);
    EXPECT_EQ(bucket("1"), 4);
    EXPECT_EQ(bucket("2.5"), 5);
    EXPECT_EQ(bucket("600"), 5);
    EXPECT_EQ(bucket("+Inf"), 5);
    EXPECT_NEAR(*value_of(s, P + "request_duration_seconds_sum", pl), 2.304, 1e-9);

    Labels s2l{{"upstream", "pool"}, {"server", "127.0.0.1:9002"}};
    Labels s1l{{"upstream", "pool"}, {"server", "127.0.0.1:9001"}};
    auto with = [](Labels l, const std::string& k, const std::string& v) {
        l[k] = v;
        return l;
    };
    EXPECT_EQ(value_of(s, P + "upstream_requests_total", with(s2l, "code", "200")), 2);
    EXPECT_EQ(value_of(s, P + "upstream_requests_total", with(s1l, "code", "200")), 0);
    EXPECT_EQ(value_of(s, P + "upstream_first_byte_seconds_count", s2l), 2);
    EXPECT_EQ(value_of(s, P + "upstream_first_byte_seconds_count", s1l), 0);
    EXPECT_EQ(value_of(s, P + "upstream_errors_total", with(s2l, "kind", "connect")), 2);
    EXPECT_EQ(value_of(s, P + "upstream_errors_total", with(s2l, "kind", "reset")), 1);
    EXPECT_EQ(value_of(s, P + "upstream_errors_total", with(s2l, "kind", "timeout")), 0);
    EXPECT_EQ(value_of(s, P + "upstream_errors_total", with(s2l, "kind", "protocol")), 0);
    EXPECT_EQ(value_of(s, P + "upstream_errors_total", with(s1l, "kind", "connect")), 0);
    EXPECT_EQ(value_of(s, P + "upstream_server_healthy", s1l), 1);
    EXPECT_EQ(value_of(s, P + "upstream_requests_in_flight", s1l), 0);

    Labels ll{{"listener", "public"}};
    EXPECT_EQ(value_of(s, P + "downstream_connections_total", ll), 2);
    EXPECT_EQ(value_of(s, P + "downstream_connections_active", ll), 1);
    EXPECT_EQ(value_of(s, P + "downstream_connections_total", {{"listener", "internal"}}), 0);
    EXPECT_EQ(value_of(s, P + "access_denied_total", with(ll, "reason", "not_allowed")), 1);
    EXPECT_EQ(value_of(s, P + "access_denied_total", with(ll, "reason", "bad_key")), 1);
    for (auto r : {"deny_list", "bad_proxy_header", "missing_key"})
        EXPECT_EQ(value_of(s, P + "access_denied_total", with(ll, "reason", r)), 0) << r;
    EXPECT_EQ(value_of(s, P + "received_bytes_total", ll), 123);
    EXPECT_EQ(value_of(s, P + "sent_bytes_total", ll), 2000);
    EXPECT_EQ(value_of(s, P + "tls_handshake_errors_total", ll), 0);
    EXPECT_EQ(value_of(s, P + "upstream_queue_length", {{"upstream", "pool"}}), 3);
    EXPECT_EQ(value_of(s, P + "upstream_queue_wait_seconds_count", {{"upstream", "pool"}}), 1);
    EXPECT_EQ(value_of(s, P + "upstream_queue_length", {{"upstream", "batch"}}), 0);
}

TEST(Metrics, RenderedTextHasHelpTypeAndPlainSampleLines) {
    metrics::Metrics m("1.2.3");
    auto cm = m.apply(*load(two_listener_yaml()));
    cm->requests(0)->record(200, 0.1);
    auto text = m.render();
    for (const char* line : {
             "# TYPE deepseek_gateway_requests_total counter\n",
             "# TYPE deepseek_gateway_request_duration_seconds histogram\n",
             "# TYPE deepseek_gateway_upstream_server_healthy gauge\n",
             "# HELP deepseek_gateway_build_info ",
             "deepseek_gateway_build_info{version=\"1.2.3\"} 1\n",
             "deepseek_gateway_requests_total{code=\"200\",listener=\"public\",route=\"default\","
             "upstream=\"pool\"} 1\n",
             "deepseek_gateway_request_duration_seconds_bucket{listener=\"public\",route="
             "\"default\","
             "upstream=\"pool\","
             "le=\"+Inf\"} 1\n",
             "deepseek_gateway_config_reloads_total{result=\"failure\"} 0\n",
             "# TYPE process_cpu_seconds_total counter\n",
         })
        EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\n" << text;
}

TEST(Metrics, BuildInfoAndReloadResults) {
    metrics::Metrics m("9.8.7");
    m.reload_result(true);
    m.reload_result(false);
    m.reload_result(false);
    auto s = parse_exposition(m.render());
    EXPECT_EQ(value_of(s, P + "build_info", {{"version", "9.8.7"}}), 1);
    EXPECT_EQ(value_of(s, P + "config_reloads_total", {{"result", "success"}}), 1);
    EXPECT_EQ(value_of(s, P + "config_reloads_total", {{"result", "failure"}}), 2);
}

TEST(Metrics, ReloadKeepsSeriesThatStayAndDropsThoseThatLeft) {
    metrics::Metrics m("test");
    auto c1 = m.apply(*load(two_listener_yaml("9001, 9002")));
    for (int i = 0; i < 5; ++i) c1->server(0, 0)->response(200, 0.01);
    c1->server(0, 1)->response(200, 0.01);
    c1->requests(1)->record(200, 0.01);

    // 9002 and the "internal" listener leave; 9004 arrives.
    auto c2 = m.apply(*load(two_listener_yaml("9001, 9004", false)));
    EXPECT_EQ(c2->server(0, 0), c1->server(0, 0)) << "a server that stays keeps its handle";
    EXPECT_EQ(c2->listener(0), c1->listener(0));
    EXPECT_EQ(c2->listener("internal"), nullptr);
    EXPECT_EQ(c2->server("pool", "127.0.0.1:9002"), nullptr);

    // The old configuration still serves its in-flight requests: its series stay.
    auto s = parse_exposition(m.render());
    EXPECT_GT(count_with(s, "server", "127.0.0.1:9002"), 0u);
    EXPECT_GT(count_with(s, "listener", "internal"), 0u);

    c1.reset();
    s = parse_exposition(m.render());
    EXPECT_EQ(count_with(s, "server", "127.0.0.1:9002"), 0u) << m.render();
    EXPECT_EQ(count_with(s, "listener", "internal"), 0u) << m.render();
    EXPECT_GT(count_with(s, "server", "127.0.0.1:9004"), 0u);
    Labels s1{{"upstream", "pool"}, {"server", "127.0.0.1:9001"}, {"code", "200"}};
    EXPECT_EQ(value_of(s, P + "upstream_requests_total", s1), 5) << "counts carry over a reload";
    // "batch" is still configured (unused upstreams keep their series).
    EXPECT_GT(count_with(s, "server", "127.0.0.1:9003"), 0u);

    // A server that comes back starts from zero.
    auto c3 = m.apply(*load(two_listener_yaml("9001, 9002")));
    s = parse_exposition(m.render());
    Labels s2{{"upstream", "pool"}, {"server", "127.0.0.1:9002"}, {"code", "200"}};
    EXPECT_EQ(value_of(s, P + "upstream_requests_total", s2), 0);

    c2.reset();
    c3.reset();
    s = parse_exposition(m.render());
    EXPECT_EQ(count_with(s, "upstream", "pool"), 0u) << "no configuration left holds them";
    EXPECT_TRUE(value_of(s, P + "build_info", {{"version", "test"}}));
}

TEST(Metrics, CertificateExpiryExistsOnlyForListenersThatSetIt) {
    metrics::Metrics m("test");
    auto cm = m.apply(*load(two_listener_yaml()));
    auto name = P + "tls_certificate_expiry_timestamp_seconds";
    EXPECT_FALSE(value_of(parse_exposition(m.render()), name, {{"listener", "public"}}));
    cm->set_certificate_expiry(0, 1.9e9);
    auto s = parse_exposition(m.render());
    EXPECT_EQ(value_of(s, name, {{"listener", "public"}}), 1.9e9);
    EXPECT_FALSE(value_of(s, name, {{"listener", "internal"}}));
    cm->set_certificate_expiry(0, std::nullopt);
    EXPECT_FALSE(value_of(parse_exposition(m.render()), name, {{"listener", "public"}}));
    cm->set_certificate_expiry(1, 2e9);
    cm.reset();
    EXPECT_FALSE(value_of(parse_exposition(m.render()), name, {{"listener", "internal"}}))
        << "leaves with its listener";
}

TEST(Metrics, ProcessMetricsAreReadFromProc) {
    metrics::Metrics m("test");
    auto s = parse_exposition(m.render());
    auto now = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    auto cpu = value_of(s, "process_cpu_seconds_total");
    ASSERT_TRUE(cpu);
    EXPECT_GE(*cpu, 0);
    ASSERT_TRUE(value_of(s, "process_resident_memory_bytes"));
    EXPECT_GT(*value_of(s, "process_resident_memory_bytes"), 1 << 20);
    ASSERT_TRUE(value_of(s, "process_virtual_memory_bytes"));
    EXPECT_GE(*value_of(s, "process_virtual_memory_bytes"),
              *value_of(s, "process_resident_memory_bytes"));
    ASSERT_TRUE(value_of(s, "process_open_fds"));
    EXPECT_GE(*value_of(s, "process_open_fds"), 3);  // stdin, stdout, stderr
    ASSERT_TRUE(value_of(s, "process_max_fds"));
    EXPECT_GE(*value_of(s, "process_max_fds"), *value_of(s, "process_open_fds"));
    auto start = value_of(s, "process_start_time_seconds");
    ASSERT_TRUE(start);
    EXPECT_LE(*start, now + 2);
    EXPECT_GT(*start, now - 24 * 3600) << "this test process started within the day";

    // Opening descriptors shows in the next scrape.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    auto after = value_of(parse_exposition(m.render()), "process_open_fds");
    ::close(fds[0]);
    ::close(fds[1]);
    EXPECT_EQ(*after, *value_of(s, "process_open_fds") + 2);
}

TEST(Metrics, FamilyNamesAreExactlyWhatARenderShows) {
    metrics::Metrics m("test");
    auto cm = m.apply(*load(two_listener_yaml()));
    cm->set_certificate_expiry(0, 2e9);
    std::set<std::string> rendered;
    for (const auto& s : parse_exposition(m.render())) rendered.insert(family_of(s.name));
    std::set<std::string> listed(metrics::Metrics::family_names().begin(),
                                 metrics::Metrics::family_names().end());
    EXPECT_EQ(rendered, listed);
    EXPECT_EQ(listed.size(), 18u + 4u + 6u)
        << "SPEC §6 families, the four of §9, and six process_* metrics";
}

TEST(Metrics, BeforeRenderHookRunsOnEachRender) {
    metrics::Metrics m("test");
    auto cm = m.apply(*load(two_listener_yaml()));
    int calls = 0;
    m.set_before_render([&] {
        ++calls;
        cm->upstream(0)->queue_length->Set(calls);
    });
    m.render();
    auto s = parse_exposition(m.render());
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(value_of(s, P + "upstream_queue_length", {{"upstream", "pool"}}), 2);
}

TEST(Metrics, RenderPassesPromtoolCheckMetrics) {
    REQUIRE_PROMTOOL();
    metrics::Metrics m("0.1.0");
    auto cm = m.apply(*load(two_listener_yaml()));
    cm->set_certificate_expiry(0, 2e9);
    cm->requests(0)->record(200, 0.3);
    cm->server(0, 0)->response(200, 0.1);
    TempFile f(m.render());
    auto r = run_shell("sh -c 'promtool check metrics < " + f.path() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("problem"), std::string::npos) << r.output;
}

// --- servers given by host name ------------------------------------------------------

// `base` with the pool's first server turned into host name "gpu.lan"
// resolving to `addresses` (as if DNS had answered so).
std::shared_ptr<const config::Config> with_host_name(const config::Config& base,
                                                     std::vector<std::string> addresses) {
    auto c = std::make_shared<config::Config>(base);
    auto& s = c->upstreams[0].servers[0];
    s.address.host = "gpu.lan";
    s.host_name = true;
    s.resolved.clear();
    for (const auto& a : addresses) s.resolved.push_back(boost::asio::ip::make_address(a));
    return c;
}

TEST(HostNameServers, RuntimeAndMetricsAgreeIndexByIndex) {
    metrics::Metrics m("test");
    auto cfg = with_host_name(*load(two_listener_yaml("9001, 9002")), {"10.0.0.5", "10.0.0.6"});
    auto rt = app::Runtime::build(cfg, nullptr, &m);
    const auto& servers = rt->upstream(0).servers();
    ASSERT_EQ(servers.size(), 3u);
    ASSERT_EQ(rt->metrics->server_count(0), 3u);
    const std::vector<std::string> names = {"gpu.lan:9001/10.0.0.5", "gpu.lan:9001/10.0.0.6",
                                            "127.0.0.1:9002"};
    for (std::size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(servers[i]->name(), names[i]);
        EXPECT_EQ(rt->metrics->server(0, i), rt->metrics->server("pool", names[i])) << names[i];
    }
    EXPECT_EQ(servers[1]->endpoint().address(), boost::asio::ip::make_address("10.0.0.6"));
    EXPECT_EQ(servers[1]->endpoint().port(), 9001);
    // The Host header and the TLS name come from the configured host:port.
    EXPECT_EQ(servers[0]->authority(), "gpu.lan:9001");
    EXPECT_EQ(servers[2]->authority(), "127.0.0.1:9002");
    auto s = parse_exposition(m.render());
    EXPECT_GT(count_with(s, "server", "gpu.lan:9001/10.0.0.5"), 0u);
    EXPECT_GT(count_with(s, "server", "gpu.lan:9001/10.0.0.6"), 0u);
}

TEST(HostNameServers, ANewAddressSetKeepsTheServersThatStay) {
    metrics::Metrics m("test");
    auto base = load(two_listener_yaml("9001, 9002"));
    auto rt1 = app::Runtime::build(with_host_name(*base, {"10.0.0.5", "10.0.0.6"}), nullptr, &m);
    const auto stays = rt1->upstream(0).servers()[1];  // 10.0.0.6
    upstream::ServerLease held(stays.get());
    auto rt2 = app::Runtime::build(with_host_name(*base, {"10.0.0.6", "10.0.0.7"}), rt1.get(), &m);
    const auto& servers = rt2->upstream(0).servers();
    ASSERT_EQ(servers.size(), 3u);
    EXPECT_EQ(servers[0], stays) << "same object: its in-flight count and health carry over";
    EXPECT_EQ(servers[0]->in_flight(), 1);
    EXPECT_EQ(servers[1]->name(), "gpu.lan:9001/10.0.0.7");
    EXPECT_EQ(rt2->metrics->server(0, 0), rt1->metrics->server(0, 1)) << "and its series";
    EXPECT_EQ(rt2->metrics->server("pool", "gpu.lan:9001/10.0.0.5"), nullptr);
}

// --- app::Runtime: a listener by name ----------------------------------------------------------

TEST(AppRuntime, FindsEachListenerWithItsIndexAndMetrics) {
    metrics::Metrics m("test");
    auto rt = app::Runtime::build(load(two_listener_yaml()), nullptr, &m);
    ASSERT_EQ(rt->listeners().size(), 2u);
    const auto* internal = rt->listener("internal");
    ASSERT_NE(internal, nullptr);
    EXPECT_EQ(internal, &rt->listeners()[1]);
    EXPECT_EQ(internal->config, &rt->config->listeners[1]);
    EXPECT_EQ(internal->index, 1u);
    EXPECT_EQ(internal->metrics, rt->metrics->listener(1));
    EXPECT_EQ(internal->tls, nullptr) << "plain HTTP";
    EXPECT_EQ(rt->listener("public")->index, 0u);
    EXPECT_EQ(rt->listener("gone"), nullptr);
    EXPECT_EQ(&rt->upstream(1), rt->upstreams()[1].get());
    EXPECT_EQ(rt->upstream(1).name(), "batch");
}

TEST(AppRuntime, WithoutMetricsListenersHaveNoHandles) {
    auto rt = app::Runtime::build(load(two_listener_yaml()), nullptr);
    EXPECT_EQ(rt->metrics, nullptr);
    EXPECT_EQ(rt->listener("public")->metrics, nullptr);
}

// --- scrape-time sampling and readiness ------------------------------------------------------

TEST(SampleUpstreams, CopiesInFlightAndUsableFromTheServers) {
    metrics::Metrics m("test");
    auto cfg = load(two_listener_yaml());
    auto set = upstream::UpstreamSet::build(cfg, nullptr, false);
    auto cm = m.apply(*cfg);
    const auto& pool = set->upstreams[0]->servers();
    upstream::ServerLease a(pool[1].get()), b(pool[1].get());
    pool[0]->on_connect_failure();
    metrics::sample_upstreams(*set, *cm);
    EXPECT_EQ(cm->server(0, 1)->in_flight->Value(), 2);
    EXPECT_EQ(cm->server(0, 0)->in_flight->Value(), 0);
    EXPECT_EQ(cm->server(0, 0)->healthy->Value(), 0);
    EXPECT_EQ(cm->server(0, 1)->healthy->Value(), 1);
    a.release();
    metrics::sample_upstreams(*set, *cm);
    EXPECT_EQ(cm->server(0, 1)->in_flight->Value(), 1);
}

TEST(Readiness, EveryUpstreamNeedsAUsableServer) {
    auto set = upstream::UpstreamSet::build(load(two_listener_yaml()), nullptr, false);
    EXPECT_EQ(admin::unready_upstream(*set), std::nullopt);
    set->upstreams[0]->servers()[0]->on_connect_failure();
    EXPECT_EQ(admin::unready_upstream(*set), std::nullopt) << "9002 is still usable";
    set->upstreams[1]->servers()[0]->on_connect_failure();
    auto why = admin::unready_upstream(*set);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("upstream batch"), std::string::npos) << *why;
}

// --- the admin: section ----------------------------------------------------------------

namespace {
const std::string kMinimal = two_listener_yaml();

std::vector<std::string> errors_of(const std::string& yaml) {
    return config::load_config_string(yaml).errors;
}
}  // namespace

TEST(AdminConfig, DefaultsToLoopbackPort9100) {
    auto c = load(kMinimal);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->admin.address.to_string(), "127.0.0.1:9100");
    EXPECT_EQ(c->admin.ip.to_string(), "127.0.0.1");
    namespace ip = boost::asio::ip;
    EXPECT_EQ(c->admin.access.decide(ip::make_address("127.0.0.1")), access::Decision::allowed);
    EXPECT_EQ(c->admin.access.decide(ip::make_address("::1")), access::Decision::allowed);
    EXPECT_EQ(c->admin.access.decide(ip::make_address("127.0.0.2")), access::Decision::not_allowed);
    EXPECT_EQ(c->admin.access.decide(ip::make_address("10.0.0.1")), access::Decision::not_allowed);
}

TEST(AdminConfig, ReadsAddressAllowAndDeny) {
    auto c = load(kMinimal +
                  "admin:\n  address: \"[::1]:0\"\n  access:\n    allow: [10.0.0.0/8]\n"
                  "    deny: [10.0.0.66/32]\n");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->admin.address.port, 0);
    EXPECT_EQ(c->admin.ip.to_string(), "::1");
    namespace ip = boost::asio::ip;
    EXPECT_EQ(c->admin.access.decide(ip::make_address("10.1.2.3")), access::Decision::allowed);
    EXPECT_EQ(c->admin.access.decide(ip::make_address("10.0.0.66")), access::Decision::deny_list);
    EXPECT_EQ(c->admin.access.decide(ip::make_address("127.0.0.1")), access::Decision::not_allowed)
        << "a written allow replaces the default";
    auto d = load(kMinimal + "admin: {access: {deny: [\"::1/128\"]}}\n");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->admin.address.to_string(), "127.0.0.1:9100");
    EXPECT_EQ(d->admin.access.decide(ip::make_address("127.0.0.1")), access::Decision::allowed);
    EXPECT_EQ(d->admin.access.decide(ip::make_address("::1")), access::Decision::deny_list);
}

TEST(AdminConfig, EveryMistakeIsReportedWithItsPath) {
    auto e = errors_of(kMinimal +
                       "admin:\n  address: localhost:9100\n  acces: {}\n  access:\n"
                       "    allow: [10.0.0.1/8]\n    deny: [nope]\n    on_deny: close\n");
    std::string all;
    for (const auto& x : e) all += x + "\n";
    EXPECT_EQ(e.size(), 5u) << all;
    for (const char* path : {"admin.address: ", "admin.acces: ", "admin.access.allow[0]: ",
                             "admin.access.deny[0]: ", "admin.access.on_deny: "})
        EXPECT_NE(all.find(path), std::string::npos) << path << "\n" << all;
    EXPECT_NE(all.find("host names are not accepted"), std::string::npos) << all;

    auto empty = errors_of(kMinimal + "admin: {access: {allow: []}}\n");
    ASSERT_EQ(empty.size(), 1u);
    EXPECT_EQ(empty[0].rfind("admin.access.allow: must not be empty", 0), 0u) << empty[0];

    auto clash = errors_of(
        "listeners: [{name: l, address: 127.0.0.1:9100, access: {allow: [127.0.0.0/8]}, "
        "upstream: u}]\nupstreams: [{name: u, servers: [{address: 127.0.0.1:9001}]}]\n");
    ASSERT_EQ(clash.size(), 1u);
    EXPECT_EQ(clash[0], "admin.address: 127.0.0.1:9100 is already used by listeners[0]");

    EXPECT_EQ(errors_of(kMinimal + "admin: [1]\n").size(), 1u);
    EXPECT_EQ(errors_of(kMinimal + "admin: {address: \"127.0.0.1:70000\"}\n").size(), 1u);
}

// --- the admin listener ------------------------------------------------------------------

namespace {

struct RawResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

int connect_to(std::uint16_t port, const char* source = nullptr) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (source) {
        sockaddr_in src{};
        src.sin_family = AF_INET;
        ::inet_pton(AF_INET, source, &src.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
            ::close(fd);
            return -1;
        }
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Sends `request` and reads one response framed by Content-Length (none for HEAD).
std::optional<RawResponse> http_exchange(int fd, const std::string& request, bool head = false) {
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
        return std::nullopt;
    std::string data;
    std::size_t head_end = std::string::npos;
    RawResponse r;
    std::size_t body_len = 0;
    for (;;) {
        if (head_end == std::string::npos) {
            head_end = data.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                std::istringstream h(data.substr(0, head_end));
                std::string line;
                std::getline(h, line);
                if (line.size() < 12) return std::nullopt;
                r.status = std::stoi(line.substr(9, 3));
                while (std::getline(h, line)) {
                    if (!line.empty() && line.back() == '\r') line.pop_back();
                    auto colon = line.find(':');
                    if (colon == std::string::npos) continue;
                    std::string name = line.substr(0, colon);
                    for (auto& ch : name) ch = static_cast<char>(std::tolower(ch));
                    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
                }
                auto cl = r.headers.find("content-length");
                body_len = (cl == r.headers.end() || head) ? 0 : std::stoul(cl->second);
            }
        }
        if (head_end != std::string::npos && data.size() >= head_end + 4 + body_len) {
            r.body = data.substr(head_end + 4, body_len);
            return r;
        }
        char buf[65536];
        auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return std::nullopt;
        data.append(buf, static_cast<std::size_t>(n));
    }
}

std::string request_text(const std::string& path, const std::string& method = "GET",
                const std::string& extra = "") {
    return method + " " + path + " HTTP/1.1\r\nHost: admin\r\n" + extra + "\r\n";
}

// True when the peer closed (EOF or reset) without sending a byte.
bool closed_without_data(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 3000) <= 0) return false;
    char c;
    auto n = ::recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

class AdminServerTest : public ::testing::Test {
protected:
    void start(const std::string& admin_yaml = "admin: {address: 127.0.0.1:0}\n") {
        cfg_ = load(kMinimal + admin_yaml);
        ASSERT_TRUE(cfg_);
        cm_ = metrics_.apply(*cfg_);
        server_ = std::make_unique<admin::AdminServer>(io_, cfg_->admin, metrics_);
        server_->set_readiness_check([this]() -> std::optional<std::string> {
            if (unready_) return std::string("upstream pool has no usable server");
            return std::nullopt;
        });
        server_->start();
        port_ = server_->local_endpoint().port();
        ASSERT_NE(port_, 0);
        thread_ = std::thread([this] { io_.run(); });
    }
    void TearDown() override {
        if (server_) server_->stop();
        guard_.reset();
        if (thread_.joinable()) {
            // stop() is posted; give it a moment, then stop the loop anyway.
            std::this_thread::sleep_for(20ms);
            io_.stop();
            thread_.join();
        }
        server_.reset();
    }

    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
        io_.get_executor()};
    metrics::Metrics metrics_{"4.5.6"};
    std::shared_ptr<const config::Config> cfg_;
    std::shared_ptr<const metrics::ConfigMetrics> cm_;
    std::unique_ptr<admin::AdminServer> server_;
    std::thread thread_;
    std::uint16_t port_ = 0;
    std::atomic<bool> unready_{false};
};

}  // namespace

TEST_F(AdminServerTest, ServesMetricsHealthAndNotFound) {
    ASSERT_NO_FATAL_FAILURE(start());
    cm_->requests(0)->record(200, 0.2);
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    auto m = http_exchange(fd, request_text("/metrics"));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 200);
    EXPECT_EQ(m->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    auto s = parse_exposition(m->body);
    EXPECT_EQ(value_of(s, P + "build_info", {{"version", "4.5.6"}}), 1);
    EXPECT_EQ(
        value_of(
            s, P + "requests_total",
            {{"listener", "public"}, {"route", "default"}, {"upstream", "pool"}, {"code", "200"}}),
        1);

    // Same connection: keep-alive.
    auto h = http_exchange(fd, request_text("/healthz"));
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    EXPECT_EQ(h->body, "ok\n");
    auto q = http_exchange(fd, request_text("/metrics?name[]=x"));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->status, 200) << "a query string is ignored";
    auto nf = http_exchange(fd, request_text("/metricz"));
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    auto post = http_exchange(fd, request_text("/metrics", "POST", "Content-Length: 0\r\n"));
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 405);
    EXPECT_EQ(post->headers["allow"], "GET, HEAD");
    ::close(fd);
}

TEST_F(AdminServerTest, HeadHasTheLengthOfGetAndNoBody) {
    ASSERT_NO_FATAL_FAILURE(start());
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    auto h = http_exchange(fd, request_text("/healthz", "HEAD"), true);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    EXPECT_EQ(h->headers["content-length"], "3");
    EXPECT_EQ(h->body, "");
    // Were a body sent after the HEAD response, it would be read as this
    // response's status line.
    auto g = http_exchange(fd, request_text("/healthz"));
    ASSERT_TRUE(g);
    EXPECT_EQ(g->status, 200);
    EXPECT_EQ(g->body, "ok\n");
    ::close(fd);
}

TEST_F(AdminServerTest, ConnectionCloseIsHonoured) {
    ASSERT_NO_FATAL_FAILURE(start());
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    auto r = http_exchange(fd, request_text("/healthz", "GET", "Connection: close\r\n"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(closed_without_data(fd));
    ::close(fd);
}

TEST_F(AdminServerTest, ReadyzFollowsServingAndTheCheck) {
    ASSERT_NO_FATAL_FAILURE(start());
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    auto r = http_exchange(fd, request_text("/readyz"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << "not ready before the listeners are bound";
    server_->set_serving(true);
    r = http_exchange(fd, request_text("/readyz"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "ready\n");
    unready_ = true;
    r = http_exchange(fd, request_text("/readyz"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_NE(r->body.find("upstream pool has no usable server"), std::string::npos) << r->body;
    unready_ = false;
    server_->set_serving(false);  // draining
    r = http_exchange(fd, request_text("/readyz"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    auto h = http_exchange(fd, request_text("/healthz"));
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200) << "alive while draining";
    ::close(fd);
}

TEST_F(AdminServerTest, RefusedPeersAreClosedBeforeAnyByte) {
    ASSERT_NO_FATAL_FAILURE(
        start("admin: {address: 127.0.0.1:0, access: {allow: [127.0.0.1/32], deny: "
              "[127.0.0.3/32]}}\n"));
    int ok = connect_to(port_, "127.0.0.1");
    ASSERT_GE(ok, 0);
    auto r = http_exchange(ok, request_text("/healthz"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ::close(ok);

    for (const char* source : {"127.0.0.2", "127.0.0.3"}) {
        int fd = connect_to(port_, source);
        ASSERT_GE(fd, 0) << source;
        std::string req = request_text("/metrics");
        ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
        EXPECT_TRUE(closed_without_data(fd)) << source;
        ::close(fd);
    }

    // A reload that admits 127.0.0.2.
    access::Policy p;
    p.allow.add("127.0.0.0/8");
    server_->update_access(p);
    std::this_thread::sleep_for(50ms);
    int fd = connect_to(port_, "127.0.0.2");
    ASSERT_GE(fd, 0);
    auto after = http_exchange(fd, request_text("/healthz"));
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 200);
    ::close(fd);
}

TEST_F(AdminServerTest, MalformedRequestGets400AndClose) {
    ASSERT_NO_FATAL_FAILURE(start());
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    auto r = http_exchange(fd, "GARBAGE\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_TRUE(closed_without_data(fd));
    ::close(fd);
}

TEST_F(AdminServerTest, StopClosesOpenConnections) {
    ASSERT_NO_FATAL_FAILURE(start());
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(http_exchange(fd, request_text("/healthz")));
    server_->stop();
    EXPECT_TRUE(closed_without_data(fd));
    ::close(fd);
    EXPECT_LT(connect_to(port_), 0) << "the acceptor is closed";
}

TEST_F(AdminServerTest, AnAddressInUseFailsWithItsKeyPath) {
    ASSERT_NO_FATAL_FAILURE(start());
    boost::asio::io_context other;
    auto cfg = load(kMinimal + "admin: {address: 127.0.0.1:" + std::to_string(port_) + "}\n");
    admin::AdminServer second(other, cfg->admin, metrics_);
    try {
        second.start();
        ADD_FAILURE() << "a second admin listener bound the same port";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("admin.address: cannot bind 127.0.0.1:" +
                                             std::to_string(port_)),
                  std::string::npos)
            << e.what();
    }
}

// --- deploy/ -----------------------------------------------------------------------------

namespace {

// Metric names a PromQL expression selects: identifiers before a `{`, and
// every deepseek_gateway_* / process_* token wherever it stands.
std::set<std::string> metric_names(const std::string& expr) {
    std::set<std::string> out;
    static const std::regex selector(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)\{)");
    static const std::regex ours(R"(\b((deepseek_gateway|process)_[a-zA-Z0-9_]+))");
    for (auto* re : {&selector, &ours})
        for (std::sregex_iterator it(expr.begin(), expr.end(), *re), end; it != end; ++it)
            out.insert((*it)[1].str());
    return out;
}

// `up` is made by Prometheus for every scrape target, not exported.
void expect_exported(const std::set<std::string>& names, const std::string& where) {
    const auto& families = metrics::Metrics::family_names();
    for (const auto& n : names) {
        if (n == "up") continue;
        auto f = family_of(n);
        EXPECT_NE(std::find(families.begin(), families.end(), f), families.end())
            << where << " uses " << n << ", which the gateway does not export";
    }
}

void collect_exprs(const boost::json::value& v, std::vector<std::string>& out) {
    if (v.is_object()) {
        const auto& obj = v.as_object();
        // A data source variable's "query" is the data source type.
        auto type = obj.if_contains("type");
        if (type && type->is_string() && type->as_string() == "datasource") return;
        for (const auto& [k, child] : obj) {
            if ((k == "expr" || k == "definition") && child.is_string())
                out.emplace_back(child.as_string().c_str());
            else if (k == "query" && child.is_string())
                out.emplace_back(child.as_string().c_str());
            else
                collect_exprs(child, out);
        }
    } else if (v.is_array()) {
        for (const auto& child : v.as_array()) collect_exprs(child, out);
    }
}

}  // namespace

TEST(Deploy, AlertRulesPassPromtoolAndTheirTests) {
    REQUIRE_PROMTOOL();
    auto dir = source_path("deploy/prometheus");
    auto check = run_shell("promtool check rules " + dir + "/rules.yml");
    EXPECT_EQ(check.exit_code, 0) << check.output;
    auto config = run_shell("promtool check config " + dir + "/prometheus.yml");
    EXPECT_EQ(config.exit_code, 0) << config.output;
    auto tests = run_shell("sh -c 'cd " + dir + " && promtool test rules rules_test.yml'");
    EXPECT_EQ(tests.exit_code, 0) << tests.output;
}

TEST(Deploy, AlertRulesCoverTheIssueAndNameOnlyExportedMetrics) {
    auto rules = YAML::LoadFile(source_path("deploy/prometheus/rules.yml"));
    std::set<std::string> alerts, used;
    for (const auto& group : rules["groups"])
        for (const auto& rule : group["rules"]) {
            alerts.insert(rule["alert"].as<std::string>());
            auto names = metric_names(rule["expr"].as<std::string>());
            expect_exported(names, "alert " + rule["alert"].as<std::string>());
            used.insert(names.begin(), names.end());
        }
    EXPECT_EQ(alerts, (std::set<std::string>{
                          "DeepseekGatewayDown", "DeepseekGatewayHighErrorRatio",
                          "DeepseekGatewayUpstreamServerUnhealthy",
                          "DeepseekGatewayUpstreamNoHealthyServer",
                          "DeepseekGatewayCertificateExpiringSoon", "DeepseekGatewayFirstByteSlow"}));
    for (const auto& n : {P + "requests_total", P + "upstream_server_healthy",
                          P + "tls_certificate_expiry_timestamp_seconds",
                          P + "upstream_first_byte_seconds_bucket"})
        EXPECT_TRUE(used.count(n)) << n;
}

TEST(Deploy, GrafanaDashboardParsesAndNamesOnlyExportedMetrics) {
    auto text = read_file(source_path("deploy/grafana/deepseek-gateway.json"));
    ASSERT_FALSE(text.empty());
    boost::system::error_code ec;
    auto doc = boost::json::parse(text, ec);
    ASSERT_FALSE(ec) << "invalid JSON: " << ec.message();
    ASSERT_TRUE(doc.is_object());
    EXPECT_EQ(doc.as_object().at("uid").as_string(), "deepseek-gateway");
    std::vector<std::string> exprs;
    collect_exprs(doc, exprs);
    ASSERT_GE(exprs.size(), 20u);
    std::set<std::string> used;
    for (const auto& e : exprs) {
        auto names = metric_names(e);
        EXPECT_FALSE(names.empty()) << "a query that selects no metric: " << e;
        expect_exported(names, "dashboard query " + e);
        used.insert(names.begin(), names.end());
    }
    // The panels the issue asks for.
    for (const auto& n : {P + "requests_total", P + "request_duration_seconds_bucket",
                          P + "upstream_first_byte_seconds_bucket", P + "upstream_requests_in_flight",
                          P + "downstream_connections_active", P + "received_bytes_total",
                          P + "sent_bytes_total", P + "access_denied_total",
                          P + "tls_certificate_expiry_timestamp_seconds",
                          P + "config_reloads_total"})
        EXPECT_TRUE(used.count(n)) << "no panel shows " << n;
}

TEST(Deploy, MetricNameExtractionSeesEveryName) {
    // The cross-checks above are only as good as this.
    auto n = metric_names(
        "sum by (code) (rate(deepseek_gateway_requests_total{code=~\"5..\"}[5m])) / "
        "label_values(deepseek_gateway_build_info, instance) + up{job=\"x\"} + bogus_metric{a=\"b\"}");
    EXPECT_EQ(n, (std::set<std::string>{P + "requests_total", P + "build_info", "up",
                                        "bogus_metric"}));
}
