#include "deepseek_gateway/proxy/forward.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

#include <array>
#include <cstring>

namespace dsgw::proxy {

namespace {

using boost::beast::iequals;

// RFC 9110 §7.6.1 plus the framing headers we always rewrite ourselves.
constexpr std::array<std::string_view, 7> kHopByHop = {
    "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
    "trailer"};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool in_token_list(std::string_view name, std::string_view list) {
    while (!list.empty()) {
        auto comma = list.find(',');
        auto token = trim(list.substr(0, comma));
        if (!token.empty() && iequals(token, name)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

// One resize and plain copies: four appends per field were 5% of the
// gateway's instructions per request (callgrind).
void append_field(std::string& out, std::string_view name, std::string_view value) {
    const std::size_t at = out.size();
    out.resize(at + name.size() + value.size() + 4);
    char* p = out.data() + at;
    std::memcpy(p, name.data(), name.size());
    p += name.size();
    *p++ = ':';
    *p++ = ' ';
    std::memcpy(p, value.data(), value.size());
    p += value.size();
    *p++ = '\r';
    *p = '\n';
}

// is_hop_by_hop() by the parser's classification: the seven hop-by-hop
// names are all Known, so any other field is hop-by-hop only when the
// Connection header lists it.
bool hop_by_hop(Known k, std::string_view name, std::string_view connection) {
    switch (k) {
        case Known::connection:
        case Known::keep_alive:
        case Known::proxy_connection:
        case Known::te:
        case Known::transfer_encoding:
        case Known::upgrade:
        case Known::trailer:
            return true;
        default:
            return !connection.empty() && in_token_list(name, connection);
    }
}

void append_framing(std::string& out, Framing framing, std::uint64_t body_length) {
    if (framing == Framing::content_length) {
        out.append("Content-Length: ");
        out.append(std::to_string(body_length));
        out.append("\r\n");
    } else if (framing == Framing::chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
}

}  // namespace

bool is_hop_by_hop(std::string_view name, std::string_view connection) {
    for (auto h : kHopByHop)
        if (iequals(name, h)) return true;
    return in_token_list(name, connection);
}

std::string connection_tokens(const Head& h) {
    std::string out;
    for (const auto& f : h) {
        if (f.known != Known::connection) continue;
        if (!out.empty()) out += ',';
        out.append(f.value);
    }
    return out;
}

void build_upstream_request_head(const RequestHead& req, const ForwardContext& ctx,
                                 Framing framing, std::uint64_t body_length, std::string& out) {
    const auto method = req.method_string();
    const auto target = req.target();
    out.append(method);
    out += ' ';
    out.append(target);
    out.append(" HTTP/1.1\r\n");

    const std::string conn = connection_tokens(req);
    std::string_view host;
    bool via = false;  // Via values are gathered at the end, with ours appended
    for (const auto& f : req) {
        switch (f.known) {
            case Known::content_length:
            case Known::expect:           // 100-continue is answered by us
            case Known::x_forwarded_for:  // set by us from what we saw
            case Known::x_forwarded_proto:
            case Known::x_forwarded_host:
                continue;
            case Known::authorization:
                if (ctx.strip_authorization) continue;
                break;
            case Known::host:
                // An empty Host means "no authority": we send our own, once.
                if (f.value.empty()) continue;
                host = f.value;
                break;
            case Known::via:
                via = true;
                continue;
            default:
                if (hop_by_hop(f.known, f.name, conn)) continue;
        }
        append_field(out, f.name, f.value);
    }
    if (host.empty()) {
        append_field(out, "Host", ctx.default_host);
    }
    append_framing(out, framing, body_length);
    append_field(out, "X-Forwarded-For",
                 ctx.forwarded_for.empty() ? ctx.client_address : ctx.forwarded_for);
    append_field(out, "X-Forwarded-Proto", ctx.proto);
    if (!host.empty()) append_field(out, "X-Forwarded-Host", host);
    out.append("Via: ");
    if (via) {
        for (const auto& f : req) {
            if (f.known != Known::via) continue;
            out.append(f.value);
            out.append(", ");
        }
    }
    out.append(req.version() == 10 ? "1.0 deepseek-gateway\r\n" : "1.1 deepseek-gateway\r\n");
    out.append("\r\n");
}

void build_client_response_head(const ResponseHead& res, Framing framing,
                                std::uint64_t body_length, bool keep_alive,
                                unsigned client_version, std::string& out) {
    out.append("HTTP/1.1 ");
    out.append(std::to_string(res.result_int()));
    out += ' ';
    auto reason = res.reason();
    if (reason.empty()) {
        const auto standard = http::obsolete_reason(static_cast<http::status>(res.result_int()));
        reason = std::string_view(standard.data(), standard.size());
    }
    out.append(reason);
    out.append("\r\n");

    const std::string conn = connection_tokens(res);
    for (const auto& f : res) {
        // Without a body (HEAD, 304) the upstream's Content-Length describes
        // the body it would have sent, and is passed on as it is.
        if (f.known == Known::content_length && framing != Framing::none) continue;
        if (hop_by_hop(f.known, f.name, conn)) continue;
        append_field(out, f.name, f.value);
    }
    append_framing(out, framing, body_length);
    if (!keep_alive)
        out.append("Connection: close\r\n");
    else if (client_version == 10)
        out.append("Connection: keep-alive\r\n");
    out.append("\r\n");
}

}  // namespace dsgw::proxy
