// RelayParser: the HTTP/1.x parser of both sides, over a buffer, with no I/O
// (as HAProxy's h1.c). One state machine, kept in one file past ~500 lines so
// that each state and the grammar it checks read in order.

#include "proxy/relay_parser.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace dsgw::proxy {

namespace {

using error = boost::beast::http::error;
using boost::beast::iequals;

// A chunk-size line longer than this (extensions included) is refused.
constexpr std::size_t kMaxChunkLine = 4096;
// Bytes after the copy of a head that a 16-byte scan may read.
constexpr std::size_t kPadding = 16;

using Table = std::array<bool, 256>;

// tchar, RFC 9110 §5.6.2.
constexpr Table kToken = [] {
    Table t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}();

// field-vchar, SP and HTAB (RFC 9110 §5.5): what a value, a reason phrase or
// a chunk extension may hold. Every other control ends the scan.
constexpr Table kText = [] {
    Table t{};
    for (int c = 0x20; c < 0x100; ++c) t[c] = c != 0x7f;
    t['\t'] = true;
    return t;
}();

// qdtext, RFC 9110 §5.6.4: what a quoted string holds besides quoted-pairs.
constexpr Table kQdText = [] {
    Table t{};
    for (int c = 0x20; c < 0x100; ++c) t[c] = c != 0x7f && c != '"' && c != '\\';
    t['\t'] = true;
    return t;
}();

// A request-target: anything visible, obs-text included (as Beast).
constexpr Table kTarget = [] {
    Table t{};
    for (int c = 0x21; c < 0x100; ++c) t[c] = c != 0x7f;
    return t;
}();

inline bool in(const Table& t, char c) {
    return t[static_cast<unsigned char>(c)];
}
inline bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

int unhex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls f(element) for each comma-separated element, trimmed (empty ones
// included). Returns false as soon as f does.
template <class F>
bool for_each_element(std::string_view list, F&& f) {
    for (;;) {
        const auto comma = list.find(',');
        if (!f(trim(list.substr(0, comma)))) return false;
        if (comma == std::string_view::npos) return true;
        list.remove_prefix(comma + 1);
    }
}

bool all_token(std::string_view s) {
    for (char c : s)
        if (!in(kToken, c)) return false;
    return true;
}

// The scans below work on [p, end) and return where they stopped.
const char* skip_ws(const char* p, const char* end) {
    while (p != end && (*p == ' ' || *p == '\t')) ++p;
    return p;
}
const char* skip_token(const char* p, const char* end) {
    while (p != end && in(kToken, *p)) ++p;
    return p;
}

// token / quoted-string at p: past it, or null when there is neither.
// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE, quoted-pair = "\"
// ( HTAB / SP / VCHAR / obs-text ), RFC 9110 §5.6.4.
const char* skip_value(const char* p, const char* end) {
    if (p == end) return nullptr;
    if (*p != '"') {
        const char* const q = skip_token(p, end);
        return q == p ? nullptr : q;
    }
    for (++p; p != end; ++p) {
        if (*p == '"') return p + 1;
        if (*p == '\\') {
            if (++p == end || !in(kText, *p)) return nullptr;
        } else if (!in(kQdText, *p)) {
            return nullptr;
        }
    }
    return nullptr;  // unterminated
}

// Transfer-Encoding = #transfer-coding (empty elements allowed, RFC 9110
// §5.6.1), transfer-coding = token *( OWS ";" OWS transfer-parameter ),
// transfer-parameter = token BWS "=" BWS ( token / quoted-string ) (RFC 9110
// §10.1.4, RFC 9112 §7). `chunked` says whether the last coding is chunked;
// `seen` whether chunked came in this or an earlier Transfer-Encoding line.
// False when the value breaks the grammar, has no coding, gives chunked
// parameters (RFC 9112 §7.1 defines none) or applies chunked twice (RFC 9112
// §6.1: a sender MUST NOT; Beast reads "chunked, chunked" as not chunked).
// "chunked" alone takes one token scan.
bool parse_codings(std::string_view value, bool& chunked, bool& seen) {
    const char* p = value.data();
    const char* const end = p + value.size();
    bool any = false;
    for (;;) {
        p = skip_ws(p, end);
        if (p == end) return any;
        if (*p == ',') {
            ++p;
            continue;
        }
        const char* const coding = p;
        p = skip_token(p, end);
        if (p == coding) return false;
        chunked =
            iequals(std::string_view(coding, static_cast<std::size_t>(p - coding)), "chunked");
        if (chunked) {
            if (seen) return false;
            seen = true;
        }
        any = true;
        for (;;) {
            p = skip_ws(p, end);
            if (p == end || *p == ',') break;
            if (*p != ';' || chunked) return false;
            p = skip_ws(p + 1, end);
            const char* const name = p;
            p = skip_token(p, end);
            if (p == name) return false;
            p = skip_ws(p, end);
            if (p == end || *p != '=') return false;
            p = skip_value(skip_ws(p + 1, end), end);
            if (!p) return false;
        }
        if (p == end) return true;
        ++p;  // ','
    }
}

// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
// chunk-ext-name = token, chunk-ext-val = token / quoted-string (RFC 9112
// §7.1.1), the whole of [p, end).
bool valid_chunk_ext(const char* p, const char* end) {
    while (p != end) {
        p = skip_ws(p, end);
        if (p == end || *p != ';') return false;
        p = skip_ws(p + 1, end);
        const char* const name = p;
        p = skip_token(p, end);
        if (p == name) return false;
        const char* const eq = skip_ws(p, end);
        if (eq != end && *eq == '=') {
            p = skip_value(skip_ws(eq + 1, end), end);
            if (!p) return false;
        }
    }
    return true;
}

// The first "\r\n\r\n" in [p, last), p at or after `begin`, the start of
// what is searched: the position after it, or null with `resume` set to where
// the next search may start. Each '\n' is found 16 bytes at a time and looked
// back from.
const char* find_eom(const char* begin, const char* p, const char* last, const char*& resume) {
    const auto ends_eom = [begin](const char* nl) {
        return nl - begin >= 3 && nl[-1] == '\r' && nl[-2] == '\n' && nl[-3] == '\r';
    };
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n');
    for (; last - p >= 16; p += 16) {
        auto m = static_cast<unsigned>(_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), lf)));
        for (; m != 0; m &= m - 1) {
            const char* nl = p + __builtin_ctz(m);
            if (ends_eom(nl)) return nl + 1;
        }
    }
