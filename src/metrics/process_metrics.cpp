#include "deepseek_gateway/metrics/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace dsgw::metrics {

namespace {

prometheus::MetricFamily single(const char* name, const char* help, prometheus::MetricType type,
                                double value) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    prometheus::ClientMetric m;
    if (type == prometheus::MetricType::Counter)
        m.counter.value = value;
    else
        m.gauge.value = value;
    f.metric.push_back(std::move(m));
    return f;
}

// The fields of /proc/self/stat after the command name, which is in
// parentheses and may itself hold spaces: fields[0] is field 3 (state).
std::optional<std::vector<std::string>> stat_fields() {
    std::ifstream in("/proc/self/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 1));
    std::vector<std::string> fields;
    for (std::string f; rest >> f;) fields.push_back(std::move(f));
    if (fields.size() < 22) return std::nullopt;
    return fields;
}

std::optional<double> boot_time() {
    std::ifstream in("/proc/stat");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
    return std::nullopt;
}

std::optional<double> open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return std::nullopt;
    double n = 0;
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n - 1;  // the descriptor reading the directory
}

}  // namespace

std::vector<prometheus::MetricFamily> collect_process_metrics() {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    if (auto f = stat_fields()) {
        try {
            // Fields 14 utime, 15 stime, 22 starttime (ticks since boot),
            // 23 vsize (bytes), 24 rss (pages).
            double cpu = (std::stod((*f)[11]) + std::stod((*f)[12])) / ticks;
            out.push_back(single("process_cpu_seconds_total",
                                 "Total user and system CPU time spent in seconds.",
                                 MetricType::Counter, cpu));
            out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.",
                                 MetricType::Gauge, std::stod((*f)[21]) * page));
            out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                 MetricType::Gauge, std::stod((*f)[20])));
            if (auto bt = boot_time())
                out.push_back(single("process_start_time_seconds",
                                     "Start time of the process since unix epoch in seconds.",
                                     MetricType::Gauge, *bt + std::stod((*f)[19]) / ticks));
        } catch (const std::exception&) {
            // A /proc format we do not understand: leave these out.
        }
    }
    if (auto n = open_fds())
        out.push_back(single("process_open_fds", "Number of open file descriptors.",
                             MetricType::Gauge, *n));
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        out.push_back(single("process_max_fds", "Maximum number of open file descriptors.",
                             MetricType::Gauge, static_cast<double>(rl.rlim_cur)));
    return out;
}

}  // namespace dsgw::metrics
