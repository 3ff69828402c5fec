#include "deepseek_gateway/upstream/load_scraper.hpp"

#include "deepseek_gateway/metrics/metrics.hpp"
#include "upstream/http_get.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace dsgw::upstream {

// ---- the text format ---------------------------------------------------------

namespace {

enum class Field { running, waiting, kv_usage };

struct Known {
    std::string_view name;
    Field field;
};
constexpr Known kKnown[] = {
    {"vllm:num_requests_running", Field::running},   // vLLM
    {"sglang:num_running_reqs", Field::running},     // SGLang
    {"vllm:num_requests_waiting", Field::waiting},   // vLLM
    {"sglang:num_queue_reqs", Field::waiting},       // SGLang
    {"vllm:kv_cache_usage_perc", Field::kv_usage},   // vLLM since 0.10
    {"vllm:gpu_cache_usage_perc", Field::kv_usage},  // older vLLM
    {"sglang:token_usage", Field::kv_usage},         // SGLang
};

constexpr std::size_t kBad = std::string_view::npos;

bool blank(char c) {
    return c == ' ' || c == '\t';
}

bool name_char(char c, bool first) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return letter || c == ':' || (!first && c >= '0' && c <= '9');
}

std::size_t skip_blanks(std::string_view line, std::size_t i) {
    while (i < line.size() && blank(line[i])) ++i;
    return i;
}

// The label set `{name="value",...}` whose '{' is at `i`: the index after
// its '}', or kBad. A value is a quoted string in which a backslash escapes
// the next character (so `\"` and `}` or `,` inside it end nothing).
std::size_t skip_labels(std::string_view line, std::size_t i) {
    ++i;
    for (;;) {
        i = skip_blanks(line, i);
        if (i < line.size() && line[i] == '}') return i + 1;  // also after a trailing ','
        const auto name = i;
        while (i < line.size() && name_char(line[i], i == name) && line[i] != ':') ++i;
        if (i == name) return kBad;
        i = skip_blanks(line, i);
        if (i >= line.size() || line[i] != '=') return kBad;
        i = skip_blanks(line, i + 1);
        if (i >= line.size() || line[i] != '"') return kBad;
        for (++i;; ++i) {
            if (i >= line.size()) return kBad;
            if (line[i] == '"') break;
            if (line[i] == '\\') ++i;  // the escaped character (past the end: kBad above)
        }
        i = skip_blanks(line, i + 1);
        if (i >= line.size()) return kBad;
        if (line[i] == '}') return i + 1;
        if (line[i] != ',') return kBad;
        ++i;
    }
}

// A sample value: a float as Go's ParseFloat reads it (exponents, NaN,
// +Inf, -Inf).
std::optional<double> number(std::string_view token) {
    if (!token.empty() && token.front() == '+') {
        token.remove_prefix(1);
        if (!token.empty() && (token.front() == '+' || token.front() == '-')) return std::nullopt;
    }
    if (token.empty()) return std::nullopt;
    double v = 0;
    const char* end = token.data() + token.size();
    auto [ptr, ec] = std::from_chars(token.data(), end, v);
    if (ec != std::errc() || ptr != end) return std::nullopt;  // also out of a double's range
    return v;
}

bool timestamp(std::string_view token) {
    if (!token.empty() && token.front() == '-') token.remove_prefix(1);
    return !token.empty() &&
           std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The next blank-separated token from `i`; `i` moves past it.
std::string_view token_at(std::string_view line, std::size_t& i) {
    i = skip_blanks(line, i);
    const auto start = i;
    while (i < line.size() && !blank(line[i])) ++i;
    return line.substr(start, i - start);
}

struct Sample {
    Field field;
    double value;
};

// One line: a sample of a name we read, or nothing (another name, a
// comment, a blank line, a line that does not parse).
std::optional<Sample> read_line(std::string_view line) {
    auto i = skip_blanks(line, 0);
    const auto name_start = i;
    while (i < line.size() && name_char(line[i], i == name_start)) ++i;
    const auto name = line.substr(name_start, i - name_start);
    if (name.empty()) return std::nullopt;  // also '#' lines
    const Known* known = nullptr;
    for (const auto& k : kKnown)
        if (k.name == name) known = &k;
    if (!known) return std::nullopt;
    if (i < line.size() && line[i] == '{') {
        i = skip_labels(line, i);
        if (i == kBad) return std::nullopt;
    }
    if (i >= line.size() || !blank(line[i])) return std::nullopt;
    const auto value = number(token_at(line, i));
    if (!value) return std::nullopt;
    if (const auto ts = token_at(line, i); !ts.empty() && !timestamp(ts)) return std::nullopt;
    if (skip_blanks(line, i) != line.size()) return std::nullopt;
    return Sample{known->field, *value};
}

std::uint32_t count_of(double v) {
    return static_cast<std::uint32_t>(std::llround(std::min(v, 4294967295.0)));
}

}  // namespace

