#include "deepseek_gateway/app/worker.hpp"

#include "deepseek_gateway/net/listener.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace dsgw::app {

Worker::Worker(unsigned index, std::shared_ptr<const upstream::Runtime> runtime,
               std::shared_ptr<log::AccessLog> access_log)
    : index_(index), runtime_(std::move(runtime)), access_log_(std::move(access_log)) {}

Worker::~Worker() {
    stop();
    join();
    // Sessions refer to this worker and to its listeners: end them first.
    io_.destroy_handlers();
}

void Worker::set_runtime(std::shared_ptr<const upstream::Runtime> rt,
                         std::shared_ptr<log::AccessLog> access_log) {
    // Servers that left the configuration: their idle connections go now.
    for (const auto& old_up : runtime_->upstreams)
        for (const auto& s : old_up->servers()) {
            bool kept = false;
            for (const auto& new_up : rt->upstreams)
                for (const auto& n : new_up->servers()) kept = kept || n.get() == s.get();
            if (!kept) pool_.close_server(s.get());
        }
    runtime_ = std::move(rt);
    access_log_ = std::move(access_log);
}

void Worker::add_listener(std::unique_ptr<net::Listener> l) { listeners_.push_back(std::move(l)); }

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
        // on_drain() may end a session and so erase it from the set.
        std::vector<DrainTarget*> open(sessions_open_.begin(), sessions_open_.end());
        for (auto* s : open)
            if (sessions_open_.count(s)) s->on_drain();
        if (sessions_ == 0 && on_idle_) {
            auto f = std::move(on_idle_);
            on_idle_ = nullptr;
            f();
        }
    });
}

void Worker::session_ended() {
    --sessions_;
    if (draining_ && sessions_ == 0 && on_idle_) {
        auto f = std::move(on_idle_);
        on_idle_ = nullptr;
        f();
    }
}

void Worker::stop() { io_.stop(); }

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

}  // namespace dsgw::app
