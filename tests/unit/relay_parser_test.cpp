// RelayParser (src/proxy/relay_parser.hpp) against Beast's own parser, which
// it replaced: thousands of messages, each a valid one with one byte
// replaced, deleted or inserted, go through both. Whatever Beast accepts we
// accept with the same head and body; whatever it refuses we refuse with the
// same error code. The few places where we differ on purpose are named in
// `allowed_difference` below. Each message also goes through our parser one
// byte at a time, the way the session feeds it, with the same outcome.

#include "../../src/proxy/relay_parser.hpp"

#include <gtest/gtest.h>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using dsgw::proxy::RelayParser;
using error_code = boost::system::error_code;

constexpr std::uint32_t kHeaderLimit = 1024;
constexpr std::uint64_t kBodyLimit = 64;

// What a parser made of a message, in a form both parsers can produce.
struct Outcome {
    enum Kind { complete, incomplete, failed } kind = incomplete;
    error_code ec;
    std::string start_line;  // "METHOD target 11" or "200 reason 10"
    std::vector<std::pair<std::string, std::string>> fields;
    std::string body;
    std::size_t used = 0;  // bytes of the input the message took
    bool keep_alive = false;
    bool chunked = false;
    std::string length;  // Content-Length, or "-"

    std::string describe() const {
        std::ostringstream os;
        os << (kind == complete ? "complete" : kind == incomplete ? "incomplete" : "failed");
        if (ec) os << " (" << ec.message() << ")";
        if (kind == complete) {
            os << " [" << start_line << "]";
            for (auto& [n, v] : fields) os << " {" << n << ": " << v << "}";
            os << " body=" << body.size() << " used=" << used << " ka=" << keep_alive
               << " chunked=" << chunked << " len=" << length;
        }
        return os.str();
    }
};

// Beast's basic_fields lists a repeated name next to its first occurrence;
// we keep the order received. Only the order within one name is meaning
// (RFC 9110 §5.3), so that is the order compared.
std::vector<std::pair<std::string, std::string>> grouped(
    std::vector<std::pair<std::string, std::string>> fields) {
    const auto lower = [](std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    std::stable_sort(fields.begin(), fields.end(),
                     [&](const auto& x, const auto& y) { return lower(x.first) < lower(y.first); });
    return fields;
}

bool operator==(const Outcome& a, const Outcome& b) {
    if (a.kind != b.kind) return false;
    if (a.kind == Outcome::failed) return a.ec == b.ec;
    if (a.kind == Outcome::incomplete) return true;
    return a.start_line == b.start_line && grouped(a.fields) == grouped(b.fields) &&
           a.body == b.body && a.used == b.used && a.keep_alive == b.keep_alive &&
           a.chunked == b.chunked && a.length == b.length;
}

std::string printable(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\r')
            out += "\\r";
        else if (c == '\n')
            out += "\\n";
        else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else
            out += static_cast<char>(c);
    }
    return out;
}

// ---------------------------------------------------------------- Beast

template <bool isRequest>
Outcome beast_parse(std::string_view wire, bool skip) {
    http::parser<isRequest, http::string_body> p;
    p.header_limit(kHeaderLimit);
    p.body_limit(kBodyLimit);
    p.eager(false);
    if (skip) p.skip(true);
    Outcome o;
    error_code ec;
    std::size_t used = 0;
    bool fields_taken = false;
    while (!p.is_done() && used < wire.size()) {
        auto n = p.put(asio::const_buffer(wire.data() + used, wire.size() - used), ec);
        used += n;
        if (ec == http::error::need_more) {
            ec = {};
            break;
        }
        if (ec || n == 0) break;
        if (p.is_header_done() && !fields_taken) {
            // Those of the head: trailer fields are added later, and dropped
            // by us.
            for (const auto& f : p.get()) o.fields.emplace_back(f.name_string(), f.value());
            fields_taken = true;
            p.eager(true);
        }
    }
    if (!ec && !p.is_done() && p.is_header_done() && p.need_eof()) p.put_eof(ec);
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
        o.start_line = std::to_string(m.result_int()) + " " + std::string(m.reason()) + " " +
                       std::to_string(m.version());
    o.body = m.body();
    o.keep_alive = p.keep_alive();
    o.chunked = p.chunked();
    o.length = p.content_length() ? std::to_string(*p.content_length()) : "-";
    return o;
}

