#pragma once
// The HTTP/1.x parser of the relay. It keeps the message head (head.hpp) and
// hands the body out as views into the caller's input buffer instead of
// copying it, so a byte read from one side is written to the other without an
// intermediate buffer. The views stay valid until the caller consumes the
// input it passed to put(). The head and the list of pieces are allocated
// from the memory resource given at construction (the session's per-exchange
// arena).
//
// It accepts what Beast's basic_parser accepts, with the same error codes
// (boost::beast::http::error), except that obsolete line folding is refused
// (RFC 9112 §5.2 allows either). Our own because Beast's parser with its
// basic_fields was 39% of the gateway's instructions per request: this one
// finds the end of the head once, copies it once and parses it in one pass.

#include "deepseek_gateway/proxy/head.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <memory_resource>
#include <optional>
#include <vector>

namespace dsgw::proxy {

template <bool isRequest>
class RelayParser {
public:
    using error_code = boost::system::error_code;

    explicit RelayParser(std::pmr::memory_resource* mr = std::pmr::get_default_resource())
        : mr_(mr), head_(mr), pieces_(mr) {}
    // The head's copy goes back to the resource (a no-op for the session's
    // arena, which releases everything at the end of the exchange).
    ~RelayParser() {
        if (copy_) mr_->deallocate(copy_, copy_size_, 1);
        if (line_copy_) mr_->deallocate(line_copy_, line_copy_size_, 1);
    }
    RelayParser(const RelayParser&) = delete;
    RelayParser& operator=(const RelayParser&) = delete;

    Head& head() { return head_; }
    const Head& head() const { return head_; }

    // Limits, set before the first put(). The head (start line, fields and
    // the blank line) must fit in header_limit bytes; the body (decoded, for
    // chunked) in body_limit, when there is one.
    void header_limit(std::uint32_t n) { header_limit_ = n; }
    void body_limit(std::optional<std::uint64_t> n) { body_limit_ = n; }
    // Without eager, put() stops after the head, so the caller can look at it
    // before any body byte is produced.
    void eager(bool v) { eager_ = v; }
    bool eager() const { return eager_; }
    // A response without a body whatever its head says (to a HEAD request).
    void skip(bool v) { skip_body_ = v; }

    // Parses what it can of `in`. Returns the bytes used; the caller keeps
    // the rest for the next call, with more input after it. need_more when
    // it can go no further without more input.
    std::size_t put(boost::asio::const_buffer in, error_code& ec);
    // The peer closed: ends a body that runs to the end of the connection.
    void put_eof(error_code& ec);

    bool is_header_done() const { return state_ != State::head; }
    bool is_done() const { return state_ == State::done; }
    // The body ends when the connection closes (a response with neither
    // Content-Length nor chunked); stays true once it has.
    bool need_eof() const { return to_eof_; }
    bool chunked() const { return chunked_; }
    std::optional<std::uint64_t> content_length() const {
        return has_length_ ? std::optional<std::uint64_t>(length_) : std::nullopt;
    }
    // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
    // "Connection: keep-alive"; never with a body that runs to EOF.
    bool keep_alive() const;

    // Body bytes produced since the last clear_pieces().
    const std::pmr::vector<boost::asio::const_buffer>& pieces() const { return pieces_; }
    std::size_t piece_bytes() const { return piece_bytes_; }
    void clear_pieces() {
        pieces_.clear();
        piece_bytes_ = 0;
    }

private:
    enum class State : std::uint8_t {
        head,
        body,        // Content-Length bytes left: left_
        chunk_size,  // a chunk-size line is next
        chunk_data,  // chunk bytes left: left_
        chunk_crlf,  // the CRLF after a chunk's data
        trailer,     // after the last chunk: trailer fields, then CRLF
        to_eof,
        done,
    };

    bool parse_head(const char*& p, const char* end, error_code& ec);
    const char* find_section_end(const char* p, const char* end, error_code& ec);
    bool parse_start_line(const char*& q, const char* nl, error_code& ec);
    bool on_field(const Field& f, error_code& ec);
    void finish_head(error_code& ec);
    bool parse_chunk_size(const char*& p, const char* end, error_code& ec);
    bool parse_trailer(const char*& p, const char* end, error_code& ec);
    bool take_body_bytes(std::uint64_t n, error_code& ec);
    void add(const char* data, std::size_t n);

    std::pmr::memory_resource* mr_;
    Head head_;
    std::pmr::vector<boost::asio::const_buffer> pieces_;
    std::size_t piece_bytes_ = 0;
    std::optional<std::uint64_t> body_limit_;
    std::uint64_t length_ = 0;  // Content-Length
    std::uint64_t left_ = 0;    // of the body or the current chunk
    std::uint64_t body_seen_ = 0;
    char* copy_ = nullptr;  // of the head, in mr_
    std::size_t copy_size_ = 0;
    char* line_copy_ = nullptr;  // of the start line of a head still arriving
    std::size_t line_copy_size_ = 0;
    std::size_t scanned_ = 0;  // head bytes known to hold no end of head
    std::uint32_t header_limit_ = 8192;
    State state_ = State::head;
    bool eager_ = true;
    bool skip_body_ = false;
    bool has_length_ = false;
    bool chunked_ = false;
    bool has_te_ = false;       // a Transfer-Encoding field was seen
    bool te_chunked_ = false;  // chunked named in a Transfer-Encoding, last or not
    bool conn_close_ = false;
    bool conn_keep_alive_ = false;
    bool to_eof_ = false;
};

extern template class RelayParser<true>;
extern template class RelayParser<false>;

// Feeds the bytes buffered in `in` to the parser without consuming them (body
// views point into them). Returns how many bytes the parser used; the caller
// consumes that many once it is done with the pieces. need_more is not an
// error here.
template <bool isRequest>
std::size_t parse_buffered(RelayParser<isRequest>& p, const boost::beast::flat_buffer& in,
                           boost::system::error_code& ec) {
    ec = {};
    if (p.is_done()) return 0;
    const auto data = in.data();
    std::size_t used = p.put(boost::asio::const_buffer(data.data(), data.size()), ec);
    if (ec == boost::beast::http::error::need_more) ec = {};
    return used;
}

}  // namespace dsgw::proxy
