// The mock inference server as a simulated vLLM (tools/mock_server/README.md,
// "Prefix cache"): a prefix cache of --prefix-cache-blocks blocks of
// --cache-block-bytes, prefill time for the bytes it misses, --max-batch with
// a FIFO queue behind it, GET /metrics in vLLM's names, and POST /mock/load.
// The cache-aware balancing benchmark and the load_metrics scraper rely on
// these numbers, so they are checked exactly.

#include "harness.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

namespace dsgw::it {
namespace {

std::string post(const std::string& path, const std::string& body,
                 std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return http_request("POST", path, headers, body);
}

// A chat request with one user message; its prompt text is "user" + content.
std::string chat_prompt(const std::string& content, const std::string& extra = "") {
    return "{" + extra + R"("messages":[{"role":"user","content":")" + content + R"("}]})";
}

struct Usage {
    std::int64_t prompt = -1;
    std::int64_t completion = -1;
    std::int64_t cached = -1;  // -1: no prompt_tokens_details
};

Usage usage_in(const Json* u) {
    Usage out;
    if (!u) return out;
    if (const Json* p = u->get("prompt_tokens")) out.prompt = p->as_int();
    if (const Json* c = u->get("completion_tokens")) out.completion = c->as_int();
    if (const Json* d = u->get("prompt_tokens_details"))
        if (const Json* c = d->get("cached_tokens")) out.cached = c->as_int();
    return out;
}

// Sends one non-streaming completion and returns its usage.
Usage usage_of(MockServer& mock, const std::string& body,
               const std::string& path = "/v1/chat/completions") {
    auto r = request_once(mock.port(), post(path, body));
    if (!r || r->status != 200) {
        ADD_FAILURE() << "no answer or not 200: " << (r ? r->body : "");
        return {};
    }
    auto j = r->json();
    return usage_in(j ? j->get("usage") : nullptr);
}

std::int64_t stat(MockServer& mock, std::string_view name) {
    auto s = mock.stats();
    auto j = s ? parse_json(s->raw) : std::nullopt;
    const Json* v = j ? j->get(name) : nullptr;
    return v ? v->as_int() : -1;
}

// GET /metrics, parsed: every line must be a # HELP / # TYPE comment or a
// sample `name{model_name="..."} value`.
struct Metrics {
    int status = 0;
    std::string content_type;
    std::string text;
    bool parsed = false;
    std::map<std::string, double> value;
    std::map<std::string, std::string> type;
    std::map<std::string, std::string> model;
};

Metrics metrics_of(MockServer& mock) {
    Metrics m;
    auto r = request_once(mock.port(), http_request("GET", "/metrics"));
    if (!r) return m;
    m.status = r->status;
    m.content_type = r->header("Content-Type").value_or("");
    m.text = r->body;
    if (m.status != 200) return m;
    static const std::regex kSample(
        R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)\{model_name="([^"\\]*)"\} (\S+)$)re");
    static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter)$)");
    static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
    m.parsed = !r->body.empty() && r->body.back() == '\n';
    std::size_t at = 0;
    while (at < r->body.size()) {
        auto nl = r->body.find('\n', at);
        if (nl == std::string::npos) nl = r->body.size();
        std::string line = r->body.substr(at, nl - at);
        at = nl + 1;
        std::smatch g;
        if (std::regex_match(line, g, kType)) {
            m.type[g[1]] = g[2];
        } else if (std::regex_match(line, g, kSample)) {
            char* end = nullptr;
            const std::string number = g[3];
            const double v = std::strtod(number.c_str(), &end);
            if (end != number.c_str() + number.size()) m.parsed = false;
            m.value[g[1]] = v;
            m.model[g[1]] = g[2];
        } else if (!std::regex_match(line, kHelp)) {
            ADD_FAILURE() << "not Prometheus text: \"" << line << "\"";
            m.parsed = false;
        }
    }
    return m;
}

