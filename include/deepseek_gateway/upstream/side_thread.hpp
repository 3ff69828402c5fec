#pragma once
// One thread with an event loop of its own, for the gateway's side clients of
// the upstream servers (the health checker, the model lister, the load
// scraper): started when constructed, stopped by stop(). The owner calls
// stop() in its own destructor, before the state its handlers use goes.
// generation() is bumped by the owner at each new round (a reload) and by
// stop(): a loop of an earlier round sees it changed and ends.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdint>
#include <memory>
#include <thread>

namespace dsgw::upstream {

class SideThread {
public:
    SideThread() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
    ~SideThread() { stop(); }
    SideThread(const SideThread&) = delete;
    SideThread& operator=(const SideThread&) = delete;

    boost::asio::io_context& io() { return io_; }
    const std::shared_ptr<std::uint64_t>& generation() const { return generation_; }

    void stop() {
        if (!thread_.joinable()) return;
        boost::asio::post(io_, [g = generation_] { ++*g; });
        work_.reset();
        io_.stop();
        thread_.join();
    }

private:
    boost::asio::io_context io_{1};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::shared_ptr<std::uint64_t> generation_ = std::make_shared<std::uint64_t>(0);
    std::thread thread_;
};

}  // namespace dsgw::upstream
