#include "deepseek_gateway/net/refusals.hpp"

#include <spdlog/spdlog.h>

namespace dsgw::net {

access::DenyLog& refusal_log() {
    static access::DenyLog log([](std::string_view line) { spdlog::info("{}", line); }, 10);
    return log;
}

}  // namespace dsgw::net
