// The scalar value syntaxes of the configuration: durations ("250ms", "5s"),
// sizes ("16KiB") and "host:port". Errors carry no key path (the caller adds
// it) and end with the text they were given, quoted.

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <limits>

#include "deepseek_gateway/config/config.hpp"

namespace dsgw::config {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

std::string got(std::string_view text) {
    return " (got \"" + std::string(text) + "\")";
}

// Digits to a number; false on overflow past `max`.
bool to_uint(std::string_view digits, std::uint64_t max, std::uint64_t& out) {
    std::uint64_t v = 0;
    for (char c : digits) {
        auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

// The longest duration we accept, ~31 years: far beyond any sensible timeout,
// far below overflow of the millisecond count.
constexpr std::uint64_t kMaxDurationMs = 1'000'000'000'000ull;

bool is_hostname(std::string_view host) {
    if (host.empty() || host.size() > 253) return false;
    std::size_t label = 0;
    for (char c : host) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_';
        if (!ok || ++label > 63) return false;
    }
    return true;
}

}  // namespace

bool parse_duration(std::string_view text, Duration& out, std::string& error) {
    static const char* const kHint =
        "write a number and a unit ms, s, m or h, e.g. \"250ms\", \"5s\"";
    std::size_t i = 0;
    while (i < text.size() && is_digit(text[i])) ++i;
    std::string_view whole = text.substr(0, i);
    std::string_view fraction;
    if (i < text.size() && text[i] == '.') {
        std::size_t start = ++i;
        while (i < text.size() && is_digit(text[i])) ++i;
        fraction = text.substr(start, i - start);
        if (fraction.empty()) whole = {};  // "5." is not a number
    }
    if (whole.empty()) {
        error = std::string("not a duration: ") + kHint + got(text);
        return false;
    }
    std::string_view unit = text.substr(i);
    std::uint64_t ms_per_unit = 0;
    if (unit == "ms")
        ms_per_unit = 1;
    else if (unit == "s")
        ms_per_unit = 1000;
    else if (unit == "m")
        ms_per_unit = 60 * 1000;
    else if (unit == "h")
        ms_per_unit = 60 * 60 * 1000;
    else if (unit.empty()) {
        error = std::string("missing unit: ") + kHint + got(text);
        return false;
    } else {
        error = "unknown unit \"" + std::string(unit) + "\": use ms, s, m or h" + got(text);
        return false;
    }

    std::uint64_t n = 0;
    if (!to_uint(whole, kMaxDurationMs, n) || n > kMaxDurationMs / ms_per_unit) {
        error = "duration too large" + got(text);
        return false;
    }
    std::uint64_t ms = n * ms_per_unit;
    // Up to three fractional digits matter for s/m/h; the rest must be zero so
    // that nothing the operator wrote is silently dropped.
    std::uint64_t scale = ms_per_unit;
    for (char c : fraction) {
        auto d = static_cast<std::uint64_t>(c - '0');
        if (scale % 10 != 0) {
            if (d != 0) {
                error = "must be a whole number of milliseconds" + got(text);
                return false;
            }
            continue;
        }
        scale /= 10;
        ms += d * scale;
    }
    if (ms > kMaxDurationMs) {
        error = "duration too large" + got(text);
        return false;
    }
    out = Duration(static_cast<Duration::rep>(ms));
    return true;
}

bool parse_size(std::string_view text, std::uint64_t& out, std::string& error) {
    std::size_t i = 0;
    while (i < text.size() && is_digit(text[i])) ++i;
    std::string_view digits = text.substr(0, i);
    std::string_view unit = text.substr(i);
    if (digits.empty()) {
        error =
            "not a size: write a number of bytes, or a number with KiB, MiB or GiB, "
            "e.g. \"16KiB\"" +
            got(text);
        return false;
    }
    std::uint64_t multiplier = 0;
    if (unit.empty())
        multiplier = 1;
    else if (unit == "KiB")
        multiplier = 1024;
    else if (unit == "MiB")
        multiplier = 1024 * 1024;
    else if (unit == "GiB")
        multiplier = 1024 * 1024 * 1024;
    else if (unit.front() == '.') {
        error = "must be a whole number" + got(text);
        return false;
    } else {
        error = "unknown size unit \"" + std::string(unit) +
                "\": use KiB, MiB or GiB (powers of 1024), or plain bytes" + got(text);
        return false;
    }
    std::uint64_t n = 0;
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    if (!to_uint(digits, kMax, n) || n > kMax / multiplier) {
        error = "size too large" + got(text);
        return false;
    }
    out = n * multiplier;
    return true;
}

bool parse_host_port(std::string_view text, HostPort& out, std::string& error) {
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            error = "missing \"]\" after the IPv6 address" + got(text);
            return false;
        }
        host = std::string(text.substr(1, close - 1));
        boost::system::error_code ec;
        boost::asio::ip::make_address_v6(host, ec);
        if (ec) {
            error = "not an IPv6 address inside the brackets" + got(text);
            return false;
        }
        auto rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            error = "missing port: write [address]:port, e.g. \"[::1]:8080\"" + got(text);
            return false;
        }
        port_text = rest.substr(1);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            error = "missing port: write host:port, e.g. \"10.0.0.1:8080\"" + got(text);
            return false;
        }
        if (text.find(':') != colon) {
            error = "an IPv6 address needs brackets, e.g. \"[::1]:8080\"" + got(text);
            return false;
        }
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (host.empty()) {
            error = "missing host: write host:port, e.g. \"0.0.0.0:8080\"" + got(text);
            return false;
        }
        bool numeric =
            std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; });
        if (numeric) {
            boost::system::error_code ec;
            boost::asio::ip::make_address_v4(host, ec);
            if (ec) {
                error = "not a valid IPv4 address" + got(text);
                return false;
            }
        } else if (!is_hostname(host)) {
            error = "not a valid host name" + got(text);
            return false;
        }
    }
    std::uint64_t port = 0;
    if (port_text.empty()) {
        error = "missing port: write host:port, e.g. \"10.0.0.1:8080\"" + got(text);
        return false;
    }
    if (!all_digits(port_text) || !to_uint(port_text, 65535, port)) {
        error = "port must be 1-65535" + got(text);
        return false;
    }
    out.host = std::move(host);
    out.port = static_cast<std::uint16_t>(port);
    return true;
}

std::string HostPort::to_string() const {
    auto p = std::to_string(port);
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + p;
    return host + ":" + p;
}

const char* to_string(BalancerKind k) {
    switch (k) {
        case BalancerKind::least_conn:
            return "least_conn";
        case BalancerKind::round_robin:
            return "round_robin";
        case BalancerKind::ip_hash:
            return "ip_hash";
        case BalancerKind::prefix_affinity:
            return "prefix_affinity";
    }
    return "unknown";
}

}  // namespace dsgw::config