// ---------------------------------------------------------------- ours

// `step` bytes at a time into a flat_buffer, consumed as the session does.
template <bool isRequest>
Outcome our_parse(std::string_view wire, bool skip, std::size_t step) {
    RelayParser<isRequest> p;
    p.header_limit(kHeaderLimit);
    p.body_limit(kBodyLimit);
    p.eager(true);
    if (skip) p.skip(true);
    Outcome o;
    beast::flat_buffer in;
    std::size_t fed = 0;
    error_code ec;
    while (!p.is_done()) {
        const std::size_t n = std::min(step, wire.size() - fed);
        if (n > 0) {
            auto dst = in.prepare(n);
            std::memcpy(dst.data(), wire.data() + fed, n);
            in.commit(n);
            fed += n;
        }
        auto used = parse_buffered(p, in, ec);
        if (ec) break;
        for (const auto& b : p.pieces())
            o.body.append(static_cast<const char*>(b.data()), b.size());
        p.clear_pieces();
        in.consume(used);
        o.used += used;
        if (n == 0) break;  // all fed
    }
    if (!ec && !p.is_done() && p.is_header_done() && p.need_eof()) p.put_eof(ec);
    if (ec) {
        o = {};
        o.kind = Outcome::failed;
        o.ec = ec;
        return o;
    }
    if (!p.is_done()) return Outcome{};
    o.kind = Outcome::complete;
    const auto& h = p.head();
    if constexpr (isRequest)
        o.start_line = std::string(h.method_string()) + " " + std::string(h.target()) + " " +
                       std::to_string(h.version());
    else
        o.start_line = std::to_string(h.result_int()) + " " + std::string(h.reason()) + " " +
                       std::to_string(h.version());
    for (const auto& f : h) o.fields.emplace_back(f.name, f.value);
    o.keep_alive = p.keep_alive();
    o.chunked = p.chunked();
    o.length = p.content_length() ? std::to_string(*p.content_length()) : "-";
    return o;
}

// ---------------------------------------------------------------- corpus

std::vector<std::string> mutations_of(const std::string& base) {
    static constexpr std::string_view kBytes{" \t\r\n:\0\x7f\x80,;aZ09-\"/", 17};
    std::vector<std::string> out{base};
    for (std::size_t i = 0; i < base.size(); ++i) {
        for (char c : kBytes) {
            if (base[i] != c) {
                auto m = base;
                m[i] = c;
                out.push_back(std::move(m));
            }
            auto ins = base;
            ins.insert(ins.begin() + static_cast<std::ptrdiff_t>(i), c);
            out.push_back(std::move(ins));
        }
        auto del = base;
        del.erase(i, 1);
        out.push_back(std::move(del));
    }
    return out;
}

// Where we differ from Beast on purpose.
std::string allowed_difference(std::string_view wire, const Outcome& ours, const Outcome& theirs) {
    const auto head_end = wire.find("\r\n\r\n");
    const auto head = wire.substr(0, head_end);
    // Obsolete line folding: Beast joins the lines, we refuse the message.
    if (ours.ec == http::error::bad_value && (head.find("\r\n ") != std::string_view::npos ||
                                              head.find("\r\n\t") != std::string_view::npos))
        return "obs-fold";
    // A Transfer-Encoding that is no list of codings: Beast reads
    // "chunked:" as chunked, we refuse it.
    if (ours.ec == http::error::bad_transfer_encoding && theirs.kind != Outcome::incomplete)
        return "invalid coding";
    // A chunk line refused by both, sometimes under another name: we check
    // the line ending first, and read no chunk extension (we frame what we
    // send ourselves, so the upstream never sees them).
    const auto chunk_error = [](error_code ec) {
        return ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension ||
               ec == http::error::bad_line_ending || ec == http::error::body_limit;
    };
    if (chunk_error(ours.ec) && chunk_error(theirs.ec)) return "chunk line";
    // A bad last-chunk line: Beast waits for the whole trailer section before
    // it reads the line, we refuse it at once.
    if (chunk_error(ours.ec) && theirs.kind == Outcome::incomplete) return "refused sooner";
    if (ours.kind == Outcome::complete && theirs.ec == http::error::bad_chunk_extension)
        return "chunk extension";
    // A head without its end: Beast may refuse a bad field line already; we
    // wait for the end of the head (or the header timeout) first.
    if (head_end == std::string_view::npos && ours.kind == Outcome::incomplete &&
        theirs.kind == Outcome::failed)
        return "head not complete";
    return {};
}

