// The body relay loop (both directions) and body framing.

#include "proxy/relay.hpp"

#include "deepseek_gateway/app/runtime.hpp"
#include "proxy/client_side.hpp"

#include <boost/asio/ssl/error.hpp>

#include <cstdio>

namespace dsgw::proxy {

namespace {
constexpr std::string_view kLastChunk = "0\r\n\r\n";
constexpr std::string_view kCrlf = "\r\n";
}  // namespace

void WriteList::add_body(Framing framing, bool last,
                         std::span<const boost::asio::const_buffer> pieces, std::size_t bytes) {
    if (framing == Framing::chunked) {
        if (bytes > 0) {
            auto n = std::snprintf(chunk_line, sizeof chunk_line, "%zx\r\n", bytes);
            iov.emplace_back(chunk_line, static_cast<std::size_t>(n));
            iov.insert(iov.end(), pieces.begin(), pieces.end());
            iov.emplace_back(kCrlf.data(), kCrlf.size());
        }
        if (last) iov.emplace_back(kLastChunk.data(), kLastChunk.size());
    } else if (framing != Framing::none) {
        iov.insert(iov.end(), pieces.begin(), pieces.end());
    }
}

net::Task<boost::system::error_code> write_to_client(
    ClientSide& client, const std::vector<boost::asio::const_buffer>& iov, std::uint64_t& counted) {
    boost::system::error_code ec;
    std::size_t done = 0;
    const bool over = client.stream.write_now(iov, ec, done);
    counted += done;
    if (!over) {
        client.deadline.arm(Phase::client_write, client.rt->config->limits.client_idle);
        auto [wec, n] = co_await client.stream.write_rest(iov, done);
        client.deadline.disarm();
        counted += n;
        ec = wec;
    }
    co_return ec;
}

namespace {

// One step of the loop: parse what `from.buf` holds, frame it (after `first`)
// and try to write it at once. False on a parse error (`end` says so); else
// `over` tells whether the write ended (all of it went, or `wec`), `used` is
// what was parsed and `done` what was written.
template <bool isRequest>
bool parse_and_write(RelayParser<isRequest>& parser, BodySource& from, BodySink& to,
                     Framing framing, std::string_view first, WriteList& out, RelayEnd& end,
                     std::size_t& used, bool& over, boost::system::error_code& wec,
                     std::size_t& done) {
    parser.clear_pieces();
    boost::system::error_code ec;
    used = parse_buffered(parser, from.buf, ec);
    if (ec) {
        end.step = RelayEnd::Step::parse;
        end.ec = ec;
        return false;
    }
    out.iov.clear();
    if (!first.empty()) out.iov.emplace_back(first.data(), first.size());
    out.add_body(framing, parser.is_done(), parser.pieces(), parser.piece_bytes());
    done = 0;
    over = to.stream.write_now(out.iov, wec, done);
    end.written += done;
    return true;
}

// After a step's write ended: its input is consumed. True when the relay
// is over: the write failed, or the body is complete.
template <bool isRequest>
bool after_write(RelayParser<isRequest>& parser, BodySource& from, const WriteList& out,
                 RelayEnd& end, std::size_t used, const boost::system::error_code& wec) {
    from.buf.consume(used);
    end.consumed += used;
    if (wec) {
        end.step = RelayEnd::Step::write;
        end.ec = wec;
        return true;
    }
    if (!out.iov.empty()) end.sent_any = true;
    if (!parser.is_done()) return false;
    parser.clear_pieces();
    return true;
}

}  // namespace

template <bool isRequest>
bool relay_at_once(RelayParser<isRequest>& parser, BodySource& from, BodySink& to, Framing framing,
                   std::string_view first, WriteList& out, RelayEnd& end, RelayStart& start) {
    parser.eager(true);
    std::size_t used = 0;
    std::size_t done = 0;
    bool over = false;
    boost::system::error_code wec;
    if (!parse_and_write(parser, from, to, framing, first, out, end, used, over, wec, done))
        return true;
    if (!over) {
        start = RelayStart{true, used, done};
        return false;
    }
    return after_write(parser, from, out, end, used, wec);
}

template <bool isRequest>
net::Task<RelayEnd> relay_body(RelayParser<isRequest>& parser, BodySource from, BodySink to,
                               Framing framing, Deadline& deadline, WriteList& out, RelayEnd end,
                               RelayStart start) {
    for (;;) {
        if (!start.pending) {
            deadline.arm(from.phase, from.timeout);
            auto [rec, n] = co_await from.stream.read_some(from.buf, from.read_size, from.left);
            end.timeout = deadline.timed_out(from.phase);
            deadline.disarm();
            const bool ended =
                rec == boost::asio::error::eof || rec == boost::asio::ssl::error::stream_truncated;
            if (ended && parser.need_eof()) {
                boost::system::error_code eec;
                parser.put_eof(eec);  // a body delimited by the close ends here
            } else if (rec) {
                end.step = RelayEnd::Step::read;
                end.ec = rec;
                co_return end;
            } else {
                from.buf.commit(n);
                adapt_read_size(n, from.read_size);
            }
            std::size_t used = 0;
            std::size_t done = 0;
            bool over = false;
            boost::system::error_code wec;
            if (!parse_and_write(parser, from, to, framing, {}, out, end, used, over, wec, done))
                co_return end;
            if (over) {
                if (after_write(parser, from, out, end, used, wec)) co_return end;
                continue;
            }
            start = RelayStart{true, used, done};
        }
        // The rest of a write that did not go at once: back-pressure.
        start.pending = false;
        deadline.arm(to.phase, to.timeout);
        auto [wec, n] = co_await to.stream.write_rest(out.iov, start.done);
        end.timeout = deadline.timed_out(to.phase);
        deadline.disarm();
        end.written += n;
        if (after_write(parser, from, out, end, start.used, wec)) co_return end;
    }
}

#define DSGW_RELAY(isRequest)                                                                    \
    template bool relay_at_once<isRequest>(RelayParser<isRequest>&, BodySource&, BodySink&,      \
                                           Framing, std::string_view, WriteList&, RelayEnd&,     \
                                           RelayStart&);                                         \
    template net::Task<RelayEnd> relay_body<isRequest>(RelayParser<isRequest>&, BodySource,      \
                                                       BodySink, Framing, Deadline&, WriteList&, \
                                                       RelayEnd, RelayStart);
DSGW_RELAY(true)
DSGW_RELAY(false)
#undef DSGW_RELAY

}  // namespace dsgw::proxy
