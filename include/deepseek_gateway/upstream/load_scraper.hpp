#pragma once
// Each server's own view of its load (upstreams[].load_metrics, SPEC §9):
// one scraper for the whole process, on its own thread like the model
// lister, reads the Prometheus endpoint of every server of the upstreams
// with load_metrics, every interval, each answer within its timeout (over
// TLS when the upstream uses it). A good answer becomes the server's
// scraped load (UpstreamServer::set_scraped_load()); a failure counts in
// upstream_load_scrape_errors_total and keeps the last one, which the
// server drops by itself once it is older than stale_after.

#include "deepseek_gateway/upstream/side_thread.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"


#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace dsgw::metrics {
class ConfigMetrics;
}  // namespace dsgw::metrics

namespace dsgw::upstream {

// The load a vLLM or SGLang server reports in the Prometheus text format:
// running from vllm:num_requests_running or sglang:num_running_reqs, waiting
// from vllm:num_requests_waiting or sglang:num_queue_reqs (several series,
// one per model or engine, are summed), KV-cache use from
// vllm:kv_cache_usage_perc, vllm:gpu_cache_usage_perc or sglang:token_usage
// (the largest). A name the text lacks counts 0; negative, NaN and infinite
// values, and lines that do not parse, are skipped. Nothing, and `error`
// says why, when the text has none of these names.
std::optional<UpstreamServer::ScrapedLoad> parse_load_metrics(std::string_view text,
                                                              std::string& error);

class LoadScraper {
public:
    // A longer answer is a failure (vLLM's whole /metrics is ~100 KiB).
    static constexpr std::uint64_t kMaxBody = 1 << 20;

    LoadScraper();
    ~LoadScraper();
    LoadScraper(const LoadScraper&) = delete;
    LoadScraper& operator=(const LoadScraper&) = delete;

    // Scrapes the servers of `set`'s upstreams that have load_metrics from
    // now on, at once and then every interval (at start, and after a
    // reload: the previous configuration's rounds stop). Failures count in
    // `metrics`' load_scrape_errors of each server (null: not counted). The
    // future is ready once each server concerned has answered or failed
    // once (at once when there are none), or when a later apply() or stop()
    // took over; the gateway does not wait for it. Any thread.
    std::future<void> apply(std::shared_ptr<const UpstreamSet> set,
                            std::shared_ptr<const metrics::ConfigMetrics> metrics);
    void stop();

private:
    void start(std::shared_ptr<const UpstreamSet> set,
               std::shared_ptr<const metrics::ConfigMetrics> metrics, std::shared_ptr<void> round);

    SideThread side_;
    // Holds the servers failing_ names alive; on the scraper's thread only.
    std::shared_ptr<const UpstreamSet> upstreams_;
    // Whether each scraped server is failing (its warning logged), kept
    // across reloads; on the scraper's thread only.
    std::map<const UpstreamServer*, std::shared_ptr<bool>> failing_;
};

}  // namespace dsgw::upstream