// Polls /metrics until pred holds (or 5 s pass); returns the last read.
template <class Pred>
Metrics wait_metrics(MockServer& mock, Pred pred) {
    const auto deadline = Clock::now() + 5s;
    for (;;) {
        Metrics m = metrics_of(mock);
        if ((m.parsed && pred(m)) || Clock::now() >= deadline) return m;
        std::this_thread::sleep_for(10ms);
    }
}

constexpr const char* kRunning = "vllm:num_requests_running";
constexpr const char* kWaiting = "vllm:num_requests_waiting";
constexpr const char* kKvUsage = "vllm:kv_cache_usage_perc";
constexpr const char* kQueries = "vllm:prefix_cache_queries_total";
constexpr const char* kHits = "vllm:prefix_cache_hits_total";

TEST(MockPrefix, TheSameLongPromptTwiceIsCachedTheSecondTime) {
    MockServer mock("c", {"--prefix-cache-blocks", "1000"});  // 64-byte blocks
    ASSERT_TRUE(mock.ok());
    // Prompt text "user" + 1000 bytes: 1004 bytes, 15 full blocks (960 bytes).
    const std::string body = chat_prompt(std::string(1000, 'x'));
    Usage first = usage_of(mock, body);
    EXPECT_EQ(first.prompt, 251);  // ceil(1004 / 4)
    EXPECT_EQ(first.cached, 0);
    EXPECT_EQ(first.completion, 20);
    Usage second = usage_of(mock, body);
    EXPECT_EQ(second.prompt, 251);
    EXPECT_EQ(second.cached, 240);  // 960 / 4

    // A stream asking for usage gets the same in its last chunk, before [DONE].
    auto s = request_once(
        mock.port(),
        post("/v1/chat/completions",
             chat_prompt(std::string(1000, 'x'), R"("stream":true,)"
                                                 R"("stream_options":{"include_usage":true},)"),
             {{"X-Mock-Tokens", "3"}}));
    ASSERT_TRUE(s);
    ASSERT_EQ(s->status, 200);
    const std::string tail = "data: [DONE]\n\n";
    ASSERT_GE(s->body.size(), tail.size());
    EXPECT_EQ(s->body.substr(s->body.size() - tail.size()), tail);
    auto last = s->body.rfind("data: {");
    ASSERT_NE(last, std::string::npos);
    auto chunk = parse_json(s->body.substr(last + 6, s->body.size() - tail.size() - last - 8));
    ASSERT_TRUE(chunk) << s->body;
    ASSERT_TRUE(chunk->get("choices"));
    EXPECT_TRUE(chunk->get("choices")->arr.empty());
    EXPECT_EQ(chunk->get("object")->str, "chat.completion.chunk");
    Usage streamed = usage_in(chunk->get("usage"));
    EXPECT_EQ(streamed.prompt, 251);
    EXPECT_EQ(streamed.cached, 240);
    EXPECT_EQ(streamed.completion, 3);

    // /v1/completions: the prompt string is the text.
    const std::string text = R"({"prompt":")" + std::string(256, 'p') + R"("})";
    EXPECT_EQ(usage_of(mock, text, "/v1/completions").cached, 0);
    Usage again = usage_of(mock, text, "/v1/completions");
    EXPECT_EQ(again.prompt, 64);
    EXPECT_EQ(again.cached, 64);

    EXPECT_EQ(stat(mock, "prefix_cache_query_bytes"), 3 * 1004 + 2 * 256);
    EXPECT_EQ(stat(mock, "prefix_cache_hit_bytes"), 2 * 960 + 256);
    Metrics m = metrics_of(mock);
    ASSERT_TRUE(m.parsed) << m.text;
    EXPECT_EQ(m.value[kQueries], 3 * 251 + 2 * 64);
    EXPECT_EQ(m.value[kHits], 2 * 240 + 64);
}

