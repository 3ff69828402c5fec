#pragma once
// The client address behind trusted proxies, from X-Forwarded-For, and the
// X-Forwarded-For value the gateway sends upstream. Pure, so every shape of
// header is unit-tested without sockets.
//
// The model is nginx's realip module with `real_ip_recursive on`:
//
// - From a peer that is not in trusted_proxies, the header is ignored: the
//   client is the peer, and upstream receives `X-Forwarded-For: <peer>` only
//   (a client cannot plant addresses in the chain).
// - From a trusted peer, the entries of every X-Forwarded-For header (in
//   order, comma lists, optional whitespace) are walked from the right; each
//   trusted entry is skipped; the first untrusted one is the client. When
//   every entry is trusted, the leftmost is the client.
// - A malformed entry stops the walk: the client is the last good address
//   seen (the peer, or the last trusted hop). A garbled header can therefore
//   never make a client out of an address a trusted proxy did not write;
//   at worst the request is judged as coming from that proxy.
// - Entries may be IPv4, IPv6 without or with brackets, and may carry a port
//   ("192.0.2.7:51234", "[2001:db8::7]:443", as some load balancers write
//   them); the port is dropped. An unbracketed IPv6 address is read as an
//   address, never as address:port. Zone ids ("fe80::1%eth0"), host names,
//   "unknown" and obfuscated identifiers are malformed.
// - Upstream, from a trusted peer: the received values, joined with ", ",
//   then the peer appended, like nginx's $proxy_add_x_forwarded_for
//   ("client, proxy1, proxy2"). The upstream sees the whole chain and can
//   apply the same walk.
//
// Every address is normalized: ::ffff:a.b.c.d becomes a.b.c.d.

#include "deepseek_gateway/access/cidr.hpp"

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace dsgw::access {

struct ForwardedClient {
    boost::asio::ip::address address;  // the client, normalized
    std::string forwarded_for;         // X-Forwarded-For value to send upstream
    bool peer_trusted = false;         // the header was believed (peer in trusted_proxies)
    bool malformed = false;            // a malformed entry stopped the walk
};

// `peer`: the socket peer, or the source of a PROXY header when there was one.
// `xff_values`: the value of each X-Forwarded-For header of the request, in
// order (none, one, or several).
ForwardedClient resolve_forwarded_for(const boost::asio::ip::address& peer,
                                      std::span<const std::string_view> xff_values,
                                      const CidrSet& trusted_proxies);

// resolve_forwarded_for(...).address.
boost::asio::ip::address client_address_from_xff(const boost::asio::ip::address& peer,
                                                 std::span<const std::string_view> xff_values,
                                                 const CidrSet& trusted_proxies);

// One list element ("192.0.2.7", " [2001:db8::1]:443 "), surrounding
// whitespace allowed; the address normalized, or nothing when malformed.
std::optional<boost::asio::ip::address> parse_forwarded_element(std::string_view element);

}  // namespace dsgw::access
