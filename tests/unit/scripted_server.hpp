#pragma once
// For the tests of the side clients of src/upstream (the model lister, the
// load scraper): a loopback HTTP server with a scripted answer, and the
// daemon's log lines.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace dsgw::upstream::testing {

// A loopback HTTP server that answers every connection with the scripted
// response, then closes it; or, when hanging, reads the request and never
// answers.
class ScriptedServer {
public:
    ScriptedServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            return;
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedServer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        for (int c : held_) ::close(c);
        ::close(fd_);
    }

    std::uint16_t port() const { return port_; }
    void answer(int status, const std::string& body,
                const std::string& content_type = "application/json") {
        std::lock_guard lock(mu_);
        raw_ = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + content_type +
               "\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\nConnection: close\r\n\r\n" + body;
    }
    void answer_raw(std::string raw) {
        std::lock_guard lock(mu_);
        raw_ = std::move(raw);
    }
    // GET /v1/models's answer (OpenAI's list shape).
    void answer_list(const std::vector<std::string>& ids) {
        std::string body = R"({"object":"list","data":[)";
        for (std::size_t i = 0; i < ids.size(); ++i)
            body += (i ? "," : "") + std::string(R"({"id":")") + ids[i] +
                    R"(","object":"model","created":1,"owned_by":"vllm","max_model_len":8192})";
        answer(200, body + "]}");
    }
    void hang() { hang_ = true; }
    int requests() const { return requests_; }
    std::string last_request() const {
        std::lock_guard lock(mu_);
        return last_;
    }

private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            std::string req;
            char buf[4096];
            while (req.find("\r\n\r\n") == std::string::npos) {
                pollfd q{c, POLLIN, 0};
                if (::poll(&q, 1, 2000) <= 0) break;
                auto n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                req.append(buf, static_cast<std::size_t>(n));
            }
            std::string raw;
            {
                std::lock_guard lock(mu_);
                last_ = req;
                raw = raw_;
            }
            ++requests_;
            if (hang_) {
                held_.push_back(c);
                continue;
            }
            ::send(c, raw.data(), raw.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> hang_{false};
    std::atomic<int> requests_{0};
    mutable std::mutex mu_;
    std::string raw_;
    std::string last_;
    std::vector<int> held_;  // the serving thread's only
};

// The daemon's log lines ("LEVEL message") while it lives. Read it only once
// the lines are known to be written (a round's future is ready after them).
class LogCapture {
public:
    LogCapture() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
        sink->set_pattern("%l %v");
        auto logger = std::make_shared<spdlog::logger>("capture", sink);
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(logger);
    }
    ~LogCapture() { spdlog::set_default_logger(previous_); }
    int count(const std::string& needle) const {
        const auto text = out_.str();
        int n = 0;
        for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
            ++n;
        return n;
    }

private:
    std::shared_ptr<spdlog::logger> previous_;
    std::ostringstream out_;
};

}  // namespace dsgw::upstream::testing