TEST(MockPrefix, WithoutTheCacheUsageIsUnchanged) {
    MockServer mock("plain");
    ASSERT_TRUE(mock.ok());
    const std::string body = chat_prompt(std::string(1000, 'x'));
    for (int i = 0; i < 2; ++i) {
        Usage u = usage_of(mock, body);
        EXPECT_EQ(u.prompt, static_cast<std::int64_t>((body.size() + 3) / 4));  // the body's bytes
        EXPECT_EQ(u.cached, -1);
    }
    // A stream sends no usage unless asked.
    auto s = request_once(mock.port(),
                          post("/v1/chat/completions", chat_prompt("x", R"("stream":true,)")));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->body.find("usage"), std::string::npos) << s->body;
    Metrics m = metrics_of(mock);
    ASSERT_TRUE(m.parsed) << m.text;
    EXPECT_EQ(m.value[kQueries], 0);
    EXPECT_EQ(m.value[kKvUsage], 0);
}

TEST(MockPrefix, PromptTextIsToolsThenEachRoleAndContent) {
    MockServer mock("t", {"--prefix-cache-blocks", "100000", "--cache-block-bytes", "1"});
    ASSERT_TRUE(mock.ok());
    const std::string tools = R"([{"type":"function","function":{"name":"f"}}])";
    const std::string body =
        R"({"tools":)" + tools +
        R"(,"messages":[{"role":"system","content":"S"},)"
        R"({"role":"user","content":[{"type":"text","text":"ab"},)"
        R"({"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"cd"}]},)"
        R"({"role":"assistant","content":null}]})";
    const std::string expected = tools + "system" + "S" + "user" + "abcd" + "assistant" + "null";
    Usage u = usage_of(mock, body);
    EXPECT_EQ(u.prompt, static_cast<std::int64_t>((expected.size() + 3) / 4));
    // The same text as a completion prompt is found whole (1-byte blocks).
    std::string escaped;
    for (char c : expected) {
        if (c == '"') escaped += '\\';
        escaped += c;
    }
    Usage same = usage_of(mock, R"({"prompt":")" + escaped + R"("})", "/v1/completions");
    EXPECT_EQ(same.cached, static_cast<std::int64_t>(expected.size() / 4));
    EXPECT_EQ(stat(mock, "prefix_cache_hit_bytes"), static_cast<std::int64_t>(expected.size()));
    // A prompt that is not a string is serialized.
    EXPECT_EQ(usage_of(mock, R"({"prompt":[1, 2, 3]})", "/v1/completions").prompt, 2);  // [1,2,3]
}

TEST(MockPrefix, APromptSharingItsFirstBlocksGetsExactlyThose) {
    MockServer mock("s", {"--prefix-cache-blocks", "1000", "--cache-block-bytes", "64"});
    ASSERT_TRUE(mock.ok());
    // "user" + 316 bytes = 320 bytes = 5 blocks shared, then different tails.
    const std::string shared(316, 's');
    const std::string tail_a(200, 'a');
    const std::string tail_b(200, 'b');
    EXPECT_EQ(usage_of(mock, chat_prompt(shared + tail_a)).cached, 0);
    EXPECT_EQ(usage_of(mock, chat_prompt(shared + tail_b)).cached, 80);  // 320 / 4
    EXPECT_EQ(stat(mock, "prefix_cache_hit_bytes"), 320);
    // Keys are chained: the same later blocks after a different first byte
    // are not a hit.
    EXPECT_EQ(usage_of(mock, chat_prompt("t" + shared.substr(1) + tail_a)).cached, 0);
    // The same block at another place is another key.
    const std::string a(64, 'a');
    const std::string b(64, 'b');
    EXPECT_EQ(usage_of(mock, R"({"prompt":")" + a + b + R"("})", "/v1/completions").cached, 0);
    EXPECT_EQ(usage_of(mock, R"({"prompt":")" + b + a + R"("})", "/v1/completions").cached, 0);
    EXPECT_EQ(usage_of(mock, R"({"prompt":")" + a + b + R"("})", "/v1/completions").cached, 32);
    // A short prompt (under one block) is never cached.
    EXPECT_EQ(usage_of(mock, chat_prompt("hi")).cached, 0);
    EXPECT_EQ(usage_of(mock, chat_prompt("hi")).cached, 0);
}

