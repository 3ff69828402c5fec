// The servers' own load (SPEC §9, upstream/load_scraper.hpp): what is read
// from a Prometheus text answer of vLLM and SGLang, and the LoadScraper
// against scripted HTTP servers on loopback.

#include "deepseek_gateway/upstream/load_scraper.hpp"

#include "deepseek_gateway/metrics/metrics.hpp"
#include "scripted_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <thread>

namespace dsgw::upstream {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using testing::LogCapture;
using testing::ScriptedServer;
using Load = UpstreamServer::ScrapedLoad;

// ---- what is read from an answer ---------------------------------------------

// A vLLM 0.10 server's GET /metrics, cut to a few families of each kind
// around the three it reads (prometheus_client's output: HELP and TYPE
// lines, floats with ".0", histograms with _bucket/_sum/_count/_created).
const char* const kVllm = R"(# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 18234.0
python_gc_objects_collected_total{generation="1"} 4467.0
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="12",patchlevel="3",version="3.12.3"} 1.0
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 9.876054528e+09
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 5.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 0.4375
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 1.234567e+06
# HELP vllm:prefix_cache_queries_created Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_created gauge
vllm:prefix_cache_queries_created{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 1.7331e+09
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 987654.0
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 0.0
# HELP vllm:request_queue_time_seconds Histogram of time spent in WAITING phase for request.
# TYPE vllm:request_queue_time_seconds histogram
vllm:request_queue_time_seconds_sum{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 12.5
vllm:request_queue_time_seconds_bucket{engine="0",le="0.3",model_name="deepseek-ai/DeepSeek-R1"} 10.0
vllm:request_queue_time_seconds_bucket{engine="0",le="0.5",model_name="deepseek-ai/DeepSeek-R1"} 14.0
vllm:request_queue_time_seconds_bucket{engine="0",le="+Inf",model_name="deepseek-ai/DeepSeek-R1"} 20.0
vllm:request_queue_time_seconds_count{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 20.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_sum{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 41.2
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="deepseek-ai/DeepSeek-R1"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="deepseek-ai/DeepSeek-R1"} 20.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 20.0
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",gpu_memory_utilization="0.9",num_gpu_blocks="27000"} 1.0
# HELP http_requests_total Total number of requests by method, status and handler.
# TYPE http_requests_total counter
http_requests_total{handler="/v1/chat/completions",method="POST",status="2xx"} 20.0
)";

// An SGLang 0.4 server's (--enable-metrics), cut the same way.
const char* const kSglang = R"(# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{engine_type="unified",model_name="deepseek-ai/DeepSeek-V3",pp_rank="0",tp_rank="0"} 12.0
# HELP sglang:num_used_tokens The number of used tokens.
# TYPE sglang:num_used_tokens gauge
sglang:num_used_tokens{engine_type="unified",model_name="deepseek-ai/DeepSeek-V3",pp_rank="0",tp_rank="0"} 123456.0
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{engine_type="unified",model_name="deepseek-ai/DeepSeek-V3",pp_rank="0",tp_rank="0"} 0.62
# HELP sglang:gen_throughput The generation throughput (token/s).
# TYPE sglang:gen_throughput gauge
sglang:gen_throughput{engine_type="unified",model_name="deepseek-ai/DeepSeek-V3",pp_rank="0",tp_rank="0"} 850.3
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{engine_type="unified",model_name="deepseek-ai/DeepSeek-V3",pp_rank="0",tp_rank="0"} 4.0
# HELP sglang:cache_hit_rate The prefix cache hit rate.
# TYPE sglang:cache_hit_rate gauge
sglang:cache_hit_rate{engine_type="unified",model_name="deepseek-ai/DeepSeek-V3",pp_rank="0",tp_rank="0"} 0.71
# HELP sglang:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE sglang:time_to_first_token_seconds histogram
sglang:time_to_first_token_seconds_sum{model_name="deepseek-ai/DeepSeek-V3"} 33.1
sglang:time_to_first_token_seconds_bucket{le="0.1",model_name="deepseek-ai/DeepSeek-V3"} 3.0
sglang:time_to_first_token_seconds_bucket{le="+Inf",model_name="deepseek-ai/DeepSeek-V3"} 40.0
sglang:time_to_first_token_seconds_count{model_name="deepseek-ai/DeepSeek-V3"} 40.0
)";

const char* const kNoMetric = "no vLLM or SGLang load metric in the answer";

Load parsed(std::string_view text) {
    std::string error;
    auto l = parse_load_metrics(text, error);
    EXPECT_TRUE(l) << error << "\n" << text;
    return l.value_or(Load{~0u, ~0u, -1});
}

std::string refused(std::string_view text) {
    std::string error;
    auto l = parse_load_metrics(text, error);
    EXPECT_FALSE(l) << text;
    return error;
}

#define EXPECT_LOAD(text, r, w, kv)             \
    do {                                        \
        const auto got_ = parsed(text);         \
        EXPECT_EQ(got_.running, r) << (text);   \
        EXPECT_EQ(got_.waiting, w) << (text);   \
        EXPECT_EQ(got_.kv_usage, kv) << (text); \
    } while (0)

TEST(LoadMetrics, ReadsVllmsNamesAmongTheOtherFamilies) {
    EXPECT_LOAD(kVllm, 3u, 5u, 0.4375);
}

TEST(LoadMetrics, ReadsOlderVllmsGpuCacheUsageAndNotItsCpuCache) {
    EXPECT_LOAD(
        "# TYPE vllm:gpu_cache_usage_perc gauge\n"
        "vllm:gpu_cache_usage_perc{model_name=\"r1\"} 0.25\n"
        "vllm:cpu_cache_usage_perc{model_name=\"r1\"} 0.75\n"
        "vllm:num_requests_swapped{model_name=\"r1\"} 9.0\n"
        "vllm:num_requests_running{model_name=\"r1\"} 2.0\n",
        2u, 0u, 0.25);
}

TEST(LoadMetrics, ReadsSglangsNames) {
    EXPECT_LOAD(kSglang, 12u, 4u, 0.62);
}

TEST(LoadMetrics, SeveralSeriesAreSummedAndKvUseIsTheLargest) {
    // Two models (or data-parallel engines) on one server.
    EXPECT_LOAD(
        "vllm:num_requests_running{engine=\"0\",model_name=\"a\"} 3.0\n"
        "vllm:num_requests_running{engine=\"1\",model_name=\"b\"} 4.0\n"
        "vllm:num_requests_waiting{engine=\"0\",model_name=\"a\"} 1.0\n"
        "vllm:num_requests_waiting{engine=\"1\",model_name=\"b\"} 10.0\n"
        "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"a\"} 0.9\n"
        "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"b\"} 0.3\n",
        7u, 11u, 0.9);
    // Counts are rounded once, after the sum.
    EXPECT_LOAD(
        "sglang:num_queue_reqs{dp_rank=\"0\"} 1.4\nsglang:num_queue_reqs{dp_rank=\"1\"} 1.4\n", 0u,
        3u, 0.0);
}

TEST(LoadMetrics, LabelValuesMayHoldEscapesBracesCommasAndSpaces) {
    EXPECT_LOAD(
        R"(vllm:num_requests_running{model_name="a \"quoted\" {name}, with spaces",x="}"} 2)"
        "\n"
        R"(vllm:num_requests_waiting{path="C:\\models\\",note="line\nbreak",b="=,}{"} 6)"
        "\n"
        R"(vllm:kv_cache_usage_perc{ a = "1" , b="2", } 0.5)"
        "\n",
        2u, 6u, 0.5);
    // An empty label set, no labels at all.
    EXPECT_LOAD("vllm:num_requests_running{} 1\nvllm:num_requests_waiting 8\n", 1u, 8u, 0.0);
}

