#pragma once
// The daemon's own log lines (spdlog, text or JSON on stderr). Access-log
// lines are separate: see access_log.hpp.

#include "deepseek_gateway/config/config.hpp"

#include <spdlog/spdlog.h>

namespace dsgw::log {

// Installs the default logger: stderr, the given format and level. Safe to
// call again on reload.
void setup(config::LogFormat format, config::LogLevel level);

}  // namespace dsgw::log
