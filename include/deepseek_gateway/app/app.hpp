#pragma once
// The daemon: loads the configuration, starts the workers and listeners, and
// handles signals (SIGHUP reload, SIGTERM/SIGINT drain) until it exits.

#include "deepseek_gateway/config/config.hpp"

#include <memory>
#include <string>

namespace dsgw::app {

class App {
public:
    App(std::string config_path, std::shared_ptr<const config::Config> config);
    ~App();

    // Binds, serves, returns the process exit code (0 clean, 3 start failure).
    int run();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dsgw::app
