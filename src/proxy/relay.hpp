#pragma once
// The body loop, both directions: what one side sends goes to the other as it
// is read (SSE tokens are not held back), re-framed when the framing differs,
// with back-pressure from the receiver and a deadline on every read and
// write. No I/O decision is made here beyond the loop: the exchange turns how
// it ended into an outcome.

#include "deepseek_gateway/net/stream.hpp"
#include "deepseek_gateway/proxy/forward.hpp"
#include "proxy/deadline.hpp"
#include "proxy/relay_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <cstdint>
#include <memory_resource>
#include <span>
#include <string_view>
#include <vector>

namespace dsgw::proxy {

// The writes of one exchange: the buffer list and the chunk-size line.
struct WriteList {
    std::vector<boost::asio::const_buffer> iov;
    char chunk_line[24];

    // Appends the parser's body pieces, framed as `framing` asks (a chunk per
    // read under chunked, and the last chunk when `last`).
    void add_body(Framing framing, bool last, std::span<const boost::asio::const_buffer> pieces,
                  std::size_t bytes);
};

// Where a body comes from: a stream, its read buffer (and read size, which
// grows while reads fill it), and the deadline of a read.
struct BodySource {
    net::Stream& stream;
    boost::beast::flat_buffer& buf;
    std::size_t& read_size;
    int* left;  // what a plain read leaves in the kernel (the upstream side)
    Phase phase;
    Clock::duration timeout;
};

// Where it goes, and the deadline of a write that does not go at once.
struct BodySink {
    net::Stream& stream;
    Phase phase;
    Clock::duration timeout;
};

// How the loop ended.
struct RelayEnd {
    enum class Step : std::uint8_t { done, parse, read, write } step = Step::done;
    boost::system::error_code ec;
    bool timeout = false;        // the read's or the write's deadline passed
    bool sent_any = false;       // at least one write went (the head, when `first` was given)
    std::uint64_t consumed = 0;  // source bytes parsed
    std::uint64_t written = 0;   // bytes written to the sink
};

// Where relay_at_once() stopped, for relay_body() to go on from.
struct RelayStart {
    bool pending = false;  // a write began and did not end at once
    std::size_t used = 0;  // the source bytes it carries (consumed once it ends)
    std::size_t done = 0;  // what of it went
};

// Moves the body `parser` is reading from `from` to `to`, re-framed as
// `framing`, beginning with what `from.buf` already holds and, in the first
// write, `first` (a response head; empty for a request body). Ends when the
// parser is done, or at the first error; an end of stream completes a body
// that runs to the close.
//
// relay_at_once() is the first step, with no coroutine: it parses what is
// buffered and writes it at once. True when that ended the relay (the usual
// case for a small JSON answer, whose body came with its head), `end` saying
// how; else relay_body() goes on from `start`, reading and writing with the
// deadlines of `from` and `to`.
template <bool isRequest>
bool relay_at_once(RelayParser<isRequest>& parser, BodySource& from, BodySink& to, Framing framing,
                   std::string_view first, WriteList& out, RelayEnd& end, RelayStart& start);

template <bool isRequest>
net::Task<RelayEnd> relay_body(RelayParser<isRequest>& parser, BodySource from, BodySink to,
                               Framing framing, Deadline& deadline, WriteList& out, RelayEnd end,
                               RelayStart start);

}  // namespace dsgw::proxy
