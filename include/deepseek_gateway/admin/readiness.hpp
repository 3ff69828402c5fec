#pragma once
// What /readyz asks of the upstreams: every upstream has at least one server
// that may be given a request now (UpstreamServer::usable(): not in connect
// backoff and, once health checks exist, healthy).

#include "deepseek_gateway/upstream/upstream.hpp"

#include <optional>
#include <string>

namespace dsgw::admin {

// Nothing when every upstream of `set` has a usable server; otherwise why
// not, e.g. "upstream deepseek has no usable server (3 configured)".
std::optional<std::string> unready_upstream(const upstream::UpstreamSet& set);

}  // namespace dsgw::admin