TEST(LoadMetrics, ValuesInEveryFloatSpellingWithOrWithoutATimestamp) {
    EXPECT_LOAD(
        "vllm:num_requests_running 1e1\n"
        "vllm:num_requests_waiting 2.5E+0 1733100000000\n"
        "vllm:kv_cache_usage_perc\t0.125\t-5\r\n",
        10u, 3u, 0.125);
    // Negative, NaN and infinite values are ignored; the rest counts.
    EXPECT_LOAD(
        "vllm:num_requests_running{e=\"0\"} NaN\n"
        "vllm:num_requests_running{e=\"1\"} +Inf\n"
        "vllm:num_requests_running{e=\"2\"} 4\n"
        "vllm:num_requests_waiting{e=\"0\"} -3\n"
        "vllm:num_requests_waiting{e=\"1\"} -Inf\n"
        "vllm:num_requests_waiting{e=\"2\"} 2\n"
        "vllm:kv_cache_usage_perc{e=\"0\"} Inf\n"
        "vllm:kv_cache_usage_perc{e=\"1\"} nan\n"
        "vllm:kv_cache_usage_perc{e=\"2\"} 0.2\n",
        4u, 2u, 0.2);
    // A count beyond 32 bits is the largest there is (UpstreamServer clamps further).
    EXPECT_LOAD("vllm:num_requests_waiting 1e12", 0u, 4294967295u, 0.0);
}