template <bool isRequest>
void compare_all(const std::vector<std::string>& bases, bool skip = false) {
    int compared = 0, allowed = 0, failures = 0;
    for (const auto& base : bases) {
        for (const auto& wire : mutations_of(base)) {
            ++compared;
            const auto theirs = beast_parse<isRequest>(wire, skip);
            const auto ours = our_parse<isRequest>(wire, skip, wire.size() + 1);
            if (!(ours == theirs)) {
                if (!allowed_difference(wire, ours, theirs).empty()) {
                    ++allowed;
                } else if (++failures <= 20) {
                    ADD_FAILURE() << "input: " << printable(wire)
                                  << "\n  ours:  " << ours.describe()
                                  << "\n  Beast: " << theirs.describe();
                }
            }
            // Byte by byte: the same outcome as in one piece (incomplete
            // heads may only be refused later, when their end arrives).
            const auto bytewise = our_parse<isRequest>(wire, skip, 1);
            if (!(bytewise == ours) && ++failures <= 20)
                ADD_FAILURE() << "input: " << printable(wire) << "\n  whole:   " << ours.describe()
                              << "\n  bytewise: " << bytewise.describe();
        }
    }
    EXPECT_EQ(failures, 0) << "of " << compared << " messages";
    // The corpus is not all one case: most inputs are compared as they are.
    EXPECT_LT(allowed * 10, compared) << allowed << " allowed differences of " << compared;
}

// ------------------------------------------------------------- classify

TEST(Classify, KnownNamesWhateverTheirCaseAndNothingElse) {
    using dsgw::proxy::Known;
    const std::vector<std::pair<std::string, Known>> known = {
        {"te", Known::te},
        {"via", Known::via},
        {"host", Known::host},
        {"expect", Known::expect},
        {"trailer", Known::trailer},
        {"upgrade", Known::upgrade},
        {"connection", Known::connection},
        {"keep-alive", Known::keep_alive},
        {"authorization", Known::authorization},
        {"content-length", Known::content_length},
        {"x-forwarded-for", Known::x_forwarded_for},
        {"proxy-connection", Known::proxy_connection},
        {"x-forwarded-host", Known::x_forwarded_host},
        {"transfer-encoding", Known::transfer_encoding},
        {"x-forwarded-proto", Known::x_forwarded_proto},
    };
    const std::string tchars =
        "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (const auto& [name, k] : known) {
        SCOPED_TRACE(name);
        std::string upper = name, mixed = name;
        for (std::size_t i = 0; i < name.size(); ++i) {
            upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[i])));
            if (i % 2 == 0) mixed[i] = upper[i];
        }
        EXPECT_EQ(dsgw::proxy::classify(name), k);
        EXPECT_EQ(dsgw::proxy::classify(upper), k);
        EXPECT_EQ(dsgw::proxy::classify(mixed), k);
        // Any other token character in any place makes it another name.
        for (std::size_t i = 0; i < name.size(); ++i)
            for (char c : tchars) {
                if (std::tolower(static_cast<unsigned char>(c)) == name[i]) continue;
                auto other = mixed;
                other[i] = c;
                EXPECT_EQ(dsgw::proxy::classify(other), Known::other) << other;
            }
        EXPECT_EQ(dsgw::proxy::classify(name + "s"), Known::other);
        EXPECT_EQ(dsgw::proxy::classify(name.substr(1)), Known::other);
    }
}

