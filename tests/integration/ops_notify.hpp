#pragma once
// A fake systemd for the operations tests: an AF_UNIX datagram socket the test
// owns, passed to the gateway as NOTIFY_SOCKET, and a guard that sets
// environment variables only for the gateway started in its scope (children
// inherit the environment at exec; the harness spawns from the main thread).

#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsgw::it {

class NotifySocket {
public:
    explicit NotifySocket(std::string path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (fd_ < 0 || path_.size() >= sizeof a.sun_path) return;
        path_.copy(a.sun_path, path_.size());
        ::unlink(path_.c_str());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~NotifySocket() {
        if (fd_ >= 0) ::close(fd_);
        ::unlink(path_.c_str());
    }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    bool ok() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }

    // The next datagram, or nothing after `timeout`.
    std::optional<std::string> next(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
        char buf[4096];
        auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0) return std::nullopt;
        std::string m(buf, static_cast<std::size_t>(n));
        received_.push_back(m);
        return m;
    }

    // Reads datagrams until one holds the line `line` (e.g. "READY=1");
    // returns that datagram. Others read meanwhile stay in received().
    std::optional<std::string> wait_for(std::string_view line, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            auto m = next(left);
            if (!m) return std::nullopt;
            if (has_line(*m, line)) return m;
        }
    }

    const std::vector<std::string>& received() const { return received_; }

    static bool has_line(std::string_view message, std::string_view line) {
        std::size_t pos = 0;
        while (pos <= message.size()) {
            auto end = message.find('\n', pos);
            if (end == std::string_view::npos) end = message.size();
            if (message.substr(pos, end - pos) == line) return true;
            pos = end + 1;
        }
        return false;
    }
    // The value of `KEY=` in a message, if present.
    static std::optional<std::string> field(std::string_view message, std::string_view key) {
        std::size_t pos = 0;
        while (pos < message.size()) {
            auto end = message.find('\n', pos);
            if (end == std::string_view::npos) end = message.size();
            auto l = message.substr(pos, end - pos);
            if (l.size() > key.size() && l.substr(0, key.size()) == key && l[key.size()] == '=')
                return std::string(l.substr(key.size() + 1));
            pos = end + 1;
        }
        return std::nullopt;
    }

private:
    std::string path_;
    int fd_ = -1;
    std::vector<std::string> received_;
};

class EnvGuard {
public:
    EnvGuard(std::vector<std::pair<std::string, std::string>> vars) : vars_(std::move(vars)) {
        for (const auto& [k, v] : vars_) ::setenv(k.c_str(), v.c_str(), 1);
    }
    ~EnvGuard() {
        for (const auto& kv : vars_) ::unsetenv(kv.first.c_str());
    }
    EnvGuard(const EnvGuard&) = delete;
    EnvGuard& operator=(const EnvGuard&) = delete;

private:
    std::vector<std::pair<std::string, std::string>> vars_;
};

}  // namespace dsgw::it