#endif
    for (; p < last; ++p)
        if (*p == '\n' && ends_eom(p)) return p + 1;
    resume = p;
    return nullptr;
}

// Past the field-vchar, SP and HTAB at p, in a block that ends with
// "\r\n\r\n". With `padded`, 16 bytes may be read past that end.
template <bool padded>
const char* skip_text(const char* p) {
#if defined(__SSE2__)
    if constexpr (padded) {
        const __m128i space = _mm_set1_epi8(0x20);
        const __m128i del = _mm_set1_epi8(0x7f);
        for (;;) {
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            // Below SP (a control), or DEL: where the scan may stop.
            const auto low =
                static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(b, space), b)));
            const auto stop =
                (low ^ 0xffffu) | static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(b, del)));
            if (stop == 0) {
                p += 16;
                continue;
            }
            p += __builtin_ctz(stop);
            if (*p != '\t') return p;
            ++p;
        }
    }
#endif
    while (in(kText, *p)) ++p;
    return p;
}

// One field line at q, in a block that ends with "\r\n\r\n" (so every scan
// stops in it). On success q is at the next line.
template <bool padded>
bool parse_field_line(const char*& q, std::string_view& name, std::string_view& value,
                      std::uint32_t& line_size, boost::system::error_code& ec) {
    const char* p = q;
    const char* const name_start = p;
    while (in(kToken, *p)) ++p;
    if (*p != ':' || p == name_start) {
        ec = error::bad_field;
        return false;
    }
    name = std::string_view(name_start, static_cast<std::size_t>(p - name_start));
    ++p;
    while (*p == ' ' || *p == '\t') ++p;
    const char* const value_start = p;
    p = skip_text<padded>(p);
    if (*p != '\r') {
        ec = error::bad_value;
        return false;
    }
    if (p[1] != '\n') {
        ec = error::bad_line_ending;
        return false;
    }
    const char* value_end = p;
    while (value_end > value_start && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
    value = std::string_view(value_start, static_cast<std::size_t>(value_end - value_start));
    p += 2;
    if (*p == ' ' || *p == '\t') {  // obs-fold: refused (RFC 9112 §5.2)
        ec = error::bad_value;
        return false;
    }
    line_size = static_cast<std::uint32_t>(p - name_start);
    q = p;
    return true;
}

// The field lines at q, up to the blank line that ends the section: `last`
// is just past its "\r\n\r\n" (found by find_section_end). The head and the
// trailer section both go through here, so that a field line is checked the
// same way in both; on_line(name, value, line_size) is called for each.
template <bool padded, class OnLine>
bool parse_field_lines(const char*& q, const char* last, boost::system::error_code& ec,
                       OnLine&& on_line) {
    for (;;) {
        if (*q == '\r') {
            if (q + 2 != last) {  // a CR not followed by LF
                ec = error::bad_line_ending;
                return false;
            }
            q = last;
            return true;
        }
        std::string_view name, value;
        std::uint32_t line_size = 0;
        if (!parse_field_line<padded>(q, name, value, line_size, ec)) return false;
        if (!on_line(name, value, line_size)) return false;
    }
}

}  // namespace

