#pragma once
// Which address each access decision is made on when proxies sit in front,
// and in which order. Pure: the listener and the session call these and act
// on the answer.
//
// 1. At accept, on the socket peer (admit_connection), before any byte:
//    - in access.deny: refused (deny_list), trusted or not;
//    - in trusted_proxies: admitted, without the allowlist: a proxy is judged
//      by the clients it speaks for. With proxy_protocol, the PROXY header
//      is read first (read_proxy_header);
//    - otherwise, with proxy_protocol: refused (bad_proxy_header): only a
//      trusted proxy may send a PROXY header, and every connection on such a
//      listener must start with one;
//    - otherwise: access.allow decides, as without proxies.
// 2. After the PROXY header (admit_proxied), on the address it carries (the
//    socket peer for LOCAL and UNKNOWN): a malformed header is refused
//    (bad_proxy_header); then deny, then, unless that address is itself a
//    trusted proxy, allow.
// 3. Per request (judge_request), when the connection's peer (after step 2:
//    the PROXY source) is a trusted proxy: deny and allow on the client
//    found in X-Forwarded-For (forwarded_for.hpp). From an untrusted peer
//    the request inherits the connection's decision.

#include "deepseek_gateway/access/forwarded_for.hpp"
#include "deepseek_gateway/access/policy.hpp"
#include "deepseek_gateway/access/proxy_protocol.hpp"

#include <boost/asio/ip/address.hpp>

namespace dsgw::access {

enum class AcceptAction {
    admit,              // start the session (TLS handshake or HTTP) now
    read_proxy_header,  // read the PROXY header, then call admit_proxied()
    refuse,             // see `reason`
};

struct Admission {
    AcceptAction action = AcceptAction::refuse;
    DenyReason reason = DenyReason::not_allowed;  // refuse only
    // The address judged, normalized: the socket peer, or the PROXY
    // header's source. What the session uses as "peer" from then on.
    boost::asio::ip::address client;
    // The Decision behind a deny_list / not_allowed refusal (for a session
    // that answers 403), allowed otherwise.
    Decision decision() const;
};

Admission admit_connection(const boost::asio::ip::address& peer, const Policy& policy,
                           const CidrSet& trusted_proxies, bool proxy_protocol);

// `header`: what parse_proxy_header() said (anything but done is refused).
Admission admit_proxied(const ProxyHeader& header, const boost::asio::ip::address& peer,
                        const Policy& policy, const CidrSet& trusted_proxies);

// The decision for one request whose client was resolved by
// resolve_forwarded_for(): allowed when the peer was not trusted (the
// connection was already judged on it), else deny/allow on the client.
Decision judge_request(const ForwardedClient& client, const Policy& policy);

}  // namespace dsgw::access
