// The daemon's life: start (bind every listener on every worker, then
// READY=1), signals (SIGHUP reload, SIGTERM/SIGINT drain, a second one exits
// at once), new addresses of host names (applied like a reload), the systemd
// watchdog and status line. The main thread runs only main_io; everything
// that touches a worker's state is post()ed to it. Past ~500 lines on
// purpose: a SIGHUP reload and an address change share one plan and one way
// of applying it, and read best side by side.

#include "deepseek_gateway/app/app.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/app/systemd.hpp"
#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/log/log.hpp"
#include "deepseek_gateway/net/inherited.hpp"
#include "deepseek_gateway/net/listener.hpp"
#include "deepseek_gateway/admin/admin_server.hpp"
#include "deepseek_gateway/admin/readiness.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/metrics/sample.hpp"
#include "deepseek_gateway/upstream/health.hpp"
#include "deepseek_gateway/upstream/load_scraper.hpp"
#include "deepseek_gateway/upstream/models.hpp"
#include "deepseek_gateway/upstream/resolver.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <system_error>

namespace dsgw::app {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kStatusInterval = std::chrono::seconds(5);

std::string endpoint_text(const tcp::endpoint& ep) {
    if (ep.address().is_v6()) return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

bool same_address(const config::ListenerConfig& a, const config::ListenerConfig& b) {
    return a.ip == b.ip && a.address.port == b.address.port;
}

std::uint64_t per_worker_connections(const config::Config& c, std::size_t workers) {
    return std::max<std::uint64_t>(1, (c.limits.max_connections + workers - 1) / workers);
}

const char* signal_name(int sig) {
    switch (sig) {
        case SIGTERM: return "SIGTERM";
        case SIGINT: return "SIGINT";
        case SIGHUP: return "SIGHUP";
    }
    return "signal";
}


}  // namespace

struct App::Impl {
    // First, so that it outlives everything holding its handles.
    metrics::Metrics metrics{DSGW_VERSION};
    std::string config_path;
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const Runtime> runtime;
    std::shared_ptr<log::AccessLog> access_log;
    std::vector<std::unique_ptr<Worker>> workers;
    // Active health checks: one prober for the process, on its own thread.
    std::unique_ptr<upstream::HealthChecker> health;
    // The servers' model lists, for GET /v1/models on routed listeners; on
    // its own thread.
    std::unique_ptr<upstream::ModelLister> models;
    // The servers' own load (upstreams[].load_metrics), on its own thread.
    std::unique_ptr<upstream::LoadScraper> loads;
    // Re-resolution of host names (resolve_interval), on its own thread.
    std::unique_ptr<upstream::Resolver> resolver;
    // /metrics, /healthz, /readyz, on worker 0's event loop.
    std::unique_ptr<admin::AdminServer> admin;
    // Listening sockets from systemd socket activation (usually none).
    net::InheritedSockets inherited;

    // config_reloads_total{result}: once per SIGHUP, on the main thread.
    void count_reload(bool success) { metrics.reload_result(success); }

    asio::io_context main_io{1};
    asio::signal_set signals{main_io, SIGINT, SIGTERM, SIGHUP};
    asio::steady_timer drain_timer{main_io};
    asio::steady_timer watchdog_timer{main_io};
    asio::steady_timer status_timer{main_io};
    bool draining = false;
    std::size_t workers_busy = 0;

    // reload: one at a time; a SIGHUP during one runs another after it, and
    // so do new addresses found meanwhile (the latest set waits)
    bool reload_busy = false;
    bool reload_again = false;
    std::optional<upstream::AddressUpdate> addresses_waiting;
    std::size_t reload_acks = 0;

    // watchdog: one ping round per half period
    Clock::duration watchdog_period{};
    std::uint64_t ping_round = 0;
    std::vector<bool> answered;
    std::size_t answers = 0;
    bool stall_logged = false;

    // status: requests/s over the last interval
    std::uint64_t status_requests = 0;
    Clock::time_point status_at{};