template <bool isRequest>
std::size_t RelayParser<isRequest>::put(boost::asio::const_buffer input, error_code& ec) {
    ec = {};
    const char* const p0 = static_cast<const char*>(input.data());
    const char* const end = p0 + input.size();
    const char* p = p0;
    const auto used = [&] { return static_cast<std::size_t>(p - p0); };
    if (state_ == State::head) {
        if (!parse_head(p, end, ec)) return used();
        if (!eager_) return used();
    }
    while (state_ != State::done && p < end) {
        switch (state_) {
            case State::body:
            case State::chunk_data: {
                const auto n = static_cast<std::size_t>(
                    std::min<std::uint64_t>(left_, static_cast<std::uint64_t>(end - p)));
                add(p, n);
                p += n;
                left_ -= n;
                if (left_ == 0) state_ = state_ == State::body ? State::done : State::chunk_crlf;
                break;
            }
            case State::to_eof: {
                const auto n = static_cast<std::size_t>(end - p);
                if (!take_body_bytes(n, ec)) return used();
                add(p, n);
                p = end;
                break;
            }
            case State::chunk_crlf:
                if (end - p < 2) {
                    ec = error::need_more;
                    return used();
                }
                if (p[0] != '\r' || p[1] != '\n') {
                    ec = error::bad_chunk;
                    return used();
                }
                p += 2;
                state_ = State::chunk_size;
                break;
            case State::chunk_size:
                if (!parse_chunk_size(p, end, ec)) return used();
                break;
            case State::trailer:
                if (!parse_trailer(p, end, ec)) return used();
                break;
            case State::head:
            case State::done:
                break;
        }
    }
    return used();
}

template <bool isRequest>
void RelayParser<isRequest>::put_eof(error_code& ec) {
    ec = {};
    if (state_ == State::to_eof) {
        state_ = State::done;
        return;
    }
    if (state_ != State::done) ec = error::partial_message;
}

template <bool isRequest>
bool RelayParser<isRequest>::keep_alive() const {
    if (head_.version_ >= 11) {
        if (conn_close_) return false;
    } else if (!conn_keep_alive_) {
        return false;
    }
    return !to_eof_;
}

