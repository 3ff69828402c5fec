#pragma once
// A parsed HTTP/1.x message head as the proxy sees it: the start line and the
// header fields in the order received, each a view into one copy of the head's
// bytes. The copy and the field list live in the memory resource given by the
// parser (the session's per-exchange arena), so a head costs no heap
// allocation in the steady state. Filled by RelayParser (src/proxy).

#include <ostream>  // before Boost's string_view, which verb.hpp uses

#include <boost/beast/http/verb.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <span>
#include <string_view>
#include <vector>

namespace dsgw::proxy {

namespace http = boost::beast::http;

// The header names the proxy acts on, recognised whatever their case;
// every other name is `other`.
enum class Known : std::uint8_t {
    other,
    authorization,
    connection,
    content_length,
    content_type,
    expect,
    host,
    keep_alive,
    proxy_connection,
    te,
    trailer,
    transfer_encoding,
    upgrade,
    via,
    x_forwarded_for,
    x_forwarded_host,
    x_forwarded_proto,
};

// Which Known name `name`, a token (RFC 9110 §5.6.2), is (ASCII
// case-insensitive).
Known classify(std::string_view name);

struct Field {
    std::string_view name;   // as received
    std::string_view value;  // without surrounding whitespace
    Known known = Known::other;
    // The whole line as received, from name.data(), CRLF included: a field
    // passed on unchanged is copied as it came.
    std::uint32_t line_size = 0;
};

class Head {
public:
    explicit Head(std::pmr::memory_resource* mr) : fields_(mr) {}

    // Request line (requests only).
    http::verb method() const { return method_; }
    std::string_view method_string() const { return method_string_; }
    std::string_view target() const { return target_; }
    // Status line (responses only).
    unsigned result_int() const { return status_; }
    std::string_view reason() const { return reason_; }
    // 10 or 11.
    unsigned version() const { return version_; }
    // Bytes of the head as received, up to and including the blank line.
    std::size_t wire_size() const { return wire_size_; }

    std::span<const Field> fields() const { return fields_; }
    auto begin() const { return fields_.begin(); }
    auto end() const { return fields_.end(); }

    // The first value of the field, or "" when there is none.
    std::string_view operator[](Known k) const;
    std::size_t count(Known k) const;
    // By any name, ASCII case-insensitive: the first value, or "".
    std::string_view value(std::string_view name) const;

private:
    template <bool>
    friend class RelayParser;

    std::pmr::vector<Field> fields_;
    std::string_view method_string_;
    std::string_view target_;
    std::string_view reason_;
    std::size_t wire_size_ = 0;
    http::verb method_ = http::verb::unknown;
    unsigned status_ = 0;
    unsigned version_ = 11;
};

using RequestHead = Head;
using ResponseHead = Head;

}  // namespace dsgw::proxy
