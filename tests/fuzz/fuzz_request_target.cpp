// Request targets and Host values (proxy/request_target.hpp) against
// Boost.URL's grammar. Checked: valid_host() (a table scan for plain names,
// Boost.URL for the rest) agrees with Boost.URL's parse_authority() on every
// input; an accepted absolute-form target gives an authority that is a valid
// host and a path that is empty or starts with '/' or '?' and ends the
// target, so what goes upstream ("/" + path, Host = authority) says exactly
// what the target said; an accepted origin form starts with '/'; '*' only
// with OPTIONS. One difference is allowed: starts_with_ipv4_then_more().
//
// Input: the first byte picks the method (GET or OPTIONS), the rest is the
// value, tried both as a Host value and as a target.

#include "check.hpp"
#include "deepseek_gateway/proxy/request_target.hpp"

#include <boost/url/authority_view.hpp>

#include <cstdio>
#include <string_view>

namespace {

using namespace dsgw::proxy;

// Boost.URL 1.81 refuses a reg-name that starts with a whole IPv4 address
// ("1.2.3.4.example", "1.2.3.4x": "leftover"), where RFC 3986's first-match
// rule makes it a reg-name, as valid_host() does. Not compared.
bool starts_with_ipv4_then_more(std::string_view v) {
    std::size_t i = 0;
    for (int octet = 0; octet < 4; ++octet) {
        const std::size_t start = i;
        while (i < v.size() && v[i] >= '0' && v[i] <= '9' && i - start < 3) ++i;
        if (i == start) return false;
        if (octet < 3) {
            if (i >= v.size() || v[i] != '.') return false;
            ++i;
        }
    }
    return i < v.size() && v[i] != ':';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view method = data[0] & 1 ? "OPTIONS" : "GET";
    const std::string_view v(reinterpret_cast<const char*>(data) + 1, size - 1);

    auto a = boost::urls::parse_authority(v);
    const bool boost_says = a && !a->has_userinfo();
    if (valid_host(v) != boost_says)
        DSGW_FUZZ_CHECK(valid_host(v) && starts_with_ipv4_then_more(v));

    const Target t = check_target(method, v);
    if (!t.error.empty()) return 0;
    switch (t.form) {
        case TargetForm::origin:
            DSGW_FUZZ_CHECK(!v.empty() && v.front() == '/');
            break;
        case TargetForm::asterisk:
            DSGW_FUZZ_CHECK(v == "*" && method == "OPTIONS");
            break;
        case TargetForm::authority:
            dsgw::fuzz::finding("authority form accepted");
        case TargetForm::absolute: {
            DSGW_FUZZ_CHECK(!t.authority.empty());
            DSGW_FUZZ_CHECK(valid_host(t.authority));
            DSGW_FUZZ_CHECK(t.path.empty() || t.path.front() == '/' || t.path.front() == '?');
            DSGW_FUZZ_CHECK(v.size() >= t.path.size() &&
                            v.substr(v.size() - t.path.size()) == t.path);
            // "scheme://" + authority + path is the whole target.
            const auto sep = v.find("://");
            DSGW_FUZZ_CHECK(sep != std::string_view::npos);
            DSGW_FUZZ_CHECK(v.substr(sep + 3) == std::string(t.authority) + std::string(t.path));
            DSGW_FUZZ_CHECK(v.find('#') == std::string_view::npos);
            break;
        }
    }
    return 0;
}