TEST(MockPrefix, AFullCacheForgetsTheLeastRecentlyUsedBlocks) {
    MockServer mock("l", {"--prefix-cache-blocks", "4", "--cache-block-bytes", "64"});
    ASSERT_TRUE(mock.ok());
    // Each prompt: "user" + 124 bytes = 2 blocks.
    auto prompt = [](char c) { return chat_prompt(std::string(124, c)); };
    EXPECT_EQ(usage_of(mock, prompt('a')).cached, 0);
    EXPECT_EQ(usage_of(mock, prompt('b')).cached, 0);   // full: a, b
    EXPECT_EQ(usage_of(mock, prompt('a')).cached, 32);  // a touched: b is the oldest
    EXPECT_EQ(usage_of(mock, prompt('c')).cached, 0);   // c evicts b
    EXPECT_EQ(usage_of(mock, prompt('a')).cached, 32);
    EXPECT_EQ(usage_of(mock, prompt('b')).cached, 0);  // gone; now evicts c
    EXPECT_EQ(usage_of(mock, prompt('c')).cached, 0);

    // A prompt longer than the cache leaves its first blocks in it.
    const std::string six = chat_prompt(std::string(380, 'z'));  // 384 bytes = 6 blocks
    EXPECT_EQ(usage_of(mock, six).cached, 0);
    EXPECT_EQ(usage_of(mock, six).cached, 64);  // 4 blocks

    // /mock/reset empties the cache and zeroes the counters.
    ASSERT_TRUE(mock.reset());
    EXPECT_EQ(stat(mock, "prefix_cache_query_bytes"), 0);
    EXPECT_EQ(stat(mock, "prefix_cache_hit_bytes"), 0);
    Metrics m = metrics_of(mock);
    EXPECT_EQ(m.value[kQueries], 0);
    EXPECT_EQ(m.value[kHits], 0);
    EXPECT_EQ(usage_of(mock, six).cached, 0);
}

TEST(MockPrefix, PrefillTimeIsSpentOnTheUncachedBytesOnly) {
    // 200 ms per KiB: a 4 KiB prompt takes 800 ms the first time, nothing the
    // second time, 400 ms when only its first half is cached.
    MockServer mock("p", {"--prefix-cache-blocks", "1000", "--prefill-us-per-kib", "200000"});
    ASSERT_TRUE(mock.ok());
    const std::string half(2044, 'h');  // "user" + 2044 = 2048 bytes
    auto timed = [&](const std::string& body) {
        const auto t0 = Clock::now();
        auto r = request_once(mock.port(), post("/v1/chat/completions", body));
        EXPECT_TRUE(r && r->status == 200);
        return ms_between(t0, Clock::now());
    };
    const double cold = timed(chat_prompt(half + std::string(2048, 'x')));
    const double warm = timed(chat_prompt(half + std::string(2048, 'x')));
    const double half_warm = timed(chat_prompt(half + std::string(2048, 'y')));
    EXPECT_GE(cold, 790);
    EXPECT_LT(warm, 400);
    EXPECT_GE(half_warm, 395);
    EXPECT_LT(warm, half_warm);

    // A stream's first event waits for the prefill too.
    const auto sent = Clock::now();
    Conn c;
    ASSERT_TRUE(c.connect(mock.port()));
    ASSERT_TRUE(c.send_all(
        post("/v1/chat/completions", chat_prompt(std::string(4092, 'n'), R"("stream":true,)"))));
    StreamResult s = c.read_stream(sent, 10s);
    ASSERT_TRUE(s.ok) << s.error;
    ASSERT_FALSE(s.events.empty());
    EXPECT_GE(ms_between(sent, s.events.front().at), 790);
}

