#include "deepseek_gateway/access/admission.hpp"

namespace dsgw::access {

namespace ip = boost::asio::ip;

namespace {

Admission refuse(DenyReason reason, const ip::address& client) {
    return Admission{AcceptAction::refuse, reason, client};
}

// deny, then trusted (admitted: judged per request), then allow.
Admission judge(const ip::address& client, const Policy& policy, const CidrSet& trusted_proxies) {
    if (policy.deny.contains(client)) return refuse(DenyReason::deny_list, client);
    if (trusted_proxies.contains(client) || policy.allow.contains(client))
        return Admission{AcceptAction::admit, DenyReason::not_allowed, client};
    return refuse(DenyReason::not_allowed, client);
}

}  // namespace

Decision Admission::decision() const {
    if (action != AcceptAction::refuse) return Decision::allowed;
    if (reason == DenyReason::deny_list) return Decision::deny_list;
    return Decision::not_allowed;
}

Admission admit_connection(const ip::address& raw_peer, const Policy& policy,
                           const CidrSet& trusted_proxies, bool proxy_protocol) {
    const auto peer = normalize(raw_peer);
    if (!proxy_protocol) return judge(peer, policy, trusted_proxies);
    if (policy.deny.contains(peer)) return refuse(DenyReason::deny_list, peer);
    if (!trusted_proxies.contains(peer)) return refuse(DenyReason::bad_proxy_header, peer);
    return Admission{AcceptAction::read_proxy_header, DenyReason::not_allowed, peer};
}

Admission admit_proxied(const ProxyHeader& header, const ip::address& raw_peer,
                        const Policy& policy, const CidrSet& trusted_proxies) {
    const auto peer = normalize(raw_peer);
    if (header.status != ProxyStatus::done) return refuse(DenyReason::bad_proxy_header, peer);
    const auto client = header.source ? normalize(header.source->address) : peer;
    return judge(client, policy, trusted_proxies);
}

Decision judge_request(const ForwardedClient& client, const Policy& policy) {
    if (!client.peer_trusted) return Decision::allowed;
    return policy.decide(client.address);
}

}  // namespace dsgw::access
