#include "deepseek_gateway/proxy/forward.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

#include <cstring>

namespace dsgw::proxy {

namespace {

using boost::beast::iequals;

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

// Writes a head into the end of a string: one resize to a bound computed
// beforehand, plain copies, and one shrink to what was written (it grows
// should the bound ever be short). Appending field by field was 5% of the
// gateway's instructions per request (callgrind).
class HeadWriter {
public:
    HeadWriter(std::string& out, std::size_t bound) : out_(out) {
        const std::size_t at = out_.size();
        out_.resize(at + bound);
        p_ = out_.data() + at;
        end_ = out_.data() + out_.size();
    }
    HeadWriter(const HeadWriter&) = delete;
    HeadWriter& operator=(const HeadWriter&) = delete;
    ~HeadWriter() {
        end_lines();
        out_.resize(static_cast<std::size_t>(p_ - out_.data()));
    }

    // put(), number(), field() and framing() write at once: after line()s,
    // end_lines() comes first.
    [[gnu::always_inline]] void put(std::string_view s) { copy(s.data(), s.size()); }
    [[gnu::always_inline]] void put(char c) {
        room(1);
        *p_++ = c;
    }
    // A field passed on unchanged. A line received as "Name: value\r\n" is
    // copied as it came, and such lines that were adjacent go out with one
    // copy; any other spacing is written anew.
    void line(const Field& f) {
        const char* start = f.name.data();
        const bool canonical =
            f.line_size == f.name.size() + f.value.size() + 4 && start[f.name.size() + 1] == ' ';
        if (!canonical) {
            end_lines();
            field(f.name, f.value);
            return;
        }
        if (run_ && run_ + run_size_ == start) {
            run_size_ += f.line_size;
            return;
        }
        end_lines();
        run_ = start;
        run_size_ = f.line_size;
    }
    // Copies the lines line() has gathered.
    void end_lines() {
        if (!run_) return;
        copy(run_, run_size_);
        run_ = nullptr;
    }
    void number(std::uint64_t v) {
        char digits[20];
        std::size_t n = 0;
        do {
            digits[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        room(n);
        while (n > 0) *p_++ = digits[--n];
    }
    void field(std::string_view name, std::string_view value) {
        put(name);
        put(": ");
        put(value);
        put("\r\n");
    }
    // "Content-Length: N" or "Transfer-Encoding: chunked", or nothing.
    void framing(Framing f, std::uint64_t body_length) {
        if (f == Framing::content_length) {
            put("Content-Length: ");
            number(body_length);
            put("\r\n");
        } else if (f == Framing::chunked) {
            put("Transfer-Encoding: chunked\r\n");
        }
    }

private:
    [[gnu::always_inline]] void copy(const char* s, std::size_t n) {
        room(n);
        std::memcpy(p_, s, n);
        p_ += n;
    }
    [[gnu::always_inline]] void room(std::size_t n) {
        if (static_cast<std::size_t>(end_ - p_) < n) [[unlikely]]
            grow(n);
    }
    [[gnu::noinline]] void grow(std::size_t n) {
        const auto at = static_cast<std::size_t>(p_ - out_.data());
        out_.resize(2 * (at + n));
        p_ = out_.data() + at;
        end_ = out_.data() + out_.size();
    }

    std::string& out_;
    char* p_ = nullptr;
    char* end_ = nullptr;
    const char* run_ = nullptr;  // lines to copy as received, not yet copied
    std::size_t run_size_ = 0;
};

// What a head's own fields can take when written back: the head as received
// (fields passed on are copied as they came), one byte per field to spare,
// and room for the status or request line, the framing and Connection lines.
std::size_t bound_for(const Head& h) {
    return h.wire_size() + h.fields().size() + 128;
}

// RFC 9110 §7.6.1 plus the framing headers we always rewrite ourselves, by
// the parser's classification: the seven names are all Known, so any other
// field is hop-by-hop only when the Connection header lists it.
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

// The upstream's reason phrase, or the standard one when it sent none.
std::string_view reason_of(const ResponseHead& res) {
    auto reason = res.reason();
    if (reason.empty()) {
        const auto standard = http::obsolete_reason(static_cast<http::status>(res.result_int()));
        reason = std::string_view(standard.data(), standard.size());
    }
    return reason;
}

// "HTTP/1.1 NNN reason": we speak HTTP/1.1 to the client whatever the
// upstream's version.
void status_line(HeadWriter& w, const ResponseHead& res, std::string_view reason) {
    w.put("HTTP/1.1 ");
    w.number(res.result_int());
    w.put(' ');
    w.put(reason);
    w.put("\r\n");
}

}  // namespace

bool is_hop_by_hop(std::string_view name, std::string_view connection) {
    return hop_by_hop(classify(name), name, connection);
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

void build_upstream_request_head(const RequestHead& req, const ForwardContext& ctx, Framing framing,
                                 std::uint64_t body_length, std::string& out) {
    const std::string conn = connection_tokens(req);
    const std::string_view xff = ctx.forwarded_for.empty() ? ctx.client_address : ctx.forwarded_for;
    // Ours: Host, X-Forwarded-For/-Proto/-Host and Via ("Via: " and
    // "1.1 deepseek-gateway\r\n"), and the blank line. The received Host and
    // Via values are in the head's own size.
    HeadWriter w(out, bound_for(req) + ctx.default_host.size() + xff.size() + ctx.proto.size() +
                          req.wire_size() + 128);
    w.put(req.method_string());
    w.put(' ');
    if (!ctx.authority.empty()) {
        if (ctx.origin_form.empty() || ctx.origin_form.front() != '/') w.put('/');
        w.put(ctx.origin_form);
    } else {
        w.put(req.target());
    }
    w.put(" HTTP/1.1\r\n");

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
                if (!ctx.authority.empty()) {  // the target's authority wins
                    if (host.empty()) {
                        w.end_lines();
                        w.field("Host", ctx.authority);
                    }
                    host = ctx.authority;
                    continue;
                }
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
        w.line(f);
    }
    w.end_lines();
    if (host.empty() && !ctx.authority.empty()) {
        host = ctx.authority;
        w.field("Host", host);
    }
    if (host.empty()) w.field("Host", ctx.default_host);
    w.framing(framing, body_length);
    w.field("X-Forwarded-For", xff);
    w.field("X-Forwarded-Proto", ctx.proto);
    if (!host.empty()) w.field("X-Forwarded-Host", host);
    w.put("Via: ");
    if (via) {
        for (const auto& f : req) {
            if (f.known != Known::via) continue;
            w.put(f.value);
            w.put(", ");
        }
    }
    w.put(req.version() == 10 ? "1.0 deepseek-gateway\r\n" : "1.1 deepseek-gateway\r\n");
    w.put("\r\n");
}

void build_interim_response_head(const ResponseHead& res, std::string& out) {
    const auto reason = reason_of(res);
    const std::string conn = connection_tokens(res);
    HeadWriter w(out, bound_for(res) + reason.size());
    status_line(w, res, reason);
    for (const auto& f : res) {
        if (f.known == Known::content_length || hop_by_hop(f.known, f.name, conn)) continue;
        w.line(f);
    }
    w.end_lines();
    w.put("\r\n");
}

void build_client_response_head(const ResponseHead& res, Framing framing, std::uint64_t body_length,
                                bool keep_alive, unsigned client_version, std::string& out) {
    const auto reason = reason_of(res);
    const std::string conn = connection_tokens(res);
    HeadWriter w(out, bound_for(res) + reason.size());
    status_line(w, res, reason);

    for (const auto& f : res) {
        // Without a body (HEAD, 304) the upstream's Content-Length describes
        // the body it would have sent, and is passed on as it is.
        if (f.known == Known::content_length && framing != Framing::none) continue;
        if (hop_by_hop(f.known, f.name, conn)) continue;
        w.line(f);
    }
    w.end_lines();
    w.framing(framing, body_length);
    if (!keep_alive)
        w.put("Connection: close\r\n");
    else if (client_version == 10)
        w.put("Connection: keep-alive\r\n");
    w.put("\r\n");
}

}  // namespace dsgw::proxy
