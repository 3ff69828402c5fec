#pragma once
// The gateway's admin listener in tests: start with one on port 0, GET from
// it, and a /metrics scrape parsed into series (Scrape).

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace dsgw::it {

using Labels = std::map<std::string, std::string>;
inline const std::string P = "deepseek_gateway_";

// --- configuration with an admin: section -----------------------------------------

// `yaml` with its top-level admin: block (if any) replaced by `admin`.
inline std::string with_admin(std::string yaml,
                              const std::string& admin = "admin:\n  address: 127.0.0.1:0\n") {
    auto start = yaml.rfind("\nadmin:", std::string::npos);
    if (yaml.rfind("admin:", 0) == 0) start = 0;
    if (start != std::string::npos) {
        auto from = start == 0 ? 0 : start + 1;
        auto end = from;
        // The block ends at the next line that starts a top-level key.
        for (;;) {
            end = yaml.find('\n', end);
            if (end == std::string::npos || end + 1 >= yaml.size()) {
                end = yaml.size();
                break;
            }
            ++end;
            if (yaml[end] != ' ' && yaml[end] != '#') break;
        }
        yaml.erase(from, end - from);
    }
    if (!yaml.empty() && yaml.back() != '\n') yaml += '\n';
    return yaml + admin;
}

inline std::optional<std::uint16_t> admin_port(Gateway& gw) {
    static const std::regex re(R"(admin listening on 127\.0\.0\.1:(\d+))");
    auto m = gw.process().wait_for_line(re, 10s);
    if (!m) return std::nullopt;
    return static_cast<std::uint16_t>(std::stoi((*m)[1]));
}

// Starts `gw` with `cfg` and an admin listener on 127.0.0.1:0; returns the
// admin port.
inline std::optional<std::uint16_t> start_with_admin(
    Gateway& gw, const GatewayConfig& cfg,
    const std::string& admin = "admin:\n  address: 127.0.0.1:0\n") {
    if (!gw.start(with_admin(cfg.yaml(), admin))) return std::nullopt;
    return admin_port(gw);
}

inline std::optional<Response> admin_get(std::uint16_t port, const std::string& path,
                                         const std::string& method = "GET") {
    std::string err;
    auto r = request_once(port, http_request(method, path, {}, "", "HTTP/1.1", "admin"), "", 10s,
                          &err, "127.0.0.1");
    EXPECT_TRUE(r) << method << " " << path << ": " << err;
    return r;
}

// --- a scrape, parsed ---------------------------------------------------------------

class Scrape {
public:
    explicit Scrape(std::string text) : text_(std::move(text)) {
        std::istringstream in(text_);
        for (std::string line; std::getline(in, line);) {
            if (line.empty() || line[0] == '#') continue;
            auto brace = line.find('{');
            auto space = line.rfind(' ');
            if (space == std::string::npos) continue;
            std::string name = line.substr(0, std::min(brace, space));
            Labels labels;
            if (brace != std::string::npos && brace < space) {
                static const std::regex pair(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
                auto inner = line.substr(brace + 1, line.rfind('}') - brace - 1);
                for (std::sregex_iterator it(inner.begin(), inner.end(), pair), end; it != end;
                     ++it)
                    labels[(*it)[1]] = (*it)[2];
            }
            samples_.push_back(
                {name, std::move(labels), std::strtod(line.c_str() + space + 1, nullptr)});
        }
    }
    std::optional<double> value(const std::string& name, const Labels& labels = {}) const {
        for (const auto& s : samples_)
            if (s.name == name && s.labels == labels) return s.value;
        return std::nullopt;
    }
    // Sum over every series of `name` whose labels include `match`.
    double sum(const std::string& name, const Labels& match = {}) const {
        double total = 0;
        for (const auto& s : samples_) {
            if (s.name != name) continue;
            bool ok = true;
            for (const auto& [k, v] : match) {
                auto it = s.labels.find(k);
                ok = ok && it != s.labels.end() && it->second == v;
            }
            if (ok) total += s.value;
        }
        return total;
    }
    bool any_with(const std::string& key, const std::string& value) const {
        for (const auto& s : samples_) {
            auto it = s.labels.find(key);
            if (it != s.labels.end() && it->second == value) return true;
        }
        return false;
    }
    const std::string& text() const { return text_; }

private:
    struct Sample {
        std::string name;
        Labels labels;
        double value;
    };
    std::string text_;
    std::vector<Sample> samples_;
};

inline std::optional<Scrape> scrape(std::uint16_t admin) {
    auto r = admin_get(admin, "/metrics");
    if (!r || r->status != 200) return std::nullopt;
    return Scrape(r->body);
}

// Scrapes until `pred` holds or `timeout` passes; returns the last scrape.
template <class Pred>
std::optional<Scrape> scrape_until(std::uint16_t admin, Pred pred, milliseconds timeout = 5s) {
    auto deadline = Clock::now() + timeout;
    std::optional<Scrape> s;
    for (;;) {
        s = scrape(admin);
        if ((s && pred(*s)) || Clock::now() >= deadline) return s;
        std::this_thread::sleep_for(20ms);
    }
}

}  // namespace dsgw::it
