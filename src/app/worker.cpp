#include "deepseek_gateway/app/worker.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/net/listener.hpp"
#include "deepseek_gateway/proxy/session.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

namespace dsgw::app {

namespace {

// A copy of `rt` whose use count counts only this worker's holders: the
// aliasing constructor shares the control block of a worker-local holder.
std::shared_ptr<const Runtime> worker_local(std::shared_ptr<const Runtime> rt) {
    auto holder = std::make_shared<std::shared_ptr<const Runtime>>(std::move(rt));
    const Runtime* p = holder->get();
    return std::shared_ptr<const Runtime>(std::move(holder), p);
}

std::unordered_set<const upstream::UpstreamServer*> servers_of(const Runtime& rt) {
    std::unordered_set<const upstream::UpstreamServer*> set;
    for (const auto& up : rt.upstreams())
        for (const auto& s : up->servers()) set.insert(s.get());
    return set;
}

constexpr auto kSweepInterval = std::chrono::seconds(1);

}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const Runtime> runtime,
               std::shared_ptr<log::AccessLog> access_log)
    : index_(index), runtime_(worker_local(std::move(runtime))), access_log_(std::move(access_log)) {}

Worker::~Worker() {
    stop();
    join();
    // Sessions refer to this worker and to its listeners: end them first.
    tearing_down_ = true;
    io_.destroy_handlers();
}

void Worker::set_runtime(std::shared_ptr<const Runtime> rt,
                         std::shared_ptr<log::AccessLog> access_log) {
    auto old = std::move(runtime_);
    runtime_ = worker_local(std::move(rt));
    access_log_ = std::move(access_log);
    // Servers that left the configuration: their idle connections go now.
    const auto current = servers_of(*runtime_);
    for (const auto& up : old->upstreams())
        for (const auto& s : up->servers())
            if (!current.count(s.get())) pool_.close_server(s.get());
    // A request still running on the old runtime may give a connection to
    // such a server back to the pool when it ends; and while anything keys
    // the pool by that server's address, the object must stay alive (a new
    // server allocated at the same address would inherit its connections).
    retired_runtimes_.push_back(std::move(old));
    sweep_retired_runtimes();
}

void Worker::sweep_retired_runtimes() {
    if (retired_runtimes_.empty()) return;
    const auto current = servers_of(*runtime_);
    std::erase_if(retired_runtimes_, [&](const std::shared_ptr<const Runtime>& old) {
        if (old.use_count() > 1) return false;  // a session still has it
        for (const auto& up : old->upstreams())
            for (const auto& s : up->servers())
                if (!current.count(s.get())) pool_.close_server(s.get());
        return true;
    });
    if (retired_runtimes_.empty() || sweep_armed_ || tearing_down_) return;
    // Sessions move to the new runtime at their next request, which the
    // worker does not see: look again a little later.
    sweep_armed_ = true;
    sweep_timer_.expires_after(kSweepInterval);
    sweep_timer_.async_wait([this](boost::system::error_code ec) {
        sweep_armed_ = false;
        if (!ec) sweep_retired_runtimes();
    });
}

void Worker::reconfigure(std::shared_ptr<const Runtime> rt,
                         std::shared_ptr<log::AccessLog> access_log, ListenerChanges changes) {
    set_runtime(std::move(rt), std::move(access_log));
    for (const auto& name : changes.unbind) {
        auto it = std::find_if(listeners_.begin(), listeners_.end(),
                               [&](const auto& l) { return l->name() == name; });
        if (it == listeners_.end()) continue;
        auto l = std::move(*it);
        listeners_.erase(it);
        retire_listener(std::move(l));
    }
    for (auto& l : listeners_) l->set_max_connections(changes.max_connections);
    for (auto& l : changes.bind) {
        if (draining_) break;  // a drain began meanwhile: the acceptor just closes
        l->start();
        listeners_.push_back(std::move(l));
    }
}

void Worker::retire_listener(std::unique_ptr<net::Listener> l) {
    l->stop();
    // Its idle keep-alive connections close now; busy ones after their
    // current response (the session finds its listener gone or stopped).
    std::vector<DrainTarget*> idle;
    for (const auto& [s, owner] : sessions_open_)
        if (owner == l.get()) idle.push_back(s);
    for (auto* s : idle)
        if (sessions_open_.count(s)) s->on_drain();
    if (l->active() > 0) retired_listeners_.push_back(std::move(l));
}

void Worker::purge_retired_listeners() {
    if (retired_listeners_.empty() || tearing_down_) return;
    std::erase_if(retired_listeners_, [](const auto& l) { return l->active() == 0; });
}

void Worker::add_listener(std::unique_ptr<net::Listener> l) { listeners_.push_back(std::move(l)); }

net::ListenerHost::Entry Worker::listener_entry(std::string_view name) const {
    const auto* l = runtime_->listener(name);
    if (!l) return {};
    return {&l->config->access, l->metrics};
}

void Worker::on_connection(net::Listener& listener, net::Socket socket,
                           const access::Admission& admission) {
    accepting_from(&listener);  // the session registers with the worker as the listener's
    proxy::start_session(*this, listener, std::move(socket), admission);
    accepting_from(nullptr);
}

void Worker::start() {
    for (auto& l : listeners_) l->start();
    thread_ = std::thread([this] {
        try {
            io_.run();
        } catch (const std::exception& e) {
            spdlog::critical("worker {}: event loop failed: {}", index_, e.what());
            std::abort();
        }
    });
}

void Worker::drain(std::function<void()> on_idle) {
    boost::asio::post(io_, [this, on_idle = std::move(on_idle)]() mutable {
        draining_ = true;
        on_idle_ = std::move(on_idle);
        for (auto& l : listeners_) l->stop();
        pool_.close_all();
        sweep_timer_.cancel();
        // on_drain() may end a session and so erase it from the map.
        std::vector<DrainTarget*> open;
        for (const auto& entry : sessions_open_) open.push_back(entry.first);
        for (auto* s : open)
            if (sessions_open_.count(s)) s->on_drain();
        call_on_idle_if_done();
    });
}

void Worker::session_ended() {
    sessions_.fetch_sub(1, std::memory_order_relaxed);
    purge_retired_listeners();
    if (draining_) {
        // A request that finished during the drain gave its upstream
        // connection back to the pool: nothing is kept for later now.
        if (!tearing_down_) pool_.close_all();
        call_on_idle_if_done();
    } else if (!retired_runtimes_.empty() && !tearing_down_) {
        sweep_retired_runtimes();
    }
}

void Worker::call_on_idle_if_done() {
    if (sessions() != 0 || !on_idle_) return;
    auto f = std::move(on_idle_);
    on_idle_ = nullptr;
    f();
}

void Worker::stop() { io_.stop(); }

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

}  // namespace dsgw::app