// ------------------------------------------------ where we differ on purpose

error_code request_error(std::string_view wire) {
    RelayParser<true> p;
    error_code ec;
    p.put(asio::const_buffer(wire.data(), wire.size()), ec);
    return ec;
}

TEST(RelayParser, RefusesObsoleteLineFolding) {
    // RFC 9112 §5.2: a server may refuse it with 400; joining it is the
    // other choice, which a server behind us might not make.
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n"),
              http::error::bad_value);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n"),
              http::error::bad_value);
    // Whitespace inside and around a value is no folding.
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1 \t 2\t\r\n\r\n"), error_code{});
}

TEST(RelayParser, RefusesTransferEncodingThatIsNoListOfCodings) {
    for (auto value : {"chunked:", "chunked\"", "chunked/", "gzip chunked", "chunked, (x)"}) {
        SCOPED_TRACE(value);
        RelayParser<false> p;
        const auto wire =
            std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: ") + value + "\r\n\r\n0\r\n\r\n";
        error_code ec;
        p.put(asio::const_buffer(wire.data(), wire.size()), ec);
        EXPECT_EQ(ec, http::error::bad_transfer_encoding) << ec.message();
    }
    // Parameters after a coding are allowed; chunked must come last.
    RelayParser<false> params;
    error_code ec;
    const std::string wire =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n0\r\n\r\n";
    params.put(asio::const_buffer(wire.data(), wire.size()), ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(params.chunked());
    EXPECT_TRUE(params.is_done());
}

TEST(RelayParser, ChunkExtensionsAreSkippedNotRead) {
    // Beast refuses "5;" (an empty extension name); the extensions are
    // dropped anyway, since we write our own chunk framing upstream.
    RelayParser<true> p;
    error_code ec;
    const std::string wire =
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n";
    p.put(asio::const_buffer(wire.data(), wire.size()), ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(p.is_done());
    EXPECT_EQ(p.piece_bytes(), 5u);
    // A control byte in an extension still is an error.
    EXPECT_EQ(request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5;a\x01\r\nhello\r\n0\r\n\r\n"),
              http::error::bad_chunk_extension);
    // So is a chunk-size line without its CR.
    EXPECT_EQ(request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\nhello\r\n0\r\n\r\n"),
              http::error::bad_chunk);
}

// The views of a head point into memory of the parser's own: the caller's
// buffer may move between reads (flat_buffer does) before the head is
// refused, and the log still reads the method and target.
TEST(RelayParser, StartLineOfAHeadRefusedLaterOutlivesTheCallersBuffer) {
    RelayParser<true> p;
    p.header_limit(64);
    error_code ec;
    std::string first = "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n";
    EXPECT_EQ(p.put(asio::const_buffer(first.data(), first.size()), ec), 0u);
    EXPECT_EQ(ec, http::error::need_more);
    std::string more = first + "X-Long: " + std::string(64, 'x') + "\r\n";
    std::fill(first.begin(), first.end(), '#');  // the old buffer is gone
    p.put(asio::const_buffer(more.data(), more.size()), ec);
    EXPECT_EQ(ec, http::error::header_limit);
    std::fill(more.begin(), more.end(), '#');
    EXPECT_EQ(p.head().method_string(), "POST");
    EXPECT_EQ(p.head().target(), "/v1/chat/completions");
}

TEST(RelayParser, ChunkSizeLineHasABound) {
    RelayParser<true> p;
    error_code ec;
    const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    auto used = p.put(asio::const_buffer(head.data(), head.size()), ec);
    ASSERT_FALSE(ec);
    ASSERT_EQ(used, head.size());
    // An extension that never ends is refused rather than buffered.
    const std::string line = "5;" + std::string(5000, 'x');
    p.put(asio::const_buffer(line.data(), line.size()), ec);
    EXPECT_EQ(ec, http::error::bad_chunk);
    RelayParser<true> q;
    q.put(asio::const_buffer(head.data(), head.size()), ec);
    const std::string shorter = "5;" + std::string(100, 'x');
    EXPECT_EQ(q.put(asio::const_buffer(shorter.data(), shorter.size()), ec), 0u);
    EXPECT_EQ(ec, http::error::need_more) << "a line still arriving";
}

TEST(RelayParserVsBeast, Requests) {
    compare_all<true>({
        "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        "Content-Length: 5\r\nConnection: keep-alive, Upgrade\r\n\r\nhello",
        "GET / HTTP/1.0\r\nHost:  b \r\nConnection: keep-alive\r\n\r\n",
        // Longer than the 16 bytes the value scan takes at a time.
        "GET /long HTTP/1.1\r\nUser-Agent: a-client/1.0 (with a comment that runs on)\r\n\r\n",
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        "0\r\nX-T: 1\r\n\r\n",
        "PUT /p HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhiGET /next "
        "HTTP/1.1\r\nHost: a\r\n\r\n",
    });
}

TEST(RelayParserVsBeast, Responses) {
    compare_all<false>({
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        "\r\n3\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody-to-eof",
        "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    });
}

// Messages put together from random pieces, several faults at once; a fixed
// seed, so a failure reproduces.
TEST(RelayParserVsBeast, RandomMessages) {
    std::mt19937 rng(20261126);
    const auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
    const std::vector<std::string> starts = {"POST /v1/chat/completions HTTP/1.1\r\n",
                                             "GET / HTTP/1.0\r\n",
                                             "GET /a?b=c HTTP/1.1\r\n",
                                             "PUT  / HTTP/1.1\r\n",
                                             "GET / HTTP/1.2\r\n",
                                             "GET / HTTP/1.1\n",
                                             "G@T / HTTP/1.1\r\n"};
    const std::vector<std::string> names = {
        "Host",   "Content-Length",  "Transfer-Encoding", "Connection", "X-A", "Via",
        "Expect", "x-forwarded-for", "Bad Name",          "",           "Te"};
    const std::vector<std::string> values = {"a",
                                             "5",
                                             "0",
                                             "chunked",
                                             "gzip, chunked",
                                             "close",
                                             "keep-alive",
                                             "5, 5",
                                             "4, 5",
                                             "",
                                             "  spaced  ",
                                             "tab\there",
                                             "x\x01y",
                                             "obs\x80text",
                                             "a,\r\n b",
                                             std::string(40, 'v')};
    const std::vector<std::string> bodies = {"",
                                             "hello",
                                             "5\r\nhello\r\n0\r\n\r\n",
                                             "3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
                                             "zz\r\n",
                                             "0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
                                             "5\r\nhel"};
    int compared = 0, failures = 0;
    for (int i = 0; i < 4000; ++i) {
        std::string wire = pick(starts);
        const int fields = static_cast<int>(rng() % 6);
        for (int f = 0; f < fields; ++f)
            wire += pick(names) + ":" + (rng() % 2 ? " " : "") + pick(values) + "\r\n";
        wire += "\r\n" + pick(bodies);
        ++compared;
        const auto theirs = beast_parse<true>(wire, false);
        const auto ours = our_parse<true>(wire, false, wire.size() + 1);
        if (!(ours == theirs) && allowed_difference(wire, ours, theirs).empty() && ++failures <= 20)
            ADD_FAILURE() << "input: " << printable(wire) << "\n  ours:  " << ours.describe()
                          << "\n  Beast: " << theirs.describe();
        const auto bytewise = our_parse<true>(wire, false, 1 + rng() % 7);
        if (!(bytewise == ours) && ++failures <= 20)
            ADD_FAILURE() << "input: " << printable(wire) << "\n  whole:   " << ours.describe()
                          << "\n  pieces: " << bytewise.describe();
    }
    EXPECT_EQ(failures, 0) << "of " << compared << " messages";
}

TEST(RelayParserVsBeast, ResponsesToHead) {
    compare_all<false>({"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"}, true);
}

}  // namespace
