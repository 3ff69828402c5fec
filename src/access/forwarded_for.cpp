#include "deepseek_gateway/access/forwarded_for.hpp"

#include <algorithm>
#include <vector>

namespace dsgw::access {

namespace ip = boost::asio::ip;

namespace {

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

bool all_digits(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// 0-65535 in decimal, one to five digits.
bool valid_port(std::string_view s) {
    if (s.empty() || s.size() > 5 || !all_digits(s)) return false;
    unsigned v = 0;
    for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
    return v <= 65535;
}

// Asio parses a C string: a NUL would hide what follows it.
bool has_nul(std::string_view s) {
    return s.find('\0') != std::string_view::npos;
}

std::optional<ip::address> parse_v4(std::string_view s) {
    if (has_nul(s)) return std::nullopt;
    boost::system::error_code ec;
    auto a = ip::make_address_v4(std::string(s), ec);
    if (ec) return std::nullopt;
    return ip::address(a);
}

std::optional<ip::address> parse_v6(std::string_view s) {
    // make_address_v6 accepts a zone id; a forwarded address has none.
    if (s.find('%') != std::string_view::npos || has_nul(s)) return std::nullopt;
    boost::system::error_code ec;
    auto a = ip::make_address_v6(std::string(s), ec);
    if (ec) return std::nullopt;
    return normalize(ip::address(a));
}

// Splits every value on commas and appends the non-empty, trimmed elements in
// order. Empty elements (", ,") are ignored, as RFC 9110 §5.6.1 asks.
void split_elements(std::span<const std::string_view> values, std::vector<std::string_view>& out) {
    for (auto v : values) {
        while (true) {
            auto comma = v.find(',');
            auto e = trim(v.substr(0, comma));
            if (!e.empty()) out.push_back(e);
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
}

}  // namespace

std::optional<ip::address> parse_forwarded_element(std::string_view element) {
    auto e = trim(element);
    if (e.empty()) return std::nullopt;
    if (e.front() == '[') {
        auto close = e.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        auto rest = e.substr(close + 1);
        if (!rest.empty() && (rest.front() != ':' || !valid_port(rest.substr(1))))
            return std::nullopt;
        return parse_v6(e.substr(1, close - 1));
    }
    auto colons = std::count(e.begin(), e.end(), ':');
    if (colons == 0) return parse_v4(e);
    if (colons == 1) {  // a.b.c.d:port
        auto colon = e.find(':');
        if (!valid_port(e.substr(colon + 1))) return std::nullopt;
        return parse_v4(e.substr(0, colon));
    }
    return parse_v6(e);
}

ForwardedClient resolve_forwarded_for(const ip::address& raw_peer,
                                      std::span<const std::string_view> xff_values,
                                      const CidrSet& trusted_proxies) {
    ForwardedClient out;
    const auto peer = normalize(raw_peer);
    out.address = peer;
    if (!trusted_proxies.contains(peer)) {
        out.forwarded_for = peer.to_string();
        return out;
    }
    out.peer_trusted = true;

    std::vector<std::string_view> elements;
    split_elements(xff_values, elements);
    for (auto it = elements.rbegin(); it != elements.rend(); ++it) {
        auto a = parse_forwarded_element(*it);
        if (!a) {
            out.malformed = true;
            break;
        }
        out.address = *a;
        if (!trusted_proxies.contains(*a)) break;
    }

    for (auto v : xff_values) {
        auto t = trim(v);
        if (t.empty()) continue;
        out.forwarded_for.append(t);
        out.forwarded_for.append(", ");
    }
    out.forwarded_for.append(peer.to_string());
    return out;
}

ip::address client_address_from_xff(const ip::address& peer,
                                    std::span<const std::string_view> xff_values,
                                    const CidrSet& trusted_proxies) {
    return resolve_forwarded_for(peer, xff_values, trusted_proxies).address;
}

}  // namespace dsgw::access
