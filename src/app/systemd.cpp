#include "deepseek_gateway/app/systemd.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace dsgw::app::systemd {

namespace {

void send(const std::string& message) {
    if (!notify_socket_set()) return;
    int r = sd_notify(0, message.c_str());
    if (r < 0) spdlog::warn("systemd: sd_notify failed: {}", std::strerror(-r));
}

std::string status_line(const std::string& status) {
    std::string s;
    for (char c : status) s += c == '\n' ? ' ' : c;  // one line: a newline ends the field
    return "STATUS=" + s;
}

}  // namespace

bool notify_socket_set() {
    const char* s = std::getenv("NOTIFY_SOCKET");
    return s != nullptr && *s != '\0';
}

void notify_ready(const std::string& status) { send("READY=1\n" + status_line(status)); }

void notify_reloading() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ull +
                      static_cast<unsigned long long>(ts.tv_nsec) / 1000ull;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notify_stopping(const std::string& status) { send("STOPPING=1\n" + status_line(status)); }

void notify_status(const std::string& status) { send(status_line(status)); }

void notify_watchdog() { send("WATCHDOG=1"); }

std::chrono::microseconds watchdog_timeout() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
    return std::chrono::microseconds(usec);
}

}  // namespace dsgw::app::systemd
