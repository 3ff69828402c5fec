#pragma once
// The systemd notification protocol (sd_notify(3)), through libsystemd. Every
// call is a no-op when NOTIFY_SOCKET is not set, so the daemon runs the same
// outside systemd. The environment is left in place: later notifications
// (reload, stop, watchdog) need it.

#include <chrono>
#include <string>

namespace dsgw::app::systemd {

// NOTIFY_SOCKET is set: a service manager listens.
bool notify_socket_set();

// READY=1 (start-up done, or a reload done), with a STATUS= line.
void notify_ready(const std::string& status);
// RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC now, µs>.
void notify_reloading();
// STOPPING=1, with a STATUS= line.
void notify_stopping(const std::string& status);
void notify_status(const std::string& status);
void notify_watchdog();

// WATCHDOG_USEC for this process (WATCHDOG_PID, when set, must be ours);
// zero when no watchdog is asked for.
std::chrono::microseconds watchdog_timeout();

}  // namespace dsgw::app::systemd
