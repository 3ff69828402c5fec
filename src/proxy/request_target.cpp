#include "deepseek_gateway/proxy/request_target.hpp"

#include <boost/url/authority_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/scheme.hpp>

#include <array>

namespace dsgw::proxy {

namespace {

// unreserved and sub-delims (RFC 3986 §2.2-2.3): what a reg-name holds
// besides pct-encoded octets. An IPv4 address is made of them too.
constexpr auto kRegName = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=")) t[static_cast<unsigned char>(c)] = true;
    return t;
}();

// The usual Host ("name" or "name:port"), recognised without Boost.URL.
// False means "not decided here", not "invalid".
bool plain_host(std::string_view v) {
    std::size_t i = 0;
    while (i < v.size() && kRegName[static_cast<unsigned char>(v[i])]) ++i;
    if (i == v.size()) return true;
    if (v[i] != ':') return false;
    for (++i; i < v.size(); ++i)
        if (v[i] < '0' || v[i] > '9') return false;
    return true;
}

}  // namespace

bool valid_host(std::string_view value) {
    if (plain_host(value)) return true;
    // Percent-encoded names and IP literals: Boost.URL's grammar decides.
    auto a = boost::urls::parse_authority(value);
    return a && !a->has_userinfo();
}

Target check_target(std::string_view method, std::string_view target) {
    Target t;
    if (!target.empty() && target.front() == '/') return t;
    if (target == "*") {
        t.form = TargetForm::asterisk;
        if (method != "OPTIONS") t.error = "the asterisk target is for OPTIONS only";
        return t;
    }
    if (method == "CONNECT") {
        t.form = TargetForm::authority;
        t.error = "CONNECT is not supported";
        return t;
    }
    t.form = TargetForm::absolute;
    auto u = boost::urls::parse_absolute_uri(target);
    if (!u) {
        t.error = "invalid request target";
        return t;
    }
    const auto scheme = u->scheme_id();
    if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
        t.error = "absolute request target with a scheme other than http or https";
        return t;
    }
    if (!u->has_authority() || u->encoded_host().empty()) {
        t.error = "absolute request target without a host";
        return t;
    }
    if (u->has_userinfo()) {
        t.error = "absolute request target with userinfo";
        return t;
    }
    const auto authority = u->encoded_authority();
    t.authority = std::string_view(authority.data(), authority.size());
    // The path and the query follow the authority and run to the end: an
    // absolute-URI has no fragment.
    t.path = target.substr(
        static_cast<std::size_t>(authority.data() + authority.size() - target.data()));
    // Boost.URL 1.81 reads "http://h:x/" as authority "h:" and path "x/",
    // which is no path-abempty: checked here.
    if (!valid_host(t.authority) ||
        (!t.path.empty() && t.path.front() != '/' && t.path.front() != '?')) {
        t.error = "absolute request target with an invalid authority";
        return t;
    }
    return t;
}

}  // namespace dsgw::proxy