    // Reload, step by step: everything that can fail is done first, into a
    // plan; only a complete plan is applied.
    struct ReloadPlan {
        std::shared_ptr<const config::Config> next;
        std::shared_ptr<const Runtime> runtime;
        std::shared_ptr<log::AccessLog> access_log;
        std::vector<ListenerChanges> changes;  // one per worker
        std::vector<std::string> notes;        // what changes, for the log
        // Only addresses of host names changed (no file was read): not a
        // configuration reload for systemd and config_reloads_total.
        bool addresses_only = false;
    };

    int start();
    int bind_at_start(const config::ListenerConfig& lc, std::size_t index);
    void wait_signal();
    void reload();
    std::optional<ReloadPlan> prepare_reload(std::vector<std::string>& errors);
    bool plan_listeners(ReloadPlan& plan, std::vector<std::string>& errors);
    void apply_reload(ReloadPlan plan);
    void reload_finished(bool addresses_only, std::vector<std::string> notes);
    void apply_addresses(upstream::AddressUpdate update);
    void drain();
    void start_watchdog();
    void watchdog_tick();
    void start_status();
    std::string status_text();
};

App::App(std::string config_path, std::shared_ptr<const config::Config> config)
    : impl_(std::make_unique<Impl>()) {
    impl_->config_path = std::move(config_path);
    impl_->config = std::move(config);
}

App::~App() {
    // Its callback posts to main_io, a member destroyed before it.
    if (impl_->resolver) impl_->resolver->stop();
}

// ---- start -----------------------------------------------------------------

int App::Impl::start() {
    log::setup(config->logging.format, config->logging.level);
    try {
        access_log = std::make_shared<log::AccessLog>(config->logging.access_log);
        runtime = Runtime::build(config, nullptr, &metrics);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "deepseek-gateway: %s\n", e.what());
        return 3;
    }
    try {
        inherited = net::InheritedSockets::from_environment();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "deepseek-gateway: %s\n", e.what());
        return 3;
    }
    for (unsigned i = 0; i < config->workers; ++i)
        workers.push_back(std::make_unique<Worker>(i, runtime, access_log));
    for (std::size_t i = 0; i < config->listeners.size(); ++i)
        if (int rc = bind_at_start(config->listeners[i], i); rc != 0) return rc;
    // A socket systemd opened that no listener takes would accept connections
    // nobody answers: refuse to start instead.
    for (const auto& s : inherited.unused()) {
        std::fprintf(stderr,
                     "deepseek-gateway: socket activation: the socket on %s matches no "
                     "listeners[].address (ListenStream= in the .socket unit and the YAML must "
                     "name the same address)\n",
                     s.c_str());
        return 3;
    }
    // The admin listener runs on worker 0's event loop: its readiness check
    // and the gauges sampled before a render read that worker's runtime.
    auto* w0 = workers.front().get();
    admin = std::make_unique<admin::AdminServer>(w0->io(), config->admin, metrics);
    admin->set_metrics_enabled(config->admin.metrics);
    admin->set_readiness_check(
        [w0] { return admin::unready_upstream(*w0->runtime()->upstream_set()); });
    metrics.set_before_render([w0] {
        const auto& rt = w0->runtime();
        if (rt->metrics) metrics::sample_upstreams(*rt->upstream_set(), *rt->metrics);
    });
    try {
        admin->start();
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "deepseek-gateway: %s\n", e.what());
        return 3;
    }
    for (auto& w : workers) w->start();
    health = std::make_unique<upstream::HealthChecker>();
    health->apply(runtime->upstream_set());
    // The first lists come before "ready", so that GET /v1/models offers the
    // servers' names from the first request on. Each server's answer is
    // bounded by its upstream's health_check.timeout, and only upstreams
    // that routes use are asked.
    models = std::make_unique<upstream::ModelLister>();
    models->apply(runtime->upstream_set()).wait();
    // Not waited for: until a server's first scrape, its load is its
    // requests in flight.
    loads = std::make_unique<upstream::LoadScraper>();
    loads->apply(runtime->upstream_set(), runtime->metrics);
    resolver = std::make_unique<upstream::Resolver>([this](upstream::AddressUpdate u) {
        asio::post(main_io, [this, u = std::move(u)]() mutable { apply_addresses(std::move(u)); });
    });
    resolver->apply(config);
    // /readyz answers 200 from here on: before the log line and READY=1, so
    // that whoever waits for either finds the gateway ready.
    admin->set_serving(true);
    spdlog::info("gateway ready: {} listener(s), {} worker(s), config {}", config->listeners.size(),
                 workers.size(), config_path);
    systemd::notify_ready(status_text());
    start_watchdog();
    start_status();
    return 0;
}

