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

Decision Policy::decide(const boost::asio::ip::address& peer) const {
    if (deny.contains(peer)) return Decision::deny_list;
    if (allow.contains(peer)) return Decision::allowed;
    return Decision::not_allowed;
}

}  // namespace dsgw::access
