#pragma once
// A Beast parser for relaying: it keeps the message header, and hands the body
// out as views into the caller's input buffer instead of copying it, so a byte
// read from one side is written to the other without an intermediate buffer.
// The views stay valid until the caller consumes the input it passed to put().
// The head's fields and the list of pieces are allocated from the memory
// resource given at construction (the session's per-exchange arena).

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/message.hpp>

#include "deepseek_gateway/proxy/forward.hpp"

#include <memory_resource>
#include <vector>

namespace dsgw::proxy {

namespace http = boost::beast::http;

template <bool isRequest>
class RelayParser final : public http::basic_parser<isRequest> {
public:
    using header_type = http::header<isRequest, Fields>;

    explicit RelayParser(std::pmr::memory_resource* mr = std::pmr::get_default_resource())
        : head_(Fields::allocator_type(mr)), pieces_(mr) {}

    header_type& head() { return head_; }
    const header_type& head() const { return head_; }

    // Body bytes produced since the last clear_pieces().
    const std::pmr::vector<boost::asio::const_buffer>& pieces() const { return pieces_; }
    std::size_t piece_bytes() const { return piece_bytes_; }
    void clear_pieces() {
        pieces_.clear();
        piece_bytes_ = 0;
    }

private:
    using string_view = boost::beast::string_view;
    using error_code = boost::beast::error_code;

    void add(string_view body) {
        if (body.empty()) return;
        // Adjacent views (a Content-Length body read in one go) merge.
        if (!pieces_.empty()) {
            auto& last = pieces_.back();
            if (static_cast<const char*>(last.data()) + last.size() == body.data()) {
                last = boost::asio::const_buffer(last.data(), last.size() + body.size());
                piece_bytes_ += body.size();
                return;
            }
        }
        pieces_.emplace_back(body.data(), body.size());
        piece_bytes_ += body.size();
    }

    void on_request_impl(http::verb method, string_view method_str, string_view target,
                         int version, error_code& ec) override {
        ec = {};
        if constexpr (isRequest) {
            head_.target(target);
            if (method != http::verb::unknown)
                head_.method(method);
            else
                head_.method_string(method_str);
            head_.version(static_cast<unsigned>(version));
        }
    }
    void on_response_impl(int code, string_view reason, int version, error_code& ec) override {
        ec = {};
        if constexpr (!isRequest) {
            head_.result(static_cast<unsigned>(code));
            head_.reason(reason);
            head_.version(static_cast<unsigned>(version));
        }
    }
    void on_field_impl(http::field name, string_view name_string, string_view value,
                       error_code& ec) override {
        ec = {};
        head_.insert(name, name_string, value);
    }
    void on_header_impl(error_code& ec) override { ec = {}; }
    void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code& ec) override {
        ec = {};
    }
    std::size_t on_body_impl(string_view body, error_code& ec) override {
        ec = {};
        add(body);
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, string_view, error_code& ec) override { ec = {}; }
    std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
        ec = {};
        add(body);
        return body.size();
    }
    void on_finish_impl(error_code& ec) override { ec = {}; }

    header_type head_;
    std::pmr::vector<boost::asio::const_buffer> pieces_;
    std::size_t piece_bytes_ = 0;
};

// Feeds the bytes buffered in `in` to the parser without consuming them (body
// views point into them). Returns how many bytes the parser used; the caller
// consumes that many once it is done with the pieces. need_more is not an
// error here.
template <bool isRequest>
std::size_t parse_buffered(RelayParser<isRequest>& p, const boost::beast::flat_buffer& in,
                           boost::beast::error_code& ec) {
    ec = {};
    std::size_t used = 0;
    const auto data = in.data();
    const char* base = static_cast<const char*>(data.data());
    while (!p.is_done() && used < data.size()) {
        std::size_t n = p.put(boost::asio::const_buffer(base + used, data.size() - used), ec);
        used += n;
        if (ec == http::error::need_more) {
            ec = {};
            break;
        }
        if (ec) break;
        if (n == 0) break;
        // Without eager parsing a header stops the loop, so the caller can
        // look at it before any body byte is produced.
        if (!p.eager() && p.is_header_done()) break;
    }
    return used;
}

}  // namespace dsgw::proxy
