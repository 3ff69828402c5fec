// The admit phase: the request's shape, the accept-time decision, the allowlist behind trusted
// proxies, the API key (quotas join here).

#include "deepseek_gateway/access/admission.hpp"
#include "deepseek_gateway/access/api_keys.hpp"
#include "deepseek_gateway/access/forwarded_for.hpp"
#include "deepseek_gateway/app/runtime.hpp"
#include "deepseek_gateway/metrics/metrics.hpp"
#include "deepseek_gateway/net/refusals.hpp"
#include "proxy/exchange.hpp"

#include <boost/beast/core/string.hpp>

namespace dsgw::proxy {

using net::Task;
namespace beast = boost::beast;

// Framing and routing shapes the parser does not refuse by itself
// (docs/security.md): a transfer coding other than exactly "chunked",
// Transfer-Encoding given twice or in an HTTP/1.0 request (RFC 9112 §6.1), a
// missing, repeated or invalid Host (§3.2), a target that is none of the
// forms allowed for its method (§3.2.1-3.2.4).
std::optional<std::string_view> Exchange::check_request_shape() {
    const auto& h = req_->head();
    int te_count = 0;
    for (const auto& f : h) {
        if (f.known != Known::transfer_encoding) continue;
        ++te_count;
        if (!beast::iequals(f.value, "chunked")) return "unsupported transfer coding";
    }
    if (te_count > 1) return "repeated Transfer-Encoding";
    if (te_count > 0 && h.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
    const auto hosts = h.count(Known::host);
    if (hosts > 1) return "more than one Host header";
    if (h.version() >= 11 && hosts != 1) return "HTTP/1.1 request needs a Host header";
    if (hosts == 1 && !valid_host(h[Known::host])) return "invalid Host header";
    if (h.method() == http::verb::connect) return "CONNECT is not supported";
    target_ = check_target(h.method_string(), h.target());
    if (!target_.error.empty()) return target_.error;
    return std::nullopt;
}

// The request's shape, then the accept-time decision (a refused peer reaches
// here only when its listener answers refusals with 403).
bool Exchange::admit_shape() {
    forwarded_for_.clear();
    outcome_.api_key = {};
    if (auto bad = check_request_shape()) {
        fail({400, true, std::string(*bad)});
        return false;
    }
    if (client_.decision != access::Decision::allowed) {
        fail({403, true, "access denied"});
        return false;
    }
    return true;
}

// Per request: the client behind trusted proxies (X-Forwarded-For) is judged
// by the allowlist, then the API key, when the listener asks for one.
Task<bool> Exchange::admit_client() {
    const auto& lc = *client_.lc;
    const auto& acc = lc.access;
    const auto& h = req_->head();
    auto count_denied = [&](access::DenyReason reason) {
        if (client_.rt->metrics)
            client_.rt->metrics->listener(client_.listener_index)->denied_by(reason);
    };
    if (!acc.trusted_proxies.empty()) {
        std::vector<std::string_view> xff;
        for (const auto& f : h)
            if (f.known == Known::x_forwarded_for) xff.push_back(f.value);
        auto fc = access::resolve_forwarded_for(client_.conn_ip, xff, acc.trusted_proxies);
        const auto d = access::judge_request(fc, acc.policy);
        client_.ip = fc.address;
        client_.ip_text = client_.ip.to_string();
        forwarded_for_ = std::move(fc.forwarded_for);
        if (d != access::Decision::allowed) {
            net::refusal_log().log({client_.listener_name,
                                    client_.ip,
                                    access::to_deny_reason(d),
                                    client_.conn_ip,
                                    {}});
            count_denied(access::to_deny_reason(d));
            // on_deny: close answers nothing.
            if (acc.on_deny == config::OnDeny::respond_403)
                fail({403, true, "access denied"});
            else
                fail({0, true, {}});
            co_return false;
        }
    }
    if (lc.auth.enabled()) {
        std::vector<std::string_view> values;
        for (const auto& f : h)
            if (f.known == Known::authorization) values.push_back(f.value);
        auto ar = access::authenticate(*lc.auth.keys, values);
        if (ar.outcome != access::AuthOutcome::ok) {
            net::refusal_log().log({client_.listener_name,
                                    client_.ip,
                                    access::to_deny_reason(ar.outcome),
                                    std::nullopt,
                                    {}});
            count_denied(access::to_deny_reason(ar.outcome));
            fail({401, !req_->is_done(),
                  ar.outcome == access::AuthOutcome::missing_key
                      ? "missing API key: send Authorization: Bearer <key>"
                      : "invalid API key",
                  std::string("WWW-Authenticate: ") + access::www_authenticate(ar.outcome) +
                      "\r\n"});
            co_return false;
        }
        outcome_.api_key = ar.name;
    }
    co_return true;
}

}  // namespace dsgw::proxy
