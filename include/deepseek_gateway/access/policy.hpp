#pragma once
// The allow/deny decision for one client address: deny is checked first, then
// allow. Pure, so it is unit-tested without sockets.

#include "deepseek_gateway/access/cidr.hpp"

#include <cstddef>

namespace dsgw::access {

enum class Decision { allowed, deny_list, not_allowed };

// Label used in logs and in the access_denied_total{reason} metric.
const char* to_string(Decision d);

// Every reason a connection or a request is refused, in the order (and with
// the labels) of the access_denied_total{reason} metric.
enum class DenyReason : unsigned char {
    deny_list,         // the client matched access.deny
    not_allowed,       // the client matched no access.allow range
    bad_proxy_header,  // PROXY header missing, malformed, or from an untrusted peer
    missing_key,       // auth: no API key presented
    bad_key,           // auth: an unknown or malformed API key
};
inline constexpr std::size_t kDenyReasonCount = 5;
const char* to_string(DenyReason r);

// deny_list or not_allowed; `d` must not be Decision::allowed.
DenyReason to_deny_reason(Decision d);

struct Policy {
    CidrSet allow;
    CidrSet deny;

    Decision decide(const boost::asio::ip::address& peer) const;
};

}  // namespace dsgw::access