template <bool isRequest>
bool RelayParser<isRequest>::parse_head(const char*& p, const char* end, error_code& ec) {
    const auto n = static_cast<std::size_t>(end - p);
    if (n == 0) {
        ec = error::need_more;
        return false;
    }
    const char* const eom = find_section_end(p, end, ec);
    if (!eom) {
        // The start line is checked as soon as it is complete: a wrong one is
        // refused now, not once the head is complete (or the header timeout
        // ends the wait). A good one is kept, in a copy of its own, so a head
        // refused later (431) is still logged with its method and target.
        if (!line_copy_) {
            const auto seen = std::min<std::size_t>(n, header_limit_);
            if (const void* nl = std::memchr(p, '\n', seen)) {
                const auto size = static_cast<std::size_t>(static_cast<const char*>(nl) + 1 - p);
                line_copy_size_ = size;
                line_copy_ = static_cast<char*>(mr_->allocate(size, 1));
                std::memcpy(line_copy_, p, size);
                const char* q = line_copy_;
                const error_code pending = ec;
                if (!parse_start_line(q, line_copy_ + size - 1, ec)) return false;
                ec = pending;
            }
        }
        return false;
    }

    // One copy of the head, in the arena: the fields are views into it, and
    // stay valid when the caller consumes and reuses its buffer.
    const auto size = static_cast<std::size_t>(eom - p);
    copy_size_ = size + kPadding;
    copy_ = static_cast<char*>(mr_->allocate(copy_size_, 1));
    char* const copy = copy_;
    std::memcpy(copy, p, size);
    std::memset(copy + size, 0, kPadding);
    head_.wire_size_ = size;
    const char* q = copy;
    const char* const last = copy + size;  // ends with "\r\n\r\n"
    const char* nl = static_cast<const char*>(std::memchr(copy, '\n', size));
    if (!parse_start_line(q, nl, ec)) return false;
    head_.fields_.reserve(size / 24 + 4);
    const bool fields_ok = parse_field_lines<true>(
        q, last, ec, [&](std::string_view name, std::string_view value, std::uint32_t line_size) {
            Field f;
            f.name = name;
            f.value = value;
            f.line_size = line_size;
            f.known = classify(f.name);
            if (f.known != Known::other && !on_field(f, ec)) return false;
            head_.fields_.push_back(f);
            return true;
        });
    if (!fields_ok) return false;
    p = eom;
    finish_head(ec);
    return !ec;
}

// The end of a head or a trailer section that starts at p: the position
// after its "\r\n\r\n", which must come within header_limit_ bytes. Null
// with ec set otherwise: header_limit, or need_more (scanned_ remembers how
// far it looked, for the next call with the same start).
template <bool isRequest>
const char* RelayParser<isRequest>::find_section_end(const char* p, const char* end,
                                                     error_code& ec) {
    const auto n = static_cast<std::size_t>(end - p);
    const char* const limit = p + std::min<std::size_t>(n, header_limit_);
    const char* resume = nullptr;
    const char* const eom =
        find_eom(p, p + std::min<std::size_t>(scanned_, limit - p), limit, resume);
    if (eom) return eom;
    if (n >= header_limit_) {
        ec = error::header_limit;
        return nullptr;
    }
    scanned_ = static_cast<std::size_t>(resume - p);
    ec = error::need_more;
    return nullptr;
}