// One acceptor per worker on the listener's address (SO_REUSEPORT).
int App::Impl::bind_at_start(const config::ListenerConfig& lc, std::size_t index) {
    tcp::endpoint ep(lc.ip, lc.address.port);
    const auto per_worker = per_worker_connections(*config, workers.size());
    bool from_systemd = false;
    try {
        for (auto& w : workers) {
            auto acceptor = net::open_acceptor(w->io(), ep, inherited, &from_systemd);
            ep = acceptor.local_endpoint();  // port 0: the others share the port chosen
            w->add_listener(
                std::make_unique<net::Listener>(*w, lc.name, std::move(acceptor), per_worker));
        }
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "deepseek-gateway: listeners[%zu].address: %s (listener %s)\n", index,
                     e.what(), lc.name.c_str());
        return 3;
    }
    spdlog::info("listener {} listening on {}{}", lc.name, endpoint_text(ep),
                 from_systemd ? " (socket from systemd)" : "");
    return 0;
}

// ---- signals ---------------------------------------------------------------

void App::Impl::wait_signal() {
    signals.async_wait([this](boost::system::error_code ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            reload();
        } else if (draining) {
            std::uint64_t open = 0;
            for (auto& w : workers) open += w->sessions();
            spdlog::warn("second signal ({}): exiting now, closing {} connection(s)",
                         signal_name(sig), open);
            if (access_log) access_log->flush();
            // At once, even if a worker's event loop is stuck.
            std::_Exit(0);
        } else {
            spdlog::info("{}: draining", signal_name(sig));
            drain();
        }
        wait_signal();
    });
}

// ---- reload ----------------------------------------------------------------

void App::Impl::reload() {
    if (draining) {
        spdlog::warn("SIGHUP ignored: the gateway is draining");
        return;
    }
    if (reload_busy) {  // the previous one is still being applied
        reload_again = true;
        return;
    }
    reload_busy = true;
    systemd::notify_reloading();
    spdlog::info("SIGHUP: reloading {}", config_path);
    std::vector<std::string> errors;
    auto plan = prepare_reload(errors);
    if (!plan) {
        for (const auto& e : errors) spdlog::error("reload rejected: {}", e);
        spdlog::error("reload rejected: {} error(s) in {}; the previous configuration keeps serving",
                      errors.size(), config_path);
        count_reload(false);
        reload_busy = false;
        systemd::notify_ready(status_text());
        if (reload_again) {
            reload_again = false;
            reload();
        }
        return;
    }
    apply_reload(std::move(*plan));
}

