#pragma once
// The models upstream servers serve (SPEC §8): a listener with routes answers
// GET /v1/models with the names its servers list (llm/models_list.hpp). One
// lister for the whole process, on its own thread like the health checker,
// asks each server of the upstreams that routes use for its own
// `GET /v1/models` (over TLS when the upstream uses it): at start and after
// each reload, then every health_check.interval (every 30 s without health
// checks), each answer within health_check.timeout. A good answer replaces
// the server's list (UpstreamServer::listed_models()) and its upstream's
// union (Upstream::models()); a failure or an answer that is not a list
// keeps the previous one.

#include "deepseek_gateway/upstream/side_thread.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"


#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace dsgw::upstream {

// Whose lists are fetched, by index in cfg.upstreams: the upstreams of the
// routes of every listener that has routes, and those listeners' default
// upstreams. Upstreams only listeners without routes use are not asked.
std::vector<bool> upstreams_listing_models(const config::Config& cfg);

// The model ids of a GET /v1/models answer (OpenAI's list shape): the string
// "id" of each object in the top-level "data" array, in order; other entries,
// other fields and empty ids are ignored. Nothing, and `error` says why, when
// the body is not a JSON object with a "data" array.
std::optional<std::vector<std::string>> parse_model_list(std::string_view body, std::string& error);

class ModelLister {
public:
    // The interval for an upstream without health checks.
    static constexpr std::chrono::seconds kDefaultInterval{30};

    ModelLister();
    ~ModelLister();
    ModelLister(const ModelLister&) = delete;
    ModelLister& operator=(const ModelLister&) = delete;

    // Fetches the lists of `set`'s upstreams from now on, at once and then
    // every interval (at start, and after a reload: the previous
    // configuration's rounds stop). The future is ready once each server
    // concerned has answered or failed once (at once when there are none),
    // or when a later apply() or stop() took over. Any thread.
    std::future<void> apply(std::shared_ptr<const UpstreamSet> set);
    // Asks every server of the set in force again now (tests; the next
    // rounds follow from here). Same future as apply().
    std::future<void> refresh();
    void stop();

private:
    void start(std::shared_ptr<const UpstreamSet> set, std::shared_ptr<void> round);

    SideThread side_;
    std::shared_ptr<const UpstreamSet> upstreams_;  // on the lister's thread only
    // Whether each server of upstreams_ that is asked is failing (its
    // warning logged); on the lister's thread only.
    std::map<const UpstreamServer*, std::shared_ptr<bool>> failing_;
};

}  // namespace dsgw::upstream