std::optional<UpstreamServer::ScrapedLoad> parse_load_metrics(std::string_view text,
                                                              std::string& error) {
    double running = 0, waiting = 0, kv_usage = 0;
    bool found = false;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        auto line = text.substr(0, eol);
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const auto sample = read_line(line);
        if (!sample) continue;
        found = true;
        if (!std::isfinite(sample->value) || sample->value < 0) continue;
        switch (sample->field) {
            case Field::running:
                running += sample->value;
                break;
            case Field::waiting:
                waiting += sample->value;
                break;
            case Field::kv_usage:
                kv_usage = std::max(kv_usage, sample->value);
                break;
        }
    }
    if (!found) {
        error = "no vLLM or SGLang load metric in the answer";
        return std::nullopt;
    }
    UpstreamServer::ScrapedLoad l;
    l.running = count_of(running);
    l.waiting = count_of(waiting);
    l.kv_usage = kv_usage;
    return l;
}

// ---- the scraper -------------------------------------------------------------

namespace {

namespace asio = boost::asio;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Ready (its promise satisfied) when the last holder lets go: each server's
// first scrape of a round holds it.
struct Round {
    std::promise<void> done;
    ~Round() { done.set_value(); }
};

long long ms(Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// What one server's scrapes need, held by its loop.
struct Target {
    std::shared_ptr<const UpstreamSet> set;  // so that `up` and `server` outlive the loop
    std::shared_ptr<const metrics::ConfigMetrics> metrics;
    const Upstream* up = nullptr;
    UpstreamServer* server = nullptr;
    metrics::ServerMetrics* server_metrics = nullptr;  // null without metrics
    std::shared_ptr<bool> failing;  // whether the last scrape failed, kept across reloads
};

void on_failure(const Target& t, const std::string& why) {
    if (t.server_metrics) t.server_metrics->load_scrape_errors->Increment();
    const auto& lm = t.up->config().load_metrics;
    if (*t.failing) {
        spdlog::debug("upstream {} server {}: GET {} failed again: {}", t.up->name(),
                      t.server->name(), lm.path, why);
        return;
    }
    *t.failing = true;
    if (t.server->scraped_load(Clock::now()))
        spdlog::warn(
            "upstream {} server {}: GET {} failed: {}; its last load counts for up to {} ms, "
            "then its requests in flight alone",
            t.up->name(), t.server->name(), lm.path, why, ms(lm.stale_after()));
    else
        spdlog::warn(
            "upstream {} server {}: GET {} failed: {}; its load is its requests in flight alone",
            t.up->name(), t.server->name(), lm.path, why);
}

asio::awaitable<void> scrape_loop(Target t, std::shared_ptr<std::uint64_t> gen,
                                  std::uint64_t my_gen, std::shared_ptr<void> round) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer pause(ex);
    const auto& lm = t.up->config().load_metrics;
    const HttpGet get{lm.path, "text/plain; version=0.0.4", "deepseek-gateway-load-metrics",
                      lm.timeout(), LoadScraper::kMaxBody};
    while (*gen == my_gen) {
        const auto started = Clock::now();
        std::string body;
        auto why = co_await http_get(*t.up, *t.server, get, body);
        if (*gen != my_gen) break;
        std::optional<UpstreamServer::ScrapedLoad> load;
        if (why.empty()) load = parse_load_metrics(body, why);
        if (load) {
            t.server->set_scraped_load(*load, Clock::now());
            if (*t.failing)
                spdlog::info("upstream {} server {}: GET {} answers again", t.up->name(),
                             t.server->name(), lm.path);
            *t.failing = false;
        } else {
            on_failure(t, why);
        }
        round.reset();  // this server's part of the round is done
        pause.expires_at(started + lm.interval);
        co_await pause.async_wait(nothrow);
    }
}

}  // namespace

LoadScraper::LoadScraper() = default;

LoadScraper::~LoadScraper() {
    stop();
}

std::future<void> LoadScraper::apply(std::shared_ptr<const UpstreamSet> set,
                                     std::shared_ptr<const metrics::ConfigMetrics> metrics) {
    auto round = std::make_shared<Round>();
    auto done = round->done.get_future();
    asio::post(side_.io(), [this, set = std::move(set), metrics = std::move(metrics),
                            round = std::move(round)]() mutable {
        start(std::move(set), std::move(metrics), std::move(round));
    });
    return done;
}

void LoadScraper::start(std::shared_ptr<const UpstreamSet> set,
                        std::shared_ptr<const metrics::ConfigMetrics> metrics,
                        std::shared_ptr<void> round) {
    ++*side_.generation();
    upstreams_ = set;
    // Servers that stay keep their failing state (a reload does not repeat
    // the warning); upstreams_ holds every key alive until the next start().
    std::map<const UpstreamServer*, std::shared_ptr<bool>> failing;
    for (std::size_t u = 0; u < set->upstreams.size(); ++u) {
        const Upstream* up = set->upstreams[u].get();
        if (!up->config().load_metrics.enabled) continue;
        const auto& servers = up->servers();
        for (std::size_t s = 0; s < servers.size(); ++s) {
            Target t;
            t.set = set;
            t.metrics = metrics;
            t.up = up;
            t.server = servers[s].get();
            if (metrics && u < metrics->upstream_count() && s < metrics->server_count(u))
                t.server_metrics = metrics->server(u, s);
            auto& state = failing[t.server];
            if (auto it = failing_.find(t.server); it != failing_.end()) state = it->second;
            if (!state) state = std::make_shared<bool>(false);
            t.failing = state;
            asio::co_spawn(
                side_.io(),
                scrape_loop(std::move(t), side_.generation(), *side_.generation(), round),
                asio::detached);
        }
    }
    failing_ = std::move(failing);
}

void LoadScraper::stop() {
    side_.stop();
}

}  // namespace dsgw::upstream
