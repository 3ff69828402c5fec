#pragma once
// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2)
// that a TCP load balancer sends before the client's first byte, carrying the
// client's address. Pure: the caller reads bytes, this says whether they hold
// a whole header, a prefix of one, or garbage.
//
// Accepted:
// - v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", the same with TCP6, and
//   "PROXY UNKNOWN[ anything]\r\n"; single spaces; at most 107 bytes.
// - v2: the 12-byte signature, version 2, command LOCAL or PROXY; for PROXY,
//   family INET or INET6 over STREAM (TCP), or UNSPEC; TLVs are checked to
//   fit their block and otherwise skipped; the block at most
//   kProxyV2MaxPayload bytes.
// Refused as invalid: everything else, including UDP and UNIX families (this
// gateway serves TCP), v1 lines with bad addresses or ports, and any prefix
// that cannot become a valid header: the first byte that does not fit says
// `invalid` without waiting for more input.

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace dsgw::access {

inline constexpr std::size_t kProxyV1MaxBytes = 107;     // including CRLF
inline constexpr std::size_t kProxyV2HeaderBytes = 16;   // signature .. length
inline constexpr std::size_t kProxyV2MaxPayload = 4096;  // addresses + TLVs
// A buffer this large always holds a whole valid header (to peek into).
inline constexpr std::size_t kProxyHeaderMaxBytes = kProxyV2HeaderBytes + kProxyV2MaxPayload;

enum class ProxyStatus { need_more, done, invalid };

struct ProxyAddress {
    boost::asio::ip::address address;  // normalized (::ffff:a.b.c.d -> a.b.c.d)
    std::uint16_t port = 0;
};

struct ProxyHeader {
    ProxyStatus status = ProxyStatus::need_more;
    // done: the length of the header; the bytes after it are the client's
    // (TLS or HTTP) and must be kept.
    std::size_t consumed = 0;
    // need_more: the input must grow to at least this many bytes before the
    // answer can change. Reading exactly (min_total - data.size()) more bytes
    // never reads past the end of a header.
    std::size_t min_total = 0;
    int version = 0;        // 1 or 2, once the signature says so
    bool is_local = false;  // v2 LOCAL: the proxy's own connection (a health check)
    // done, PROXY over TCP4/TCP6: the client (source) and the address it
    // connected to (destination). Empty for v2 LOCAL, v2 UNSPEC and v1
    // UNKNOWN: then the socket's own addresses are the real ones.
    std::optional<ProxyAddress> source;
    std::optional<ProxyAddress> destination;
    const char* error = nullptr;  // invalid: why, for a log line (static text)
};

// Parses the start of a connection's input.
ProxyHeader parse_proxy_header(std::span<const std::uint8_t> data);

}  // namespace dsgw::access
