#include "deepseek_gateway/access/policy.hpp"

namespace dsgw::access {

const char* to_string(Decision d) {
    switch (d) {
        case Decision::allowed: return "allowed";
        case Decision::deny_list: return "deny_list";
        case Decision::not_allowed: return "not_allowed";
    }
    return "unknown";
}

const char* to_string(DenyReason r) {
    switch (r) {
        case DenyReason::deny_list: return "deny_list";
        case DenyReason::not_allowed: return "not_allowed";
        case DenyReason::bad_proxy_header: return "bad_proxy_header";
        case DenyReason::missing_key: return "missing_key";
        case DenyReason::bad_key: return "bad_key";
    }
    return "unknown";
}

DenyReason to_deny_reason(Decision d) {
    return d == Decision::deny_list ? DenyReason::deny_list : DenyReason::not_allowed;
}

Decision Policy::decide(const boost::asio::ip::address& peer) const {
    if (deny.contains(peer)) return Decision::deny_list;
    if (allow.contains(peer)) return Decision::allowed;
    return Decision::not_allowed;
}

}  // namespace dsgw::access
