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
                         const std::pmr::vector<boost::asio::const_buffer>& pieces,
                         std::size_t bytes) {
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

template <bool isRequest>
net::Task<RelayEnd> relay_body(RelayParser<isRequest>& parser, BodySource from, BodySink to,
                               Framing framing, std::string_view first, Deadline& deadline,
                               WriteList& out) {
    RelayEnd end;
    parser.eager(true);
    bool with_first = !first.empty();
    for (;;) {
        parser.clear_pieces();
        boost::system::error_code ec;
        const auto used = parse_buffered(parser, from.buf, ec);
        if (ec) {
            end.step = RelayEnd::Step::parse;
            end.ec = ec;
            co_return end;
        }
        out.iov.clear();
        if (with_first) out.iov.emplace_back(first.data(), first.size());
        out.add_body(framing, parser.is_done(), parser.pieces(), parser.piece_bytes());
        // A write that goes at once costs no coroutine (Stream::write_now()).
        boost::system::error_code wec;
        std::size_t done = 0;
        const bool over = to.stream.write_now(out.iov, wec, done);
        end.written += done;
        if (!over) {
            deadline.arm(to.phase, to.timeout);
            auto [rec, n] = co_await to.stream.write_rest(out.iov, done);
            end.timeout = deadline.timed_out(to.phase);
            deadline.disarm();
            end.written += n;
            wec = rec;
        }
        from.buf.consume(used);
        end.consumed += used;
        if (wec) {
            end.step = RelayEnd::Step::write;
            end.ec = wec;
            co_return end;
        }
        if (!out.iov.empty()) end.sent_any = true;
        with_first = false;
        if (parser.is_done()) break;

        deadline.arm(from.phase, from.timeout);
        auto [rec, n] = co_await from.stream.read_some(from.buf, from.read_size, from.left);
        end.timeout = deadline.timed_out(from.phase);
        deadline.disarm();
        const bool ended =
            rec == boost::asio::error::eof || rec == boost::asio::ssl::error::stream_truncated;
        if (ended && parser.need_eof()) {
            boost::system::error_code eec;
            parser.put_eof(eec);  // a body delimited by the close ends here
            continue;
        }
        if (rec) {
            end.step = RelayEnd::Step::read;
            end.ec = rec;
            co_return end;
        }
        from.buf.commit(n);
        adapt_read_size(n, from.read_size);
    }
    parser.clear_pieces();
    co_return end;
}

template net::Task<RelayEnd> relay_body<true>(RelayParser<true>&, BodySource, BodySink, Framing,
                                              std::string_view, Deadline&, WriteList&);
template net::Task<RelayEnd> relay_body<false>(RelayParser<false>&, BodySource, BodySink, Framing,
                                               std::string_view, Deadline&, WriteList&);

}  // namespace dsgw::proxy