TEST(MockPrefix, MaxBatchQueuesTheOthersFirstComeFirstServed) {
    MockServer mock("b", {"--max-batch", "1"});
    ASSERT_TRUE(mock.ok());
    auto slow = [](const std::string& prompt) {
        return post("/v1/completions", R"({"prompt":")" + prompt + R"("})",
                    {{"X-Mock-First-Token-Delay-Ms", "2000"}});
    };
    Conn a, b, c;
    ASSERT_TRUE(a.connect(mock.port()));
    ASSERT_TRUE(a.send_all(slow("one")));
    Metrics m = wait_metrics(mock, [](Metrics& m) { return m.value[kRunning] == 1; });
    ASSERT_EQ(m.value[kRunning], 1) << m.text;
    ASSERT_TRUE(b.connect(mock.port()));
    ASSERT_TRUE(b.send_all(slow("two")));
    ASSERT_TRUE(c.connect(mock.port()));
    ASSERT_TRUE(c.send_all(slow("three")));
    m = wait_metrics(mock, [](Metrics& m) { return m.value[kWaiting] == 2; });
    EXPECT_EQ(m.value[kWaiting], 2) << m.text;
    // A client that leaves while waiting leaves the queue.
    c.close();
    m = wait_metrics(mock, [](Metrics& m) { return m.value[kWaiting] == 1; });
    EXPECT_EQ(m.value[kRunning], 1) << m.text;
    EXPECT_EQ(m.value[kWaiting], 1) << m.text;
    EXPECT_EQ(stat(mock, "requests_queued"), 2);
    EXPECT_EQ(stat(mock, "max_queue_length"), 2);

    auto ra = a.read_response(15s);
    const auto a_done = Clock::now();
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->status, 200);
    m = wait_metrics(mock, [](Metrics& m) { return m.value[kWaiting] == 0; });
    EXPECT_EQ(m.value[kRunning], 1) << m.text;  // b, now
    EXPECT_EQ(m.value[kWaiting], 0) << m.text;
    auto rb = b.read_response(15s);
    ASSERT_TRUE(rb);
    EXPECT_EQ(rb->status, 200);
    // b's first-token delay began when a was done.
    EXPECT_GE(ms_between(a_done, Clock::now()), 1500);
    m = wait_metrics(mock, [](Metrics& m) { return m.value[kRunning] == 0; });
    EXPECT_EQ(m.value[kRunning], 0) << m.text;
    EXPECT_EQ(m.value[kWaiting], 0) << m.text;
    auto s = mock.wait_stats([](const MockStats& s) { return s.streams_cancelled == 1; });
    ASSERT_TRUE(s);
    EXPECT_EQ(s->streams_cancelled, 1);  // c
}

TEST(MockPrefix, MetricsAreVllmsNamesInPrometheusText) {
    MockServer mock("m", {"--models", "first,second", "--prefix-cache-blocks", "100"});
    ASSERT_TRUE(mock.ok());
    Metrics m = metrics_of(mock);
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
    ASSERT_TRUE(m.parsed) << m.text;
    const std::map<std::string, std::string> want = {{kRunning, "gauge"},
                                                     {kWaiting, "gauge"},
                                                     {kKvUsage, "gauge"},
                                                     {kQueries, "counter"},
                                                     {kHits, "counter"}};
    for (const auto& [name, type] : want) {
        EXPECT_EQ(m.type[name], type) << name;
        ASSERT_TRUE(m.value.count(name)) << name << "\n" << m.text;
        EXPECT_EQ(m.value[name], 0) << name;
        EXPECT_EQ(m.model[name], "first") << name;
    }
    EXPECT_EQ(m.value.size(), want.size()) << m.text;

    // While a request runs, its prompt's blocks are KV-cache usage:
    // "user" + 1000 bytes = 16 blocks (15 full and a partial) of 100.
    Conn c;
    ASSERT_TRUE(c.connect(mock.port()));
    ASSERT_TRUE(c.send_all(post("/v1/chat/completions", chat_prompt(std::string(1000, 'k')),
                                {{"X-Mock-First-Token-Delay-Ms", "1500"}})));
    m = wait_metrics(mock, [](Metrics& m) { return m.value[kRunning] == 1; });
    EXPECT_EQ(m.value[kRunning], 1) << m.text;
    EXPECT_EQ(m.value[kKvUsage], 0.16) << m.text;
    EXPECT_EQ(m.value[kQueries], 251) << m.text;
    auto r = c.read_response(10s);
    ASSERT_TRUE(r);
    m = wait_metrics(mock, [](Metrics& m) { return m.value[kRunning] == 0; });
    EXPECT_EQ(m.value[kRunning], 0) << m.text;
    EXPECT_EQ(m.value[kKvUsage], 0) << m.text;

    // Not counted as requests: a scraper does not disturb the counts.
    EXPECT_EQ(stat(mock, "requests"), 1);
}