std::optional<App::Impl::ReloadPlan> App::Impl::prepare_reload(std::vector<std::string>& errors) {
    ReloadPlan plan;
    auto loaded = config::load_config_file(config_path);
    for (const auto& w : loaded.warnings) spdlog::warn("reload: {}", w);
    if (!loaded.errors.empty()) {
        errors = std::move(loaded.errors);
        return std::nullopt;
    }
    plan.next = loaded.config;
    if (plan.next->workers != workers.size())
        spdlog::warn("reload: workers: {} -> {} takes effect at the next restart; still running {}",
                     workers.size(), plan.next->workers, workers.size());
    try {
        // Throws when TLS material (certificates, keys, CAs) cannot be loaded.
        plan.runtime = Runtime::build(plan.next, runtime.get(), &metrics);
    } catch (const std::exception& e) {
        errors.push_back(e.what());
        return std::nullopt;
    }
    plan.access_log = access_log;
    // A file is reopened on every reload, so that logrotate can move it away
    // and then `systemctl reload` (its postrotate) starts a new one.
    const auto& target = plan.next->logging.access_log;
    if (target != config->logging.access_log || (target != "stdout" && target != "off")) {
        try {
            plan.access_log = std::make_shared<log::AccessLog>(plan.next->logging.access_log);
        } catch (const std::exception& e) {
            errors.push_back(std::string("logging.access_log: ") + e.what());
            return std::nullopt;
        }
    }
    // Last: binding is the only step with a side effect on the outside world
    // (acceptors that exist while the plan does), undone by dropping the plan.
    if (!plan_listeners(plan, errors)) return std::nullopt;
    return plan;
}

// Listeners are matched by name: a new name is bound, a name gone is unbound,
// a name whose address changed is bound at the new address and unbound at
// the old one. Everything else (access lists, TLS, upstream) follows the
// runtime, which sessions look up per connection and per request.
bool App::Impl::plan_listeners(ReloadPlan& plan, std::vector<std::string>& errors) {
    const auto& next = *plan.next;
    const auto per_worker = per_worker_connections(next, workers.size());
    plan.changes.resize(workers.size());
    for (auto& c : plan.changes) c.max_connections = per_worker;
    for (std::size_t i = 0; i < next.listeners.size(); ++i) {
        const auto& lc = next.listeners[i];
        const auto* was = runtime->listener(lc.name);
        const config::ListenerConfig* old = was ? was->config : nullptr;
        if (old && same_address(*old, lc)) continue;
        tcp::endpoint ep(lc.ip, lc.address.port);
        try {
            for (std::size_t w = 0; w < workers.size(); ++w) {
                auto acceptor = net::open_acceptor(workers[w]->io(), ep, inherited, nullptr);
                ep = acceptor.local_endpoint();
                plan.changes[w].bind.push_back(std::make_unique<net::Listener>(
                    *workers[w], lc.name, std::move(acceptor), per_worker));
                if (old) plan.changes[w].unbind.push_back(lc.name);
            }
        } catch (const std::system_error& e) {
            errors.push_back("listeners[" + std::to_string(i) + "].address: " + e.what() +
                             " (listener " + lc.name + ")");
            return false;
        }
        if (old)
            plan.notes.push_back("listener " + lc.name + " moved from " + old->address.to_string() +
                                 " to " + endpoint_text(ep));
        else
            plan.notes.push_back("listener " + lc.name + " listening on " + endpoint_text(ep));
    }
    for (const auto& old : config->listeners) {
        if (plan.runtime->listener(old.name)) continue;
        for (auto& c : plan.changes) c.unbind.push_back(old.name);
        plan.notes.push_back("listener " + old.name + " on " + old.address.to_string() +
                             " removed: no new connections; open ones finish their current request");
    }
    return true;
}