TEST(LoadMetrics, AServerWithOnlySomeNamesHasZeroForTheOthers) {
    EXPECT_LOAD("vllm:num_requests_waiting{model_name=\"r1\"} 7.0", 0u, 7u, 0.0);
    EXPECT_LOAD("sglang:token_usage 0.5\n", 0u, 0u, 0.5);
    // Present with only values it ignores: still a vLLM answer, all zero.
    EXPECT_LOAD("vllm:num_requests_running NaN\n", 0u, 0u, 0.0);
}

TEST(LoadMetrics, TextWithNoneOfTheNamesIsRefusedWithTheReason) {
    for (const char* text :
         {"", "\n\n",
          "# HELP vllm:num_requests_running Number of requests.\n"
          "# TYPE vllm:num_requests_running gauge\n",
          "python_info{version=\"3.12\"} 1.0\nhttp_requests_total 3\n",
          // Names that only begin or end like ours.
          "vllm:num_requests_running_total 3\nvllm:num_requests_waiting_by_reason{r=\"x\"} 2\n"
          "xvllm:kv_cache_usage_perc 0.5\nvllm:num_requests_runnin 1\n",
          "<html><body>Not Found</body></html>", "{\"object\":\"error\"}"})
        EXPECT_EQ(refused(text), kNoMetric) << text;
}

TEST(LoadMetrics, LinesThatDoNotParseAreSkipped) {
    const std::string garbage =
        "vllm:num_requests_running{model_name=\"unterminated} 50\n"
        "vllm:num_requests_running{model_name=unquoted} 50\n"
        "vllm:num_requests_running{\"no name\"} 50\n"
        "vllm:num_requests_running{a=\"1\"b=\"2\"} 50\n"
        "vllm:num_requests_running{a=\"1\" 50\n"
        "vllm:num_requests_running{a:b=\"1\"} 50\n"
        "vllm:num_requests_running{a=\"1\"}50\n"
        "vllm:num_requests_running50\n"
        "vllm:num_requests_running\n"
        "vllm:num_requests_running \n"
        "vllm:num_requests_running fifty\n"
        "vllm:num_requests_running 50 60 70\n"
        "vllm:num_requests_running 50 1.5\n"
        "vllm:num_requests_running 0x32\n"
        "vllm:num_requests_running ++50\n"
        "vllm:num_requests_running +-50\n"
        "vllm:num_requests_running 1e999\n"
        "vllm:num_requests_running 5O\n"
        "   \t \n"
        "\xff\xfe\x00 binary\n"s;  // (s: the NUL is part of the text)
    EXPECT_EQ(refused(garbage), kNoMetric);
    // Among good lines: only the good ones count.
    EXPECT_LOAD(garbage + "vllm:num_requests_running +50\nvllm:num_requests_waiting 1\n", 50u, 1u,
                0.0);
    // Leading blanks are allowed.
    EXPECT_LOAD("  vllm:num_requests_waiting 2\n", 0u, 2u, 0.0);
}

