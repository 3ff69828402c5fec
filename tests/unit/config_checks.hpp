#pragma once
// What the configuration tests check a load by: every error shown when one
// fails, exactly one error, a listener that loaded.

#include "deepseek_gateway/config/config.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dsgw::config::testing {

// One line each, indented, for a failure message.
inline std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& e : v) s += "  " + e + "\n";
    return s;
}

// Exactly one error, with exactly this text, and no configuration.
inline void expect_one_error(const std::string& yaml, const std::string& error) {
    auto r = load_config_string(yaml);
    EXPECT_EQ(r.errors, std::vector<std::string>{error}) << "errors:\n" << joined(r.errors);
    EXPECT_EQ(r.config, nullptr);
}

// The first listener of a load that must have succeeded.
inline const ListenerConfig& loaded_listener(const LoadResult& r) {
    static const ListenerConfig none;
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
    return r.config ? r.config->listeners.at(0) : none;
}

}  // namespace dsgw::config::testing
