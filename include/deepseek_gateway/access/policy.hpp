#pragma once
// The allow/deny decision for one client address: deny is checked first, then
// allow. Pure, so it is unit-tested without sockets.

#include "deepseek_gateway/access/cidr.hpp"

namespace dsgw::access {

enum class Decision { allowed, deny_list, not_allowed };

// Label used in logs and in the access_denied_total{reason} metric.
const char* to_string(Decision d);

struct Policy {
    CidrSet allow;
    CidrSet deny;

    Decision decide(const boost::asio::ip::address& peer) const;
};

}  // namespace dsgw::access
