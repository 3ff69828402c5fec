#pragma once
// One JSON object per line for every request (SPEC §3 logging.access_log):
// stdout, a file, or off.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace dsgw::log {

struct AccessRecord {
    std::chrono::system_clock::time_point time;  // when the request head arrived
    std::string_view listener;
    std::string_view client;  // client address, no port
    std::string_view method;
    std::string_view path;
    unsigned status = 0;
    std::string_view upstream;
    std::string_view server;  // "" when no server was reached
    std::uint64_t bytes_in = 0;   // request bytes read from the client (head + body)
    std::uint64_t bytes_out = 0;  // response bytes written to the client
    double duration_ms = 0;
    double first_byte_ms = -1;  // request sent -> first upstream byte; -1 when none
    std::string_view client_cert;  // verified client certificate subject (mTLS); "" when none
    std::string_view api_key;      // name of the API key used; "" when none
    std::string_view route;        // SPEC §8: the route's name, "default" or "none"
    std::string_view model;        // the body's "model" as the client sent it; "" when not read
};

class AccessLog {
public:
    // target: "stdout", "off" or a file path. Throws std::runtime_error when
    // the file cannot be opened.
    explicit AccessLog(const std::string& target);
    ~AccessLog();

    bool enabled() const { return logger_ != nullptr; }
    void write(const AccessRecord& r);
    void flush();

    // The JSON line for a record, without the trailing newline.
    static std::string format(const AccessRecord& r);

private:
    std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace dsgw::log
