#pragma once
// The request-target and Host checks of RFC 9112 §3.2-3.3: which of the four
// target forms a request uses, what goes upstream for it, and whether a Host
// value is a valid RFC 3986 host with an optional port. Pure functions, so
// they are unit-tested and fuzzed directly.

#include <string_view>

namespace dsgw::proxy {

enum class TargetForm {
    origin,     // "/path?query"
    absolute,   // "http://host:port/path?query"
    authority,  // "host:port" (CONNECT only)
    asterisk,   // "*" (OPTIONS only)
};

struct Target {
    TargetForm form = TargetForm::origin;
    // For the absolute form: what goes upstream instead of the target (the
    // origin form: the path, "/" when empty, and the query) and the
    // authority that replaces Host (RFC 9112 §3.2.2).
    std::string_view path;
    std::string_view authority;
    // Empty when the target is acceptable; otherwise why it is refused.
    std::string_view error;
};

// Classifies `target` of a request with method `method` and checks it: an
// origin form starts with "/"; an absolute form has the scheme http or https,
// no userinfo and a valid non-empty host; "*" is only for OPTIONS; the
// authority form (CONNECT) is refused, as CONNECT is.
Target check_target(std::string_view method, std::string_view target);

// True when `value` is `host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2
// and §3.2.3): a reg-name, an IPv4 address or a bracketed IP literal, and a
// port of digits only. An empty value is valid (a request whose target has
// no authority sends an empty Host).
bool valid_host(std::string_view value);

}  // namespace dsgw::proxy