TEST(LoadMetrics, ATextCutAnywhereIsReadWithoutGoingPastItsEnd) {
    // Every prefix of a real answer, and lines cut inside a label value,
    // after a backslash, before the value: each is read or refused, no
    // more. (Under ASan a read past the end fails here.)
    const std::string full = kVllm;
    for (std::size_t n = 0; n <= full.size(); ++n) {
        const std::string cut = full.substr(0, n);  // its own allocation, exactly n bytes
        std::string error;
        auto l = parse_load_metrics(cut, error);
        if (l) {
            EXPECT_LE(l->running, 3u);
            EXPECT_LE(l->waiting, 5u);
        } else {
            EXPECT_EQ(error, kNoMetric);
        }
    }
    for (const char* text : {"vllm:num_requests_running{a=\"\\", "vllm:num_requests_running{a=\"x",
                             "vllm:num_requests_running{", "vllm:num_requests_running{a=",
                             "vllm:num_requests_running{a", "vllm:num_requests_running "})
        EXPECT_EQ(refused(text), kNoMetric) << text;
    // A final line without its newline counts.
    EXPECT_LOAD("vllm:num_requests_running 3", 3u, 0u, 0.0);
}

// ---- the scraper -------------------------------------------------------------

config::ServerConfig server_at(std::uint16_t port) {
    config::ServerConfig s;
    s.address = {"127.0.0.1", port};
    s.resolved = {boost::asio::ip::make_address("127.0.0.1")};
    return s;
}

// An upstream whose servers are scraped every `interval` (timeout: the
// interval, at most 2 s).
config::UpstreamConfig scraped(const std::string& name, std::vector<std::uint16_t> ports,
                               std::chrono::milliseconds interval = 10s) {
    config::UpstreamConfig u;
    u.name = name;
    for (auto p : ports) u.servers.push_back(server_at(p));
    u.load_metrics.enabled = true;
    u.load_metrics.interval = interval;
    return u;
}

std::shared_ptr<const config::Config> config_with(std::vector<config::UpstreamConfig> ups) {
    auto cfg = std::make_shared<config::Config>();
    cfg->upstreams = std::move(ups);
    return cfg;
}

std::string vllm(int running, int waiting, double kv) {
    const std::string m = "{engine=\"0\",model_name=\"m\"} ";
    std::string text = "# TYPE vllm:num_requests_running gauge\n";
    text += "vllm:num_requests_running" + m + std::to_string(running) + ".0\n";
    text += "vllm:num_requests_waiting" + m + std::to_string(waiting) + ".0\n";
    text += "vllm:kv_cache_usage_perc" + m + std::to_string(kv) + "\n";
    return text;
}

const char* const kText = "text/plain; version=0.0.4; charset=utf-8";

bool ready(std::future<void> f) {
    return f.wait_for(5s) == std::future_status::ready;
}

std::optional<Load> load_of(const UpstreamServer& s) {
    return s.scraped_load(Clock::now());
}

long running_of(const UpstreamServer& s) {
    auto l = load_of(s);
    return l ? static_cast<long>(l->running) : -1;
}

// A fixture: the set and its metric handles.
struct Scraped {
    explicit Scraped(std::shared_ptr<const config::Config> cfg)
        : set(UpstreamSet::build(cfg, nullptr, false)), handles(registry.apply(*cfg)) {}
    UpstreamServer& server(std::size_t u, std::size_t s) const {
        return *set->upstreams[u]->servers()[s];
    }
    double errors(std::size_t u, std::size_t s) const {
        return handles->server(u, s)->load_scrape_errors->Value();
    }
    metrics::Metrics registry{"test"};
    std::shared_ptr<const UpstreamSet> set;
    std::shared_ptr<const metrics::ConfigMetrics> handles;
};