void App::Impl::apply_reload(ReloadPlan plan) {
    if (!plan.addresses_only) {
        if (plan.next->logging.format != config->logging.format ||
            plan.next->logging.level != config->logging.level)
            log::setup(plan.next->logging.format, plan.next->logging.level);
        for (const auto& note : plan.notes) spdlog::info("reload: {}", note);
        if (admin) {
            admin->update_access(plan.next->admin.access);
            admin->set_metrics_enabled(plan.next->admin.metrics);
            if (plan.next->admin.address.to_string() != config->admin.address.to_string())
                spdlog::warn("reload: admin.address changes take effect at the next restart");
        }
    }
    config = plan.next;
    runtime = plan.runtime;
    access_log = plan.access_log;
    if (health) health->apply(runtime->upstream_set());
    if (models) models->apply(runtime->upstream_set());
    if (loads) loads->apply(runtime->upstream_set(), runtime->metrics);
    if (resolver) resolver->apply(config);  // a reload resolved every name afresh
    // READY=1 waits until every worker serves new requests on the new
    // configuration, so `systemctl reload` returns when it is in effect.
    reload_acks = workers.size();
    auto done = std::make_shared<std::pair<bool, std::vector<std::string>>>(
        plan.addresses_only, std::move(plan.notes));
    for (std::size_t i = 0; i < workers.size(); ++i) {
        auto changes = std::make_shared<ListenerChanges>(std::move(plan.changes[i]));
        asio::post(workers[i]->io(), [this, w = workers[i].get(), rt = runtime, log = access_log,
                                      changes, done] {
            w->reconfigure(rt, log, std::move(*changes));
            asio::post(main_io, [this, done] {
                if (--reload_acks == 0) reload_finished(done->first, std::move(done->second));
            });
        });
    }
}

void App::Impl::reload_finished(bool addresses_only, std::vector<std::string> notes) {
    if (addresses_only) {
        // Logged once the change is in effect on every worker.
        for (const auto& note : notes) spdlog::info("{}", note);
    } else {
        spdlog::info("configuration reloaded: {} listener(s), {} upstream(s)",
                     config->listeners.size(), config->upstreams.size());
        count_reload(true);
    }
    reload_busy = false;
    if (draining) return;  // STOPPING=1 was sent: no READY=1 after it
    if (!addresses_only) systemd::notify_ready(status_text());
    if (reload_again) {
        reload_again = false;
        addresses_waiting.reset();  // the reload resolves every name again
        reload();
    } else if (addresses_waiting) {
        auto update = std::move(*addresses_waiting);
        addresses_waiting.reset();
        apply_addresses(std::move(update));
    }
}

// ---- new addresses of host names -------------------------------------------

// Like a reload, from the configuration in force with new `resolved` sets:
// the file is not read again, listeners and TLS contexts are kept, servers
// that stay keep their UpstreamServer (counts, health, backoff), requests
// under way on a removed address finish on the runtime they started with.
void App::Impl::apply_addresses(upstream::AddressUpdate update) {
    if (draining || update.base != config) return;  // a reload came first
    if (reload_busy) {
        addresses_waiting = std::move(update);
        return;
    }
    auto next = std::make_shared<config::Config>(*config);
    ReloadPlan plan;
    for (auto& c : update.changes) {
        const auto& up = next->upstreams.at(c.upstream);
        auto& s = next->upstreams.at(c.upstream).servers.at(c.server);
        plan.notes.push_back("upstream " + up.name + " server " + s.address.to_string() +
                             ": addresses " + config::join_addresses(s.resolved) + " -> " +
                             config::join_addresses(c.addresses));
        s.resolved = std::move(c.addresses);
    }
    plan.next = next;
    try {
        plan.runtime =
            Runtime::build(plan.next, runtime.get(), &metrics, Runtime::TlsMaterial::keep);
    } catch (const std::exception& e) {  // nothing to load: not expected
        spdlog::error("new upstream addresses not applied: {}", e.what());
        return;
    }
    plan.access_log = access_log;
    plan.changes.resize(workers.size());
    for (auto& c : plan.changes) c.max_connections = per_worker_connections(*next, workers.size());
    plan.addresses_only = true;
    reload_busy = true;
    apply_reload(std::move(plan));
}

// ---- drain -----------------------------------------------------------------

void App::Impl::drain() {
    if (admin) admin->set_serving(false);  // /readyz: 503 from now on
    draining = true;
    systemd::notify_stopping(status_text());
    spdlog::info("draining: no new connections; waiting up to {} ms for in-flight requests",
                 config->shutdown_timeout.count());
    workers_busy = workers.size();
    for (auto& w : workers) {
        w->drain([this] {
            asio::post(main_io, [this] {
                if (--workers_busy == 0) {
                    spdlog::info("drained: every connection closed; exiting");
                    main_io.stop();
                }
            });
        });
    }
    drain_timer.expires_after(config->shutdown_timeout);
    drain_timer.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        std::uint64_t open = 0;
        for (auto& w : workers) open += w->sessions();
        spdlog::warn("shutdown_timeout ({} ms) reached: closing {} connection(s) still open",
                     config->shutdown_timeout.count(), open);
        main_io.stop();
    });
}

