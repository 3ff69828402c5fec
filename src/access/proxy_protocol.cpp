#include "deepseek_gateway/access/proxy_protocol.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

namespace dsgw::access {

namespace ip = boost::asio::ip;

namespace {

constexpr std::uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                           0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Signature = "PROXY ";
constexpr std::size_t kV1MinBytes = 15;  // "PROXY UNKNOWN\r\n"

// v2 byte 13: address family (high nibble) and transport (low nibble).
constexpr std::uint8_t kUnspec = 0x00, kTcp4 = 0x11, kUdp4 = 0x12, kTcp6 = 0x21, kUdp6 = 0x22,
                       kUnixStream = 0x31, kUnixDgram = 0x32;

constexpr const char* kNotProxy = "not a PROXY protocol header";

ProxyHeader invalid(int version, const char* why) {
    ProxyHeader h;
    h.status = ProxyStatus::invalid;
    h.version = version;
    h.error = why;
    return h;
}

ProxyHeader need_more(int version, std::size_t min_total) {
    ProxyHeader h;
    h.version = version;
    h.min_total = min_total;
    return h;
}

// --- version 1 -----------------------------------------------------------------

std::optional<std::uint16_t> v1_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

std::optional<ip::address> v1_address(std::string_view s, bool v6) {
    boost::system::error_code ec;
    if (!v6) {
        auto a = ip::make_address_v4(std::string(s), ec);
        if (ec) return std::nullopt;
        return ip::address(a);
    }
    if (s.find('%') != std::string_view::npos) return std::nullopt;
    auto a = ip::make_address_v6(std::string(s), ec);
    if (ec) return std::nullopt;
    if (a.is_v4_mapped()) return ip::address(ip::make_address_v4(ip::v4_mapped, a));
    return ip::address(a);
}

// Could `token` (the text after "PROXY ", possibly cut short) still begin a
// valid line? Lets garbage be refused before the CRLF arrives.
bool v1_prefix_plausible(std::string_view token) {
    for (std::string_view proto : {"TCP4 ", "TCP6 "}) {
        auto k = std::min(token.size(), proto.size());
        if (token.substr(0, k) != proto.substr(0, k)) continue;
        auto rest = token.substr(k);
        return std::all_of(rest.begin(), rest.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                   c == '.' || c == ':' || c == ' ' || c == '\r';
        });
    }
    constexpr std::string_view unknown = "UNKNOWN";
    auto k = std::min(token.size(), unknown.size());
    if (token.substr(0, k) != unknown.substr(0, k)) return false;
    return token.size() == k || token[k] == ' ' || token[k] == '\r';
}

// `line`: the header without its CRLF.
ProxyHeader parse_v1_line(std::string_view line) {
    std::string_view tokens[7];
    std::size_t count = 0;
    while (count < 7) {
        auto sp = line.find(' ');
        tokens[count++] = line.substr(0, sp);
        if (sp == std::string_view::npos) break;
        line.remove_prefix(sp + 1);
    }
    // tokens[0] is "PROXY": the signature was checked byte by byte.
    if (count >= 2 && tokens[1] == "UNKNOWN") {
        ProxyHeader h;
        h.status = ProxyStatus::done;
        h.version = 1;
        return h;
    }
    if (count < 2 || (tokens[1] != "TCP4" && tokens[1] != "TCP6"))
        return invalid(1, "PROXY v1: protocol must be TCP4, TCP6 or UNKNOWN");
    if (count != 6) return invalid(1, "PROXY v1: expected 4 single-space separated fields");
    const bool v6 = tokens[1] == "TCP6";
    auto src = v1_address(tokens[2], v6);
    auto dst = v1_address(tokens[3], v6);
    if (!src || !dst)
        return invalid(1, v6 ? "PROXY v1: bad IPv6 address" : "PROXY v1: bad IPv4 address");
    auto sport = v1_port(tokens[4]);
    auto dport = v1_port(tokens[5]);
    if (!sport || !dport) return invalid(1, "PROXY v1: bad port");
    ProxyHeader h;
    h.status = ProxyStatus::done;
    h.version = 1;
    h.source = ProxyAddress{*src, *sport};
    h.destination = ProxyAddress{*dst, *dport};
    return h;
}

ProxyHeader parse_v1(std::span<const std::uint8_t> data) {
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    auto n = std::min(text.size(), kV1Signature.size());
    if (text.substr(0, n) != kV1Signature.substr(0, n)) return invalid(0, kNotProxy);

    const auto limit = std::min(text.size(), kProxyV1MaxBytes);
    for (std::size_t i = 0; i < limit; ++i) {
        const char c = text[i];
        if (c == '\r') {
            if (i + 1 == text.size()) break;  // LF may follow
            if (text[i + 1] != '\n') return invalid(1, "PROXY v1: CR not followed by LF");
            if (i + 2 > kProxyV1MaxBytes) break;
            auto h = parse_v1_line(text.substr(0, i));
            if (h.status == ProxyStatus::done) h.consumed = i + 2;
            return h;
        }
        if (c == '\n') return invalid(1, "PROXY v1: LF without CR");
        if (c < 0x20 || c > 0x7E) return invalid(1, "PROXY v1: byte that is not printable ASCII");
    }
    // The CRLF still to come must fit in 107 bytes.
    const std::size_t more = !text.empty() && text.back() == '\r' ? 1 : 2;
    if (text.size() + more > kProxyV1MaxBytes)
        return invalid(1, "PROXY v1: no CRLF within 107 bytes");
    if (text.size() > kV1Signature.size() && !v1_prefix_plausible(text.substr(kV1Signature.size())))
        return invalid(1, "PROXY v1: protocol must be TCP4, TCP6 or UNKNOWN");
    return need_more(text.size() >= kV1Signature.size() ? 1 : 0,
                     std::max(kV1MinBytes, text.size() + more));
}

// --- version 2 -----------------------------------------------------------------

std::uint16_t be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

ProxyAddress v2_address(const std::uint8_t* addr, std::size_t addr_len, const std::uint8_t* port) {
    ProxyAddress out;
    if (addr_len == 4) {
        ip::address_v4::bytes_type b;
        std::memcpy(b.data(), addr, 4);
        out.address = ip::address_v4(b);
    } else {
        ip::address_v6::bytes_type b;
        std::memcpy(b.data(), addr, 16);
        ip::address_v6 a(b);
        out.address =
            a.is_v4_mapped() ? ip::address(ip::make_address_v4(ip::v4_mapped, a)) : ip::address(a);
    }
    out.port = be16(port);
    return out;
}

bool v2_family_defined(std::uint8_t fam) {
    for (auto f : {kUnspec, kTcp4, kUdp4, kTcp6, kUdp6, kUnixStream, kUnixDgram})
        if (fam == f) return true;
    return false;
}

// Checks the byte of family and transport; nothing when it is acceptable.
const char* v2_family_error(std::uint8_t fam) {
    switch (fam) {
        case kUnspec:
        case kTcp4:
        case kTcp6:
            return nullptr;
        case kUdp4:
        case kUdp6:
            return "PROXY v2: UDP is not supported";
        case kUnixStream:
        case kUnixDgram:
            return "PROXY v2: UNIX sockets are not supported";
        default:
            return "PROXY v2: unknown address family or transport";
    }
}

ProxyHeader parse_v2(std::span<const std::uint8_t> data) {
    auto n = std::min(data.size(), sizeof kV2Signature);
    if (std::memcmp(data.data(), kV2Signature, n) != 0) return invalid(0, kNotProxy);

    bool local = false;
    if (data.size() > 12) {
        const std::uint8_t ver_cmd = data[12];
        if ((ver_cmd >> 4) != 2) return invalid(2, "PROXY v2: version must be 2");
        const std::uint8_t cmd = ver_cmd & 0x0F;
        if (cmd > 1) return invalid(2, "PROXY v2: command must be LOCAL or PROXY");
        local = cmd == 0;
    }
    if (data.size() > 13) {
        // LOCAL discards the address block, family included; the byte must
        // still be one the protocol defines.
        const std::uint8_t fam = data[13];
        if (const char* why = v2_family_error(fam); why && (!local || !v2_family_defined(fam)))
            return invalid(2, why);
    }
    if (data.size() < kProxyV2HeaderBytes)
        return need_more(data.size() >= sizeof kV2Signature ? 2 : 0, kProxyV2HeaderBytes);

    const std::uint8_t fam = data[13];
    const std::size_t len = be16(&data[14]);
    if (len > kProxyV2MaxPayload) return invalid(2, "PROXY v2: header longer than 4096 bytes");
    std::size_t addr_len = 0;
    if (!local && fam == kTcp4) addr_len = 12;
    if (!local && fam == kTcp6) addr_len = 36;
    if (len < addr_len) return invalid(2, "PROXY v2: address block too short for its family");
    const std::size_t total = kProxyV2HeaderBytes + len;
    if (data.size() < total) return need_more(2, total);

    ProxyHeader h;
    h.version = 2;
    h.consumed = total;
    h.is_local = local;
    if (addr_len != 0) {
        // TLVs follow the addresses; they must fit the block exactly.
        for (std::size_t off = kProxyV2HeaderBytes + addr_len; off < total;) {
            if (total - off < 3) return invalid(2, "PROXY v2: truncated TLV");
            off += 3 + be16(&data[off + 1]);
            if (off > total) return invalid(2, "PROXY v2: TLV longer than the header");
        }
        const std::uint8_t* p = &data[kProxyV2HeaderBytes];
        const std::size_t a = fam == kTcp4 ? 4 : 16;
        h.source = v2_address(p, a, p + 2 * a);
        h.destination = v2_address(p + a, a, p + 2 * a + 2);
    }
    h.status = ProxyStatus::done;
    return h;
}

}  // namespace

ProxyHeader parse_proxy_header(std::span<const std::uint8_t> data) {
    if (data.empty()) return need_more(0, kV1MinBytes);
    if (data[0] == static_cast<std::uint8_t>('P')) return parse_v1(data);
    if (data[0] == kV2Signature[0]) return parse_v2(data);
    return invalid(0, kNotProxy);
}

}  // namespace dsgw::access