TEST(LoadScraper, ReadsEachServersLoadFromItsEndpoint) {
    ScriptedServer a, b;
    a.answer(200, vllm(2, 7, 0.5), kText);
    b.answer(200, kSglang, kText);
    auto u = scraped("pool", {a.port(), b.port()});
    u.load_metrics.path = "/custom/metrics";
    Scraped s(config_with({u}));
    LoadScraper scraper;
    ASSERT_TRUE(ready(scraper.apply(s.set, s.handles)));
    auto la = load_of(s.server(0, 0));
    ASSERT_TRUE(la);
    EXPECT_EQ(la->running, 2u);
    EXPECT_EQ(la->waiting, 7u);
    EXPECT_NEAR(la->kv_usage, 0.5, 1e-4);
    EXPECT_NEAR(s.server(0, 0).load(Clock::now()), (2 + 7) * 1.5, 1e-3);
    auto lb = load_of(s.server(0, 1));
    ASSERT_TRUE(lb);
    EXPECT_EQ(lb->running, 12u);
    EXPECT_EQ(lb->waiting, 4u);
    EXPECT_EQ(s.errors(0, 0), 0);
    const auto req = a.last_request();
    EXPECT_EQ(req.rfind("GET /custom/metrics HTTP/1.1\r\n", 0), 0u) << req;
    EXPECT_NE(req.find("Host: 127.0.0.1:" + std::to_string(a.port()) + "\r\n"), std::string::npos)
        << req;
    EXPECT_NE(req.find("Accept: text/plain"), std::string::npos) << req;
}

TEST(LoadScraper, AsksNoServerOfAnUpstreamWithoutLoadMetrics) {
    ScriptedServer on, off;
    on.answer(200, vllm(1, 1, 0.1), kText);
    off.answer(200, vllm(1, 1, 0.1), kText);
    auto plain = scraped("plain", {off.port()});
    plain.load_metrics.enabled = false;
    Scraped s(config_with({plain, scraped("scraped", {on.port()})}));
    LoadScraper scraper;
    ASSERT_TRUE(ready(scraper.apply(s.set, s.handles)));
    EXPECT_TRUE(load_of(s.server(1, 0)));
    EXPECT_FALSE(load_of(s.server(0, 0)));
    EXPECT_EQ(off.requests(), 0);
    // Nothing to scrape at all: ready at once.
    Scraped none(config_with({plain}));
    ASSERT_TRUE(ready(scraper.apply(none.set, none.handles)));
    EXPECT_EQ(off.requests(), 0);
}

