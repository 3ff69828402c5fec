#include "deepseek_gateway/log/log.hpp"

#include "deepseek_gateway/util/json.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

namespace dsgw::log {

namespace {

spdlog::level::level_enum to_spdlog(config::LogLevel l) {
    switch (l) {
        case config::LogLevel::trace: return spdlog::level::trace;
        case config::LogLevel::debug: return spdlog::level::debug;
        case config::LogLevel::info: return spdlog::level::info;
        case config::LogLevel::warn: return spdlog::level::warn;
        case config::LogLevel::error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

// %* : the message, escaped for a JSON string.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        std::string escaped;
        util::append_json_escaped(escaped,
                                  std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(escaped.data(), escaped.data() + escaped.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonMessageFlag>();
    }
};

// True when stderr is the journal's stream for this service: systemd sets
// JOURNAL_STREAM to "DEVICE:INODE" of the stream it connected (systemd.exec(5)).
bool stderr_is_journal() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js || !*js) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (::fstat(2, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev &&
           static_cast<unsigned long long>(st.st_ino) == ino;
}

// %& : "<N>", the syslog priority of the line, which journald takes off and
// stores as the entry's PRIORITY (so `journalctl -p warning` works).
class JournalPriorityFlag : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        char p = '6';
        switch (msg.level) {
            case spdlog::level::trace:
            case spdlog::level::debug: p = '7'; break;
            case spdlog::level::info: p = '6'; break;
            case spdlog::level::warn: p = '4'; break;
            case spdlog::level::err: p = '3'; break;
            case spdlog::level::critical: p = '2'; break;
            default: break;
        }
        const char text[3] = {'<', p, '>'};
        dest.append(text, text + 3);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JournalPriorityFlag>();
    }
};

}  // namespace

void setup(config::LogFormat format, config::LogLevel level) {
    auto logger = spdlog::get("gateway");
    if (!logger) {
        logger = std::make_shared<spdlog::logger>(
            "gateway", std::make_shared<spdlog::sinks::stderr_sink_mt>());
        spdlog::register_logger(logger);
        spdlog::set_default_logger(logger);
    }
    // Under systemd each line starts with its priority for journald.
    const std::string prefix = stderr_is_journal() ? "%&" : "";
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<JsonMessageFlag>('*').add_flag<JournalPriorityFlag>('&');
    if (format == config::LogFormat::json)
        f->set_pattern(prefix + R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})");
    else
        f->set_pattern(prefix + "%Y-%m-%d %H:%M:%S.%e [%l] %v");
    logger->set_formatter(std::move(f));
    logger->set_level(to_spdlog(level));
    logger->flush_on(spdlog::level::trace);
}

}  // namespace dsgw::log