// ---- systemd watchdog and status -------------------------------------------

// WATCHDOG=1 only when every worker's event loop has run a ping posted to it
// since the previous beat: a loop stuck in a handler stops the beats, and
// systemd restarts the service.
void App::Impl::start_watchdog() {
    const auto timeout = systemd::watchdog_timeout();
    if (timeout.count() == 0) return;
    watchdog_period = std::max<Clock::duration>(timeout / 2, std::chrono::milliseconds(1));
    answered.assign(workers.size(), true);
    answers = workers.size();
    spdlog::info("systemd watchdog: {} ms; every worker is pinged every {} ms",
                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_period).count());
    watchdog_tick();
}

void App::Impl::watchdog_tick() {
    if (answers < workers.size()) {
        if (!stall_logged) {
            for (std::size_t i = 0; i < workers.size(); ++i)
                if (!answered[i])
                    spdlog::error("watchdog: worker {} has not answered a ping for {} ms; "
                                  "withholding WATCHDOG=1",
                                  i,
                                  std::chrono::duration_cast<std::chrono::milliseconds>(
                                      watchdog_period)
                                      .count());
            stall_logged = true;
        }
        // Keep waiting for that round: a new one would hide the stall.
    } else {
        stall_logged = false;
        const auto round = ++ping_round;
        answers = 0;
        answered.assign(workers.size(), false);
        for (std::size_t i = 0; i < workers.size(); ++i) {
            asio::post(workers[i]->io(), [this, round, i] {
                asio::post(main_io, [this, round, i] {
                    if (round != ping_round || answered[i]) return;
                    answered[i] = true;
                    if (++answers == workers.size()) systemd::notify_watchdog();
                });
            });
        }
    }
    watchdog_timer.expires_after(watchdog_period);
    watchdog_timer.async_wait([this](boost::system::error_code ec) {
        if (!ec) watchdog_tick();
    });
}

std::string App::Impl::status_text() {
    std::uint64_t open = 0, requests = 0;
    for (auto& w : workers) {
        open += w->sessions();
        requests += w->requests();
    }
    const auto now = Clock::now();
    double rate = 0;
    if (status_at != Clock::time_point{}) {
        const double secs = std::chrono::duration<double>(now - status_at).count();
        if (secs > 0) rate = static_cast<double>(requests - status_requests) / secs;
    }
    status_requests = requests;
    status_at = now;
    char text[160];
    std::snprintf(text, sizeof text, "%s: %llu connection(s), %.1f requests/s, %zu worker(s)",
                  draining ? "draining" : "serving", static_cast<unsigned long long>(open), rate,
                  workers.size());
    return text;
}

void App::Impl::start_status() {
    if (!systemd::notify_socket_set()) return;
    status_timer.expires_after(kStatusInterval);
    status_timer.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        systemd::notify_status(status_text());
        start_status();
    });
}

// ---- run -------------------------------------------------------------------

int App::run() {
    auto& d = *impl_;
    if (int rc = d.start(); rc != 0) return rc;
    d.wait_signal();
    d.main_io.run();
    if (d.resolver) d.resolver->stop();
    if (d.health) d.health->stop();
    if (d.models) d.models->stop();
    if (d.loads) d.loads->stop();
    for (auto& w : d.workers) w->stop();
    for (auto& w : d.workers) w->join();
    if (d.admin) d.admin->stop();
    d.admin.reset();  // before the worker whose event loop it used
    d.workers.clear();
    if (d.access_log) d.access_log->flush();
    return 0;
}

}  // namespace dsgw::app
