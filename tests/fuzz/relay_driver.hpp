#pragma once
// What the parser targets share: RelayParser fed the way the session feeds it
// (reads appended to a flat_buffer, parse_buffered(), the pieces taken, the
// used bytes consumed), with its invariants checked at every step, and
// Beast's parser run over the same bytes for comparison.

#include "proxy/relay_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"

namespace dsgw::fuzz {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using error_code = boost::system::error_code;

struct Limits {
    std::uint32_t header = 8192;
    std::optional<std::uint64_t> body;
    bool eager = true;
    bool skip = false;  // a response to HEAD
};

// Limits from one byte of the input: small ones are where the edges are.
inline Limits limits_from(std::uint8_t b) {
    static constexpr std::uint32_t kHeader[] = {32, 64, 256, 8192};
    static constexpr std::uint64_t kBody[] = {0, 1, 16, 100, 4096};
    Limits l;
    l.header = kHeader[b & 3];
    const unsigned body = (b >> 2) % 6;
    if (body < 5) l.body = kBody[body];
    l.eager = (b & 0x20) != 0;
    l.skip = (b & 0x40) != 0;
    return l;
}

// What a parser made of a message, comparable between runs and parsers.
struct Outcome {
    enum Kind { complete, incomplete, failed } kind = incomplete;
    error_code ec;
    std::size_t used = 0;  // bytes of the input the message took
    std::string body;
    std::string start_line;
    bool keep_alive = false;
    bool chunked = false;
    std::optional<std::uint64_t> content_length;
    bool need_eof = false;
};

// Slice sizes for the reads: `sizes` cycled (0 means "all the rest").
struct Slices {
    std::vector<std::uint8_t> sizes;
    std::size_t next(std::size_t at, std::size_t left) const {
        if (sizes.empty()) return left;
        const std::size_t s = sizes[at % sizes.size()];
        return s == 0 ? left : std::min<std::size_t>(s, left);
    }
};

// RelayParser over `wire`, read in slices, every invariant checked on the
// way. The body limit stays as set; eager turns on once the head is done, as
// the session does once it has looked at the head.
template <bool isRequest>
Outcome run_ours(std::string_view wire, const Limits& l, const Slices& slices, bool eof_at_end) {
    dsgw::proxy::RelayParser<isRequest> p;
    p.header_limit(l.header);
    p.body_limit(l.body);
    p.eager(l.eager);
    if constexpr (!isRequest) p.skip(l.skip);
    Outcome o;
    beast::flat_buffer in;
    std::size_t fed = 0, reads = 0;
    error_code ec;
    bool header_seen = false;
    for (;;) {
        const std::size_t n = slices.next(reads++, wire.size() - fed);
        if (n > 0) {
            auto dst = in.prepare(n);
            std::memcpy(dst.data(), wire.data() + fed, n);
            in.commit(n);
            fed += n;
        }
        const auto data = in.data();
        const char* const base = static_cast<const char*>(data.data());
        const std::size_t used = dsgw::proxy::parse_buffered(p, in, ec);
        DSGW_FUZZ_CHECK(used <= data.size());
        // Every piece lies in the bytes used, after the head, in order, and
        // they add up to piece_bytes().
        std::size_t sum = 0;
        const char* prev_end = base;
        for (const auto& b : p.pieces()) {
            const char* s = static_cast<const char*>(b.data());
            DSGW_FUZZ_CHECK(b.size() > 0);
            DSGW_FUZZ_CHECK(s >= prev_end && s + b.size() <= base + used);
            prev_end = s + b.size();
            sum += b.size();
            o.body.append(s, b.size());
        }
        DSGW_FUZZ_CHECK(sum == p.piece_bytes());
        p.clear_pieces();
        in.consume(used);
        o.used += used;
        if (p.is_done()) DSGW_FUZZ_CHECK(p.is_header_done());
        if (!ec && p.is_header_done() && !header_seen) {
            header_seen = true;
            // Framing facts hold together once the head is in.
            DSGW_FUZZ_CHECK(!(p.chunked() && p.content_length()));
            if constexpr (isRequest) DSGW_FUZZ_CHECK(!p.need_eof());
            if (p.need_eof()) DSGW_FUZZ_CHECK(!p.keep_alive());
            if (!l.eager && !p.is_done()) DSGW_FUZZ_CHECK(o.body.empty());
        }
        if (ec) break;
        if (p.is_header_done()) p.eager(true);
        if (p.is_done()) break;
        if (fed == wire.size() && used == 0 && n == 0) break;  // starved
    }
    if (p.is_done()) {  // nothing more is taken once done
        error_code again;
        DSGW_FUZZ_CHECK(dsgw::proxy::parse_buffered(p, in, again) == 0 && !again);
        DSGW_FUZZ_CHECK(p.pieces().empty());
    }
    if (!ec && !p.is_done() && eof_at_end) {
        p.put_eof(ec);
        // Only a body that runs to the end of the connection ends at EOF.
        if (!ec) DSGW_FUZZ_CHECK(p.need_eof() && p.is_done());
        if (p.is_header_done() && p.need_eof()) DSGW_FUZZ_CHECK(!ec);
    }
    DSGW_FUZZ_CHECK(o.used <= wire.size());
    if (l.body) DSGW_FUZZ_CHECK(o.body.size() <= *l.body);
    if (ec) {
        Outcome f;
        f.kind = Outcome::failed;
        f.ec = ec;
        DSGW_FUZZ_CHECK(ec != http::error::need_more);
        return f;
    }
    if (!p.is_done()) return Outcome{};
    o.kind = Outcome::complete;
    const auto& h = p.head();
    if constexpr (isRequest) {
        o.start_line = std::string(h.method_string()) + " " + std::string(h.target()) + " " +
                       std::to_string(h.version());
    } else {
        o.start_line = std::to_string(h.result_int()) + " " + std::to_string(h.version());
        // A status the gateway would write back as three digits.
        DSGW_FUZZ_CHECK(h.result_int() >= 100 && h.result_int() <= 599);
    }
    o.keep_alive = p.keep_alive();
    o.chunked = p.chunked();
    o.content_length = p.content_length();
    o.need_eof = p.need_eof();
    // A body of a Content-Length has exactly that length, unless there is
    // none by the status or the request method.
    bool bodyless = false;
    if constexpr (!isRequest) {
        const unsigned s = h.result_int();
        bodyless = l.skip || s / 100 == 1 || s == 204 || s == 304;
    }
    if (bodyless) DSGW_FUZZ_CHECK(o.body.empty());
    if (o.content_length && !bodyless) DSGW_FUZZ_CHECK(o.body.size() == *o.content_length);
    return o;
}

// Beast's parser over the same bytes, with the same limits, in one piece.
template <bool isRequest>
Outcome run_beast(std::string_view wire, const Limits& l, bool eof_at_end) {
    http::parser<isRequest, http::string_body> p;
    p.header_limit(l.header);
    p.body_limit(l.body ? *l.body : std::numeric_limits<std::uint64_t>::max());
    p.eager(true);
    if constexpr (!isRequest) p.skip(l.skip);
    Outcome o;
    error_code ec;
    std::size_t used = 0;
    while (!p.is_done() && used < wire.size()) {
        const auto n = p.put(asio::const_buffer(wire.data() + used, wire.size() - used), ec);
        used += n;
        if (ec == http::error::need_more) {
            ec = {};
            break;
        }
        if (ec || n == 0) break;
    }
    if (!ec && !p.is_done() && p.is_header_done() && p.need_eof() && eof_at_end) p.put_eof(ec);
    if (ec) {
        o.kind = Outcome::failed;
        o.ec = ec;
        return o;
    }
    if (!p.is_done()) return o;
    o.kind = Outcome::complete;
    o.used = used;
    const auto& m = p.get();
    if constexpr (isRequest)
        o.start_line = std::string(m.method_string()) + " " + std::string(m.target()) + " " +
                       std::to_string(m.version());
    else
        // No reason: Beast's reason() gives the standard one for an empty
        // reason-phrase, which the wire did not hold.
        o.start_line = std::to_string(m.result_int()) + " " + std::to_string(m.version());
    o.body = m.body();
    o.keep_alive = p.keep_alive();
    o.chunked = p.chunked();
    if (const auto cl = p.content_length()) o.content_length = *cl;  // a boost::optional
    o.need_eof = p.need_eof();
    return o;
}

}  // namespace dsgw::fuzz