TEST(LoadScraper, AFailureIsCountedAndKeepsTheLastLoad) {
    ScriptedServer srv;
    srv.answer(200, vllm(3, 4, 0.25), kText);
    // A long interval: each round here is a new apply(), as a reload makes,
    // and the server's failing state carries over like a reload's.
    Scraped s(config_with({scraped("pool", {srv.port()}, 10s)}));
    LogCapture log;
    LoadScraper scraper;
    ASSERT_TRUE(ready(scraper.apply(s.set, s.handles)));
    ASSERT_TRUE(load_of(s.server(0, 0)));

    double errors = 0;
    auto still = [&](const char* what) {
        const int asked = srv.requests();
        ASSERT_TRUE(ready(scraper.apply(s.set, s.handles))) << what;
        EXPECT_GT(srv.requests(), asked) << what;
        EXPECT_EQ(s.errors(0, 0), ++errors) << what;
        auto l = load_of(s.server(0, 0));
        ASSERT_TRUE(l) << what;
        EXPECT_EQ(l->running, 3u) << what;
        EXPECT_EQ(l->waiting, 4u) << what;
    };
    srv.answer(500, "busy", "text/plain");
    still("500");
    srv.answer(200, "<html>hello</html>", "text/html");
    still("not metrics");
    srv.answer_raw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nvllm:num_requests_running 1\n");
    still("cut short");
    srv.answer_raw("");
    still("closed without a word");
    srv.answer(200, std::string(LoadScraper::kMaxBody + 1, '#') + "\n" + vllm(1, 1, 0), kText);
    still("over 1 MiB");
    // It works again: the new load.
    srv.answer(200, vllm(1, 0, 0), kText);
    ASSERT_TRUE(ready(scraper.apply(s.set, s.handles)));
    ASSERT_TRUE(load_of(s.server(0, 0)));
    EXPECT_EQ(load_of(s.server(0, 0))->running, 1u);
    EXPECT_EQ(s.errors(0, 0), errors);

    scraper.stop();  // no more log lines
    // One warning when it started failing, with why, then debug lines, then
    // one info line when it answered again.
    EXPECT_EQ(log.count("warning upstream pool server"), 1);
    EXPECT_EQ(log.count("GET /metrics failed: status 500; its last load counts for up to 30000 ms"),
              1);
    EXPECT_EQ(log.count("debug upstream pool server"), 4);
    EXPECT_EQ(log.count("GET /metrics failed again: " + std::string(kNoMetric)), 1);
    EXPECT_EQ(log.count("info upstream pool server 127.0.0.1:" + std::to_string(srv.port()) +
                        ": GET /metrics answers again"),
              1);
}

TEST(LoadScraper, ASilentServerFailsWithinTheTimeout) {
    ScriptedServer good, silent;
    good.answer(200, vllm(1, 2, 0.5), kText);
    silent.hang();
    Scraped s(config_with({scraped("pool", {silent.port(), good.port()}, 300ms)}));
    LogCapture log;
    LoadScraper scraper;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(ready(scraper.apply(s.set, s.handles)));
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 250ms);  // timeout(): the interval (300 ms)
    EXPECT_LT(took, 2s);
    EXPECT_TRUE(load_of(s.server(0, 1)));
    EXPECT_FALSE(load_of(s.server(0, 0)));
    EXPECT_GE(s.errors(0, 0), 1);  // (and more, one per interval)
    scraper.stop();                // no more log lines
    EXPECT_EQ(
        log.count("failed: no answer within 300 ms; its load is its requests in flight alone"), 1);
}

TEST(LoadScraper, ScrapesAgainEveryIntervalAndStopsAfterARoundIsReplaced) {
    ScriptedServer srv;
    srv.answer(200, vllm(1, 0, 0), kText);
    Scraped s(config_with({scraped("pool", {srv.port()}, 50ms)}));
    LoadScraper scraper;
    ASSERT_TRUE(ready(scraper.apply(s.set, s.handles)));
    srv.answer(200, vllm(9, 0, 0), kText);
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (running_of(s.server(0, 0)) != 9 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(running_of(s.server(0, 0)), 9);
    EXPECT_GE(srv.requests(), 2);
    // A reload that turns load_metrics off: the server is not asked again.
    auto off = scraped("pool", {srv.port()}, 50ms);
    off.load_metrics.enabled = false;
    Scraped next(config_with({off}));
    ASSERT_TRUE(ready(scraper.apply(next.set, next.handles)));
    // The old loop ends at its next wake-up (50 ms); then nothing for ten
    // intervals.
    std::this_thread::sleep_for(300ms);
    const int asked = srv.requests();
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(srv.requests(), asked);
}

TEST(LoadScraper, WithoutMetricsHandlesFailuresAreOnlyLogged) {
    ScriptedServer srv;
    srv.answer(503, "", kText);
    auto cfg = config_with({scraped("pool", {srv.port()})});
    auto set = UpstreamSet::build(cfg, nullptr, false);
    LoadScraper scraper;
    ASSERT_TRUE(ready(scraper.apply(set, nullptr)));
    EXPECT_EQ(srv.requests(), 1);
    EXPECT_FALSE(load_of(*set->upstreams[0]->servers()[0]));
}

}  // namespace
}  // namespace dsgw::upstream