TEST(MockPrefix, MockLoadAddsToTheMetricsAndCanBreakThem) {
    MockServer mock("x");
    ASSERT_TRUE(mock.ok());
    auto load = [&](const std::string& body) {
        auto r = request_once(mock.port(), post("/mock/load", body));
        return r ? r->status : 0;
    };
    EXPECT_EQ(load(R"({"running":3,"waiting":5,"kv_usage":0.5})"), 204);
    Metrics m = metrics_of(mock);
    ASSERT_TRUE(m.parsed) << m.text;
    EXPECT_EQ(m.value[kRunning], 3);
    EXPECT_EQ(m.value[kWaiting], 5);
    EXPECT_EQ(m.value[kKvUsage], 0.5);

    // Added to the real counts.
    Conn c;
    ASSERT_TRUE(c.connect(mock.port()));
    ASSERT_TRUE(c.send_all(
        post("/v1/completions", R"({"prompt":"x"})", {{"X-Mock-First-Token-Delay-Ms", "1500"}})));
    m = wait_metrics(mock, [](Metrics& m) { return m.value[kRunning] == 4; });
    EXPECT_EQ(m.value[kRunning], 4) << m.text;
    ASSERT_TRUE(c.read_response(10s));

    // Each POST sets the whole simulated load: what it leaves out is reset.
    EXPECT_EQ(load(R"({"metrics_status":500})"), 204);
    m = metrics_of(mock);
    EXPECT_EQ(m.status, 500);
    EXPECT_EQ(m.content_type.rfind("text/plain", 0), 0u) << m.content_type;
    EXPECT_FALSE(m.text.empty());
    EXPECT_EQ(load(R"({"metrics_status":200,"kv_usage":null})"), 204);
    m = metrics_of(mock);
    EXPECT_EQ(m.status, 200);
    ASSERT_TRUE(m.parsed) << m.text;
    EXPECT_EQ(m.value[kRunning], 0);
    EXPECT_EQ(m.value[kKvUsage], 0);  // computed; no cache: 0

    for (std::string bad :
         {R"({"running":-1})", R"({"waiting":1.5})", R"({"kv_usage":2})", R"({"kv_usage":"0.5"})",
          R"({"metrics_status":99})", R"({"metrics_status":204})", R"({"bogus":1})", "[1]", "{"})
        EXPECT_EQ(load(bad), 400) << bad;
    EXPECT_EQ(load(""), 204);  // an empty body is {}
    auto get = request_once(mock.port(), http_request("GET", "/mock/load"));
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 405);

    // /mock/reset restores the real numbers.
    EXPECT_EQ(load(R"({"waiting":7,"metrics_status":503})"), 204);
    EXPECT_EQ(metrics_of(mock).status, 503);
    ASSERT_TRUE(mock.reset());
    m = metrics_of(mock);
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(m.value[kWaiting], 0);
}

TEST(MockPrefix, BadSimulationFlagsAreCommandLineErrors) {
    const std::vector<std::vector<std::string>> bad = {
        {"--cache-block-bytes", "0"},    {"--cache-block-bytes", "65537"},
        {"--prefix-cache-blocks", "-1"}, {"--prefill-us-per-kib", "x"},
        {"--max-batch", "1.5"},          {"--prefix-cache-blocks"}};
    for (const auto& args : bad) {
        auto r = run_command(mock_bin(), args);
        EXPECT_EQ(r.exit_code.value_or(-1), 2) << args[0];
        EXPECT_NE(r.err_text().find(args[0]), std::string::npos) << r.err_text();
    }
    auto help = run_command(mock_bin(), {"--help"});
    EXPECT_EQ(help.exit_code.value_or(-1), 0);
    std::string text;
    for (const auto& l : help.out) text += l + "\n";
    for (const char* flag :
         {"--prefix-cache-blocks", "--cache-block-bytes", "--prefill-us-per-kib", "--max-batch"})
        EXPECT_NE(text.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace dsgw::it
