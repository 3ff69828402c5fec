#pragma once
// A set of CIDR ranges (IPv4 and IPv6) and the question "does this address fall
// in any of them". IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are matched
// against the IPv4 ranges, so a dual-stack socket behaves like an IPv4 one.

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsgw::access {

// Unmaps ::ffff:a.b.c.d to a.b.c.d; every other address is returned unchanged.
boost::asio::ip::address normalize(const boost::asio::ip::address& a);

class CidrSet {
public:
    // Adds "10.0.0.0/8", "2001:db8::/32" or a bare address (taken as /32 or
    // /128). Returns an error message, or nothing on success. Host bits set
    // below the prefix ("10.0.0.1/8") are an error: the operator meant
    // something else, and silently widening an allowlist is not ours to do.
    std::optional<std::string> add(std::string_view text);

    bool contains(const boost::asio::ip::address& a) const;
    bool empty() const { return v4_.empty() && v6_.empty(); }
    std::size_t size() const { return v4_.size() + v6_.size(); }
    std::vector<std::string> to_strings() const;

private:
    std::vector<boost::asio::ip::network_v4> v4_;
    std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace dsgw::access
