#include "deepseek_gateway/upstream/models.hpp"

#include "upstream/http_get.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace dsgw::upstream {

namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// A list of models is a few KiB; a server that sends more is not listing.
constexpr std::uint64_t kMaxBody = 4 << 20;
// Names shown in the log line of a changed list.
constexpr std::size_t kLoggedNames = 10;

// Ready (its promise satisfied) when the last holder lets go: each server's
// first fetch of a round holds it.
struct Round {
    std::promise<void> done;
    ~Round() { done.set_value(); }
};

Clock::duration interval_of(const config::UpstreamConfig& cfg) {
    return cfg.health_check.enabled ? Clock::duration(cfg.health_check.interval)
                                    : Clock::duration(ModelLister::kDefaultInterval);
}

// One fetch, within health_check.timeout. Returns "" with the body, else why
// it failed.
asio::awaitable<std::string> fetch(const Upstream& up, const UpstreamServer& server,
                                   std::string& body) {
    const HttpGet get{"/v1/models", "application/json", "deepseek-gateway-model-list",
                      up.config().health_check.timeout, kMaxBody};
    co_return co_await http_get(up, server, get, body);
}

std::string some_names(const std::vector<std::string>& ids) {
    std::string out;
    for (std::size_t i = 0; i < ids.size() && i < kLoggedNames; ++i) {
        if (i > 0) out += ", ";
        out += ids[i];
    }
    if (ids.size() > kLoggedNames) out += ", ...";
    return out;
}

// A good answer: the server's list and its upstream's union, when it changed.
void record(Upstream& up, UpstreamServer& server, std::vector<std::string> ids, bool was_failing) {
    auto previous = server.listed_models();
    if (was_failing)
        spdlog::info("upstream {} server {}: GET /v1/models answers again", up.name(),
                     server.name());
    if (previous && *previous == ids) return;
    spdlog::info("upstream {} server {}: lists {} model(s){}{}", up.name(), server.name(),
                 ids.size(), ids.empty() ? "" : ": ", some_names(ids));
    server.set_listed_models(std::make_shared<const std::vector<std::string>>(std::move(ids)));
    up.update_models();
}

// `failing`: whether the server's last fetch failed, kept across reloads (a
// reload does not repeat the warning).
asio::awaitable<void> list_loop(std::shared_ptr<const UpstreamSet> set, Upstream* up,
                                UpstreamServer* server, std::shared_ptr<bool> failing_state,
                                std::shared_ptr<std::uint64_t> gen, std::uint64_t my_gen,
                                std::shared_ptr<void> round) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer pause(ex);
    bool& failing = *failing_state;
    while (*gen == my_gen) {
        std::string body;
        auto why = co_await fetch(*up, *server, body);
        if (*gen != my_gen) break;
        std::optional<std::vector<std::string>> ids;
        if (why.empty()) ids = parse_model_list(body, why);
        if (ids) {
            record(*up, *server, std::move(*ids), failing);
            failing = false;
        } else if (!failing) {
            failing = true;
            const auto kept = server->listed_models();
            spdlog::warn(
                "upstream {} server {}: GET /v1/models failed: {}; {}", up->name(), server->name(),
                why,
                kept ? "its previous list of " + std::to_string(kept->size()) + " model(s) stays"
                     : std::string("no list of its models yet"));
        } else {
            spdlog::debug("upstream {} server {}: GET /v1/models failed again: {}", up->name(),
                          server->name(), why);
        }
        round.reset();  // this server's part of the round is done
        pause.expires_after(interval_of(up->config()));
        co_await pause.async_wait(nothrow);
    }
    (void)set;  // held so `up` and `server` outlive the loop
}

}  // namespace

std::vector<bool> upstreams_listing_models(const config::Config& cfg) {
    std::vector<bool> wanted(cfg.upstreams.size(), false);
    auto mark = [&](std::size_t i) {
        if (i < wanted.size()) wanted[i] = true;
    };
    for (const auto& lc : cfg.listeners) {
        if (lc.routes.empty()) continue;
        for (const auto& route : lc.routes) mark(route.upstream_index);
        if (lc.has_upstream()) mark(lc.upstream_index);
    }
    return wanted;
}

std::optional<std::vector<std::string>> parse_model_list(std::string_view body,
                                                         std::string& error) {
    error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    if (ec) {
        error = "not JSON: " + ec.message();
        return std::nullopt;
    }
    const auto* obj = v.if_object();
    const auto* data = obj ? obj->if_contains("data") : nullptr;
    if (!data || !data->is_array()) {
        error = "not a list of models (no \"data\" array)";
        return std::nullopt;
    }
    std::vector<std::string> ids;
    for (const auto& entry : data->get_array()) {
        const auto* model = entry.if_object();
        const auto* id = model ? model->if_contains("id") : nullptr;
        if (id && id->is_string() && !id->get_string().empty())
            ids.emplace_back(id->get_string().data(), id->get_string().size());
    }
    return ids;
}

ModelLister::ModelLister() = default;

ModelLister::~ModelLister() {
    stop();
}

std::future<void> ModelLister::apply(std::shared_ptr<const UpstreamSet> set) {
    auto round = std::make_shared<Round>();
    auto done = round->done.get_future();
    asio::post(side_.io(), [this, set = std::move(set), round = std::move(round)]() mutable {
        start(std::move(set), std::move(round));
    });
    return done;
}

std::future<void> ModelLister::refresh() {
    auto round = std::make_shared<Round>();
    auto done = round->done.get_future();
    asio::post(side_.io(), [this, round = std::move(round)]() mutable {
        if (upstreams_) start(upstreams_, std::move(round));
    });
    return done;
}

void ModelLister::start(std::shared_ptr<const UpstreamSet> set, std::shared_ptr<void> round) {
    ++*side_.generation();
    upstreams_ = set;
    // Servers that stay keep their failing state; the set holds every key
    // alive until the next start().
    std::map<const UpstreamServer*, std::shared_ptr<bool>> failing;
    const auto wanted = upstreams_listing_models(*set->config);
    for (std::size_t i = 0; i < set->upstreams.size(); ++i) {
        if (!wanted[i]) continue;
        Upstream* up = set->upstreams[i].get();
        for (const auto& s : up->servers()) {
            auto& state = failing[s.get()];
            if (auto it = failing_.find(s.get()); it != failing_.end()) state = it->second;
            if (!state) state = std::make_shared<bool>(false);
            asio::co_spawn(
                side_.io(),
                list_loop(set, up, s.get(), state, side_.generation(), *side_.generation(), round),
                asio::detached);
        }
    }
    failing_ = std::move(failing);
}

void ModelLister::stop() {
    side_.stop();
}

}  // namespace dsgw::upstream
