#pragma once
// Every refused connection or request is logged here: at most 10 lines a
// second for the whole process, then one summary line, so a port scan cannot
// flood the log (access/deny_log.hpp).

#include "deepseek_gateway/access/deny_log.hpp"

namespace dsgw::net {

access::DenyLog& refusal_log();

}  // namespace dsgw::net
