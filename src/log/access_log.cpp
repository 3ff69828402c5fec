#include "deepseek_gateway/log/access_log.hpp"

#include "deepseek_gateway/util/json.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <ctime>

namespace dsgw::log {

namespace {

void append_time(std::string& out, std::chrono::system_clock::time_point t) {
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
    std::time_t tt = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[40];
    auto n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                           static_cast<int>(ms));
    out.append(buf, static_cast<std::size_t>(n));
}

// The body's "model" is logged up to this many bytes (SPEC §8).
constexpr std::size_t kMaxLoggedModel = 128;

// `s` cut to at most `max` bytes, not inside a UTF-8 sequence.
std::string_view cut_utf8(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

void field(std::string& out, std::string_view name, std::string_view value) {
    out += ",\"";
    out += name;
    out += "\":\"";
    util::append_json_escaped(out, value);
    out += '"';
}

void number(std::string& out, std::string_view name, double value, int decimals) {
    char buf[48];
    auto n = std::snprintf(buf, sizeof buf, ",\"%.*s\":%.*f", static_cast<int>(name.size()),
                           name.data(), decimals, value);
    out.append(buf, static_cast<std::size_t>(n));
}

std::atomic<unsigned> g_instance{0};

}  // namespace

AccessLog::AccessLog(const std::string& target) {
    if (target == "off") return;
    auto name = "access-" + std::to_string(g_instance.fetch_add(1));
    if (target == "stdout") {
        logger_ = std::make_shared<spdlog::logger>(
            name, std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else {
        try {
            logger_ = std::make_shared<spdlog::logger>(
                name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(target));
        } catch (const spdlog::spdlog_ex& e) {
            throw std::runtime_error("logging.access_log: cannot open \"" + target +
                                     "\": " + e.what());
        }
    }
    logger_->set_pattern("%v");
    logger_->set_level(spdlog::level::info);
    logger_->flush_on(spdlog::level::info);
}

AccessLog::~AccessLog() {
    if (logger_) logger_->flush();
}

void AccessLog::flush() {
    if (logger_) logger_->flush();
}

std::string AccessLog::format(const AccessRecord& r) {
    std::string out;
    out.reserve(256 + r.path.size());
    out += "{\"time\":\"";
    append_time(out, r.time);
    out += '"';
    field(out, "listener", r.listener);
    field(out, "client", r.client);
    field(out, "method", r.method);
    field(out, "path", r.path);
    number(out, "status", r.status, 0);
    field(out, "upstream", r.upstream);
    field(out, "server", r.server);
    number(out, "bytes_in", static_cast<double>(r.bytes_in), 0);
    number(out, "bytes_out", static_cast<double>(r.bytes_out), 0);
    number(out, "duration_ms", r.duration_ms, 3);
    if (r.first_byte_ms >= 0)
        number(out, "first_byte_ms", r.first_byte_ms, 3);
    else
        out += ",\"first_byte_ms\":null";
    if (r.client_cert.empty())
        out += ",\"client_cert\":null";
    else
        field(out, "client_cert", r.client_cert);
    if (r.api_key.empty())
        out += ",\"api_key\":null";
    else
        field(out, "api_key", r.api_key);
    field(out, "route", r.route);
    if (r.model.empty())
        out += ",\"model\":null";
    else
        field(out, "model", cut_utf8(r.model, kMaxLoggedModel));
    out += '}';
    return out;
}

void AccessLog::write(const AccessRecord& r) {
    if (!logger_) return;
    auto line = format(r);
    logger_->log(spdlog::level::info, spdlog::string_view_t(line.data(), line.size()));
}

}  // namespace dsgw::log
