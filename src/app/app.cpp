#include "deepseek_gateway/app/app.hpp"

#include "deepseek_gateway/app/worker.hpp"
#include "deepseek_gateway/log/log.hpp"
#include "deepseek_gateway/net/listener.hpp"
#include "deepseek_gateway/upstream/upstream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdio>
#include <system_error>

namespace dsgw::app {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::string endpoint_text(const tcp::endpoint& ep) {
    if (ep.address().is_v6()) return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

struct App::Impl {
    std::string config_path;
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const upstream::Runtime> runtime;
    std::shared_ptr<log::AccessLog> access_log;
    std::vector<std::unique_ptr<Worker>> workers;

    asio::io_context main_io{1};
    asio::signal_set signals{main_io, SIGINT, SIGTERM, SIGHUP};
    asio::steady_timer drain_timer{main_io};
    bool draining = false;
    std::size_t workers_busy = 0;

    int start();
    void wait_signal();
    void reload();
    void drain();
};

App::App(std::string config_path, std::shared_ptr<const config::Config> config)
    : impl_(std::make_unique<Impl>()) {
    impl_->config_path = std::move(config_path);
    impl_->config = std::move(config);
}

App::~App() = default;

int App::Impl::start() {
    log::setup(config->logging.format, config->logging.level);
    try {
        access_log = std::make_shared<log::AccessLog>(config->logging.access_log);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "deepseek-gateway: %s\n", e.what());
        return 3;
    }
    runtime = upstream::Runtime::build(config, nullptr);
    for (unsigned i = 0; i < config->workers; ++i)
        workers.push_back(std::make_unique<Worker>(i, runtime, access_log));

    for (const auto& lc : config->listeners) {
        tcp::endpoint ep(lc.ip, lc.address.port);
        const auto per_worker =
            std::max<std::uint64_t>(1, (config->limits.max_connections + workers.size() - 1) / workers.size());
        try {
            for (auto& w : workers) {
                auto acceptor = net::bind_acceptor(w->io(), ep);
                ep = acceptor.local_endpoint();  // port 0: the others share the port chosen
                w->add_listener(std::make_unique<net::Listener>(*w, lc.name, std::move(acceptor),
                                                                per_worker));
            }
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "deepseek-gateway: listeners[%s].address: %s: %s\n",
                         lc.name.c_str(), e.what(), e.code().message().c_str());
            return 3;
        }
        spdlog::info("listener {} listening on {}", lc.name, endpoint_text(ep));
    }
    for (auto& w : workers) w->start();
    spdlog::info("gateway ready: {} listener(s), {} worker(s), config {}", config->listeners.size(),
                 workers.size(), config_path);
    sd_notifyf(0, "READY=1\nSTATUS=serving %zu listener(s) with %zu worker(s)",
               config->listeners.size(), workers.size());
    return 0;
}

void App::Impl::wait_signal() {
    signals.async_wait([this](boost::system::error_code ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            reload();
        } else if (draining) {
            spdlog::warn("second signal: exiting now");
            for (auto& w : workers) w->stop();
            main_io.stop();
            return;
        } else {
            drain();
        }
        wait_signal();
    });
}

void App::Impl::reload() {
    sd_notify(0, "RELOADING=1");
    spdlog::info("SIGHUP: reloading {}", config_path);
    auto loaded = config::load_config_file(config_path);
    for (const auto& w : loaded.warnings) spdlog::warn("reload: {}", w);
    if (!loaded.errors.empty()) {
        for (const auto& e : loaded.errors) spdlog::error("reload rejected: {}", e);
        spdlog::error("reload rejected: {} error(s); the previous configuration keeps serving",
                      loaded.errors.size());
        sd_notify(0, "READY=1");
        return;
    }
    auto next = loaded.config;
    if (next->listeners.size() != config->listeners.size() || next->workers != config->workers)
        spdlog::warn("reload: listener and worker changes take effect at the next restart");
    for (std::size_t i = 0; i < next->listeners.size() && i < config->listeners.size(); ++i)
        if (next->listeners[i].name != config->listeners[i].name ||
            next->listeners[i].address.to_string() != config->listeners[i].address.to_string())
            spdlog::warn("reload: listener {} changed address or name; that takes effect at the next restart",
                         config->listeners[i].name);
    std::shared_ptr<log::AccessLog> next_log = access_log;
    if (next->logging.access_log != config->logging.access_log) {
        try {
            next_log = std::make_shared<log::AccessLog>(next->logging.access_log);
        } catch (const std::exception& e) {
            spdlog::error("reload rejected: {}", e.what());
            sd_notify(0, "READY=1");
            return;
        }
    }
    log::setup(next->logging.format, next->logging.level);
    auto rt = upstream::Runtime::build(next, runtime.get());
    for (auto& w : workers)
        asio::post(w->io(), [w = w.get(), rt, next_log] { w->set_runtime(rt, next_log); });
    config = next;
    runtime = rt;
    access_log = next_log;
    spdlog::info("configuration reloaded");
    sd_notify(0, "READY=1");
}

void App::Impl::drain() {
    draining = true;
    sd_notify(0, "STOPPING=1");
    spdlog::info("draining: no new connections; waiting up to {} ms for in-flight requests",
                 config->shutdown_timeout.count());
    workers_busy = workers.size();
    for (auto& w : workers) {
        w->drain([this] {
            asio::post(main_io, [this] {
                if (--workers_busy == 0) {
                    spdlog::info("drained: exiting");
                    main_io.stop();
                }
            });
        });
    }
    drain_timer.expires_after(config->shutdown_timeout);
    drain_timer.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        spdlog::warn("shutdown_timeout reached: closing the remaining connections");
        main_io.stop();
    });
}

int App::run() {
    auto& d = *impl_;
    if (int rc = d.start(); rc != 0) return rc;
    d.wait_signal();
    d.main_io.run();
    for (auto& w : d.workers) w->stop();
    for (auto& w : d.workers) w->join();
    d.workers.clear();
    if (d.access_log) d.access_log->flush();
    return 0;
}

}  // namespace dsgw::app