// The start line is [q, nl], nl at its '\n'. On success q is past it.
template <bool isRequest>
bool RelayParser<isRequest>::parse_start_line(const char*& q, const char* nl, error_code& ec) {
    const char* p = q;
    const auto version_at = [&](const char* v) -> int {  // "HTTP/d.d", or -1
        if (nl - v < 8 || std::memcmp(v, "HTTP/", 5) != 0 || !is_digit(v[5]) || v[6] != '.' ||
            !is_digit(v[7]))
            return -1;
        return (v[5] - '0') * 10 + (v[7] - '0');
    };
    if constexpr (isRequest) {
        // method SP request-target SP HTTP-version CRLF
        const char* const method = p;
        while (in(kToken, *p)) ++p;
        if (*p != ' ' || p == method) {
            ec = error::bad_method;
            return false;
        }
        head_.method_string_ = std::string_view(method, static_cast<std::size_t>(p - method));
        ++p;
        const char* const target = p;
        while (in(kTarget, *p)) ++p;
        if (*p != ' ' || p == target) {
            ec = error::bad_target;
            return false;
        }
        head_.target_ = std::string_view(target, static_cast<std::size_t>(p - target));
        ++p;
        const int version = version_at(p);
        if (version != 10 && version != 11) {
            ec = error::bad_version;
            return false;
        }
        p += 8;
        if (p + 1 != nl || *p != '\r') {
            ec = error::bad_version;
            return false;
        }
        head_.version_ = static_cast<unsigned>(version);
        head_.method_ = http::string_to_verb(head_.method_string_);
    } else {
        // HTTP-version SP status-code SP reason-phrase CRLF
        const int version = version_at(p);
        if (version != 10 && version != 11) {
            ec = error::bad_version;
            return false;
        }
        p += 8;
        if (*p != ' ') {
            ec = error::bad_version;
            return false;
        }
        ++p;
        // status-code = 3DIGIT, 100 to 599 (RFC 9110 §15): "050" is no
        // status, and would be relayed as "50".
        if (nl - p < 4 || p[0] < '1' || p[0] > '5' || !is_digit(p[1]) || !is_digit(p[2]) ||
            p[3] != ' ') {
            ec = error::bad_status;
            return false;
        }
        head_.status_ =
            static_cast<unsigned>((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0'));
        p += 4;
        const char* const reason = p;
        while (in(kText, *p)) ++p;
        if (*p != '\r') {
            ec = error::bad_reason;
            return false;
        }
        if (p + 1 != nl) {
            ec = error::bad_line_ending;
            return false;
        }
        head_.reason_ = std::string_view(reason, static_cast<std::size_t>(p - reason));
        head_.version_ = static_cast<unsigned>(version);
    }
    q = nl + 1;
    return true;
}

// What the framing and keep-alive decisions need from a field (the checks of
// Beast's basic_parser::do_field).
template <bool isRequest>
bool RelayParser<isRequest>::on_field(const Field& f, error_code& ec) {
    switch (f.known) {
        case Known::connection:
        case Known::proxy_connection: {
            const bool ok = for_each_element(f.value, [&](std::string_view token) {
                if (!all_token(token)) return false;
                if (iequals(token, "close"))
                    conn_close_ = true;
                else if (iequals(token, "keep-alive"))
                    conn_keep_alive_ = true;
                return true;
            });
            if (!ok) ec = error::bad_value;
            return ok;
        }
        case Known::content_length: {
            // With any Transfer-Encoding, not only a chunked one (RFC 9112
            // §6.3: "ought to be handled as an error").
            if (chunked_ || has_te_) {
                ec = error::bad_content_length;
                return false;
            }
            bool conflict = false;
            const bool ok = for_each_element(f.value, [&](std::string_view token) {
                if (token.empty() || token.size() > 19) return false;  // 19 digits fit
                std::uint64_t v = 0;
                for (char c : token) {
                    if (!is_digit(c)) return false;
                    v = v * 10 + static_cast<std::uint64_t>(c - '0');
                }
                if (has_length_ && v != length_) {
                    conflict = true;
                    return false;
                }
                has_length_ = true;
                length_ = v;
                return true;
            });
            if (ok) return true;
            ec = conflict ? error::multiple_content_length : error::bad_content_length;
            return false;
        }
        case Known::transfer_encoding: {
            if (chunked_ || has_length_) {
                ec = error::bad_transfer_encoding;
                return false;
            }
            // Chunked when it is the last coding. A value that is not a list
            // of codings is refused: Beast took "chunked:" for chunked.
            has_te_ = true;
            if (!parse_codings(f.value, chunked_, te_chunked_)) {
                ec = error::bad_transfer_encoding;
                return false;
            }
            return true;
        }
        default:
            return true;
    }
}

template <bool isRequest>
void RelayParser<isRequest>::finish_head(error_code& ec) {
    if constexpr (!isRequest) {
        const unsigned status = head_.status_;
        if (skip_body_ || status / 100 == 1 || status == 204 || status == 304) {
            state_ = State::done;
            return;
        }
    }
    if (has_length_) {
        if (body_limit_ && length_ > *body_limit_) {
            ec = error::body_limit;
            return;
        }
        left_ = length_;
        state_ = length_ > 0 ? State::body : State::done;
    } else if (chunked_) {
        state_ = State::chunk_size;
    } else if constexpr (isRequest) {
        state_ = State::done;
    } else {
        to_eof_ = true;
        state_ = State::to_eof;
    }
}

// chunk-size [ chunk-ext ] CRLF
template <bool isRequest>
bool RelayParser<isRequest>::parse_chunk_size(const char*& p, const char* end, error_code& ec) {
    const auto avail = static_cast<std::size_t>(end - p);
    const auto* nl = static_cast<const char*>(std::memchr(p, '\n', std::min(avail, kMaxChunkLine)));
    if (!nl) {
        ec = avail >= kMaxChunkLine ? error::bad_chunk : error::need_more;
        return false;
    }
    const char* q = p;
    std::uint64_t size = 0;
    for (int d; (d = unhex(*q)) >= 0; ++q) {
        if (size >> 60) {  // one more digit would overflow
            ec = error::bad_chunk;
            return false;
        }
        size = size * 16 + static_cast<unsigned>(d);
    }
    if (q == p || nl[-1] != '\r' || q > nl - 1) {
        ec = error::bad_chunk;
        return false;
    }
    const char* const cr = nl - 1;
    if (q != cr && !valid_chunk_ext(q, cr)) {  // checked, then dropped
        ec = error::bad_chunk_extension;
        return false;
    }
    p = nl + 1;
    if (size == 0) {
        scanned_ = 0;
        state_ = State::trailer;
        return true;
    }
    if (!take_body_bytes(size, ec)) return false;
    left_ = size;
    state_ = State::chunk_data;
    return true;
}

// trailer-section CRLF, after the last chunk. The fields are checked and
// dropped: the gateway frames what it sends itself.
template <bool isRequest>
bool RelayParser<isRequest>::parse_trailer(const char*& p, const char* end, error_code& ec) {
    const auto n = static_cast<std::size_t>(end - p);
    if (n < 2) {
        ec = error::need_more;
        return false;
    }
    if (p[0] == '\r') {
        if (p[1] != '\n') {
            ec = error::bad_line_ending;
            return false;
        }
        p += 2;
        state_ = State::done;
        return true;
    }
    const char* const eom = find_section_end(p, end, ec);
    if (!eom) return false;
    const char* q = p;
    // The fields that frame the message or rule the connection cannot come
    // after the body (RFC 9110 §6.5.1); a parser that applied them anyway
    // (Beast does) would frame or keep the connection otherwise. Refused,
    // with the error the head would give to a repeated one.
    const bool ok = parse_field_lines<false>(
        q, eom, ec, [&](std::string_view name, std::string_view, std::uint32_t) {
            switch (classify(name)) {
                case Known::content_length:
                    ec = error::bad_content_length;
                    return false;
                case Known::transfer_encoding:
                    ec = error::bad_transfer_encoding;
                    return false;
                case Known::connection:
                case Known::proxy_connection:
                    ec = error::bad_value;
                    return false;
                default:
                    return true;
            }
        });
    if (!ok) return false;
    p = eom;
    state_ = State::done;
    return true;
}

template <bool isRequest>
bool RelayParser<isRequest>::take_body_bytes(std::uint64_t n, error_code& ec) {
    // Against what is left (body_seen_ never passes the limit): a sum could
    // wrap, and a chunk size near 2^64 would take it back under the limit.
    if (body_limit_ && n > *body_limit_ - body_seen_) {
        ec = error::body_limit;
        return false;
    }
    body_seen_ += n;
    return true;
}

template <bool isRequest>
void RelayParser<isRequest>::add(const char* data, std::size_t n) {
    if (n == 0) return;
    piece_bytes_ += n;
    // Adjacent views (a Content-Length body read in one go) merge.
    if (!pieces_.empty()) {
        auto& last = pieces_.back();
        if (static_cast<const char*>(last.data()) + last.size() == data) {
            last = boost::asio::const_buffer(last.data(), last.size() + n);
            return;
        }
    }
    pieces_.emplace_back(data, n);
}

template class RelayParser<true>;
template class RelayParser<false>;

}  // namespace dsgw::proxy
