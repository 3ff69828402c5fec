#include "deepseek_gateway/upstream/resolver.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace dsgw::upstream {

namespace {

using Clock = std::chrono::steady_clock;

// How long stop() waits for a lookup under way before leaving the thread.
constexpr auto kStopWait = std::chrono::seconds(1);

}  // namespace

bool re_resolved(const config::UpstreamConfig& u) {
    if (u.resolve_interval.count() <= 0) return false;
    return std::any_of(u.servers.begin(), u.servers.end(),
                       [](const config::ServerConfig& s) { return s.host_name; });
}

ResolveRound re_resolve(const config::Config& cfg, std::size_t u, const ResolveFn& resolve,
                        std::set<std::string>& failing) {
    ResolveRound round;
    const auto& up = cfg.upstreams.at(u);
    for (std::size_t i = 0; i < up.servers.size(); ++i) {
        const auto& s = up.servers[i];
        if (!s.host_name) continue;
        const std::string who = "upstream " + up.name + " server " + s.address.to_string();
        const std::string key = up.name + '\x1f' + s.address.to_string();
        std::vector<boost::asio::ip::address> now;
        if (auto why = resolve(s.address.host, now)) {
            if (failing.insert(key).second)
                round.warnings.push_back(who + ": cannot resolve \"" + s.address.host +
                                         "\": " + *why + "; keeping its addresses (" +
                                         config::join_addresses(s.resolved) +
                                         ") until it resolves again");
            else
                round.debug.push_back(who + ": still cannot resolve \"" + s.address.host +
                                      "\": " + *why);
            continue;
        }
        if (failing.erase(key))
            round.notes.push_back(who + ": \"" + s.address.host + "\" resolves again");
        std::sort(now.begin(), now.end());
        now.erase(std::unique(now.begin(), now.end()), now.end());
        auto before = s.resolved;
        std::sort(before.begin(), before.end());
        if (now != before) round.changes.push_back({u, i, std::move(now)});
    }
    return round;
}

struct Resolver::State {
    std::mutex mu;
    std::condition_variable cv;
    std::shared_ptr<const config::Config> cfg;  // the latest apply()
    std::uint64_t generation = 0;               // bumped by apply()
    bool stopping = false;
    bool exited = false;
    std::function<void(AddressUpdate)> on_update;
    ResolveFn resolve;
};

// The thread. Lookups run without the lock; their results are reported only
// if no apply() came meanwhile (a reload resolved every name afresh).
void Resolver::run(const std::shared_ptr<State>& st) {
    std::set<std::string> failing;  // this thread's only
    std::shared_ptr<const config::Config> cfg;
    std::vector<Clock::time_point> due;  // per upstream; max() = never
    std::uint64_t seen = 0;
    std::unique_lock lk(st->mu);
    while (!st->stopping) {
        if (st->generation != seen) {
            seen = st->generation;
            cfg = st->cfg;
            const auto now = Clock::now();
            due.assign(cfg ? cfg->upstreams.size() : 0, Clock::time_point::max());
            for (std::size_t u = 0; u < due.size(); ++u)
                if (re_resolved(cfg->upstreams[u]))
                    due[u] = now + cfg->upstreams[u].resolve_interval;
        }
        const auto next =
            due.empty() ? Clock::time_point::max() : *std::min_element(due.begin(), due.end());
        auto now = Clock::now();
        if (next > now) {
            if (next == Clock::time_point::max())
                st->cv.wait(lk);
            else
                st->cv.wait_until(lk, next);
            continue;
        }
        std::vector<std::size_t> todo;
        for (std::size_t u = 0; u < due.size(); ++u) {
            if (due[u] > now) continue;
            todo.push_back(u);
            due[u] = now + cfg->upstreams[u].resolve_interval;
        }
        lk.unlock();
        ResolveRound all;
        for (auto u : todo) {
            auto r = re_resolve(*cfg, u, st->resolve, failing);
            for (auto& c : r.changes) all.changes.push_back(std::move(c));
            for (auto& w : r.warnings) all.warnings.push_back(std::move(w));
            for (auto& n : r.notes) all.notes.push_back(std::move(n));
            for (auto& d : r.debug) all.debug.push_back(std::move(d));
        }
        lk.lock();
        if (st->stopping) break;
        for (const auto& w : all.warnings) spdlog::warn("{}", w);
        for (const auto& n : all.notes) spdlog::info("{}", n);
        for (const auto& d : all.debug) spdlog::debug("{}", d);
        if (st->generation != seen || all.changes.empty()) continue;
        st->on_update(AddressUpdate{cfg, std::move(all.changes)});
    }
    st->exited = true;
    st->cv.notify_all();
}

Resolver::Resolver(std::function<void(AddressUpdate)> on_update, ResolveFn resolve)
    : state_(std::make_shared<State>()) {
    state_->on_update = std::move(on_update);
    state_->resolve = std::move(resolve);
    thread_ = std::thread([st = state_] { run(st); });
}

Resolver::~Resolver() {
    stop();
}

void Resolver::apply(std::shared_ptr<const config::Config> cfg) {
    std::lock_guard lk(state_->mu);
    state_->cfg = std::move(cfg);
    ++state_->generation;
    state_->cv.notify_all();
}

void Resolver::stop() {
    if (!thread_.joinable()) return;
    {
        std::unique_lock lk(state_->mu);
        state_->stopping = true;
        state_->cv.notify_all();
        if (!state_->cv.wait_for(lk, kStopWait, [this] { return state_->exited; })) {
            thread_.detach();
            return;
        }
    }
    thread_.join();
}

}  // namespace dsgw::upstream
