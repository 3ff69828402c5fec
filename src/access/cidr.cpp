#include "deepseek_gateway/access/cidr.hpp"

#include <algorithm>

namespace dsgw::access {

namespace ip = boost::asio::ip;

ip::address normalize(const ip::address& a) {
    if (a.is_v6()) {
        auto v6 = a.to_v6();
        if (v6.is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, v6);
    }
    return a;
}

std::optional<std::string> CidrSet::add(std::string_view text) {
    // Asio parses a C string: a NUL (YAML can write one) would hide the rest.
    if (text.find('\0') != std::string_view::npos)
        return std::string("not an IP address or CIDR range (holds a NUL byte)");
    std::string s(text);
    auto slash = s.find('/');
    boost::system::error_code ec;
    if (slash == std::string::npos) {
        auto a = ip::make_address(s, ec);
        if (ec) return "not an IP address or CIDR range (got \"" + s + "\")";
        a = normalize(a);
        if (a.is_v4())
            v4_.emplace_back(a.to_v4(), 32);
        else
            v6_.emplace_back(a.to_v6(), 128);
        return std::nullopt;
    }
    auto a = ip::make_address(s.substr(0, slash), ec);
    if (ec) return "not an IP address or CIDR range (got \"" + s + "\")";
    auto len_text = s.substr(slash + 1);
    if (len_text.empty() || len_text.size() > 3 ||
        !std::all_of(len_text.begin(), len_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return "prefix length must be a number (got \"" + s + "\")";
    int len = std::stoi(len_text);
    if (a.is_v4()) {
        if (len > 32) return "IPv4 prefix length must be 0-32 (got \"" + s + "\")";
        ip::network_v4 net(a.to_v4(), static_cast<unsigned short>(len));
        if (net.network() != a.to_v4())
            return "address has bits set below the prefix; did you mean \"" +
                   net.canonical().to_string() + "\"? (got \"" + s + "\")";
        v4_.push_back(net);
    } else {
        if (len > 128) return "IPv6 prefix length must be 0-128 (got \"" + s + "\")";
        ip::network_v6 net(a.to_v6(), static_cast<unsigned short>(len));
        if (net.network() != a.to_v6())
            return "address has bits set below the prefix; did you mean \"" +
                   net.canonical().to_string() + "\"? (got \"" + s + "\")";
        // contains() unmaps ::ffff:a.b.c.d before matching, so a range written
        // in the mapped form must be kept as the IPv4 range it denotes, or it
        // would never match anything.
        if (len >= 96 && net.network().is_v4_mapped()) {
            v4_.emplace_back(ip::make_address_v4(ip::v4_mapped, net.network()),
                             static_cast<unsigned short>(len - 96));
            return std::nullopt;
        }
        v6_.push_back(net);
    }
    return std::nullopt;
}

bool CidrSet::contains(const ip::address& raw) const {
    auto a = normalize(raw);
    if (a.is_v4()) {
        auto v = a.to_v4().to_uint();
        for (const auto& n : v4_) {
            if ((v & n.netmask().to_uint()) == n.network().to_uint()) return true;
        }
        return false;
    }
    auto bytes = a.to_v6().to_bytes();
    for (const auto& n : v6_) {
        auto net = n.network().to_bytes();
        unsigned len = n.prefix_length();
        bool match = true;
        for (unsigned i = 0; i < 16 && len > 0; ++i) {
            unsigned bits = len >= 8 ? 8 : len;
            auto mask = static_cast<unsigned char>(0xFF << (8 - bits));
            if ((bytes[i] & mask) != (net[i] & mask)) {
                match = false;
                break;
            }
            len -= bits;
        }
        if (match) return true;
    }
    return false;
}

std::vector<std::string> CidrSet::to_strings() const {
    std::vector<std::string> out;
    for (const auto& n : v4_) out.push_back(n.to_string());
    for (const auto& n : v6_) out.push_back(n.to_string());
    return out;
}

}  // namespace dsgw::access
