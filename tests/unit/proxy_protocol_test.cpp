// The PROXY protocol parser (v1 text, v2 binary): whole headers, headers
// that arrive a byte at a time, and every shape that must be refused.

#include "deepseek_gateway/access/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace ip = boost::asio::ip;
using dsgw::access::kProxyV1MaxBytes;
using dsgw::access::kProxyV2MaxPayload;
using dsgw::access::parse_proxy_header;
using dsgw::access::ProxyHeader;
using dsgw::access::ProxyStatus;
using Bytes = std::vector<std::uint8_t>;

ip::address addr(const char* text) {
    return ip::make_address(text);
}

Bytes bytes(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

ProxyHeader parse(const Bytes& b) {
    return parse_proxy_header(b);
}
ProxyHeader parse(std::string_view s) {
    return parse(bytes(s));
}

// --- v2 builder, byte by byte ---------------------------------------------------

const Bytes kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

void put16(Bytes& b, unsigned v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

// Signature, version/command, family/transport, length, then `block`.
Bytes v2(std::uint8_t ver_cmd, std::uint8_t fam, const Bytes& block) {
    Bytes b = kSignature;
    b.push_back(ver_cmd);
    b.push_back(fam);
    put16(b, static_cast<unsigned>(block.size()));
    b.insert(b.end(), block.begin(), block.end());
    return b;
}

Bytes tcp4_block(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst, unsigned sport,
                 unsigned dport) {
    Bytes b(src.begin(), src.end());
    b.insert(b.end(), dst.begin(), dst.end());
    put16(b, sport);
    put16(b, dport);
    return b;
}

Bytes tcp6_block(const char* src, const char* dst, unsigned sport, unsigned dport) {
    Bytes b;
    for (const char* a : {src, dst}) {
        auto bytes = ip::make_address_v6(a).to_bytes();
        b.insert(b.end(), bytes.begin(), bytes.end());
    }
    put16(b, sport);
    put16(b, dport);
    return b;
}

Bytes tlv(std::uint8_t type, const Bytes& value) {
    Bytes b{type};
    put16(b, static_cast<unsigned>(value.size()));
    b.insert(b.end(), value.begin(), value.end());
    return b;
}

Bytes cat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

const Bytes kTcp4Block = tcp4_block({198, 51, 100, 7}, {10, 0, 0, 1}, 51234, 8443);
constexpr std::uint8_t kProxyCmd = 0x21, kLocalCmd = 0x20;
constexpr std::uint8_t kTcp4 = 0x11, kTcp6 = 0x21, kUnspec = 0x00;

// Every strict prefix of `whole` asks for more, with a min_total that neither
// overshoots the header nor stands still; the whole gives `done`.
void expect_fragmented(const Bytes& whole, std::size_t header_length) {
    for (std::size_t n = 0; n < header_length; ++n) {
        auto h = parse_proxy_header(std::span(whole.data(), n));
        ASSERT_EQ(h.status, ProxyStatus::need_more) << "prefix of " << n << " bytes: " << h.error;
        EXPECT_GT(h.min_total, n) << n;
        EXPECT_LE(h.min_total, header_length) << n;
    }
    auto h = parse_proxy_header(std::span(whole.data(), header_length));
    EXPECT_EQ(h.status, ProxyStatus::done);
    EXPECT_EQ(h.consumed, header_length);
}

// Reads exactly min_total - have bytes each time, as a caller that must not
// read past the header (TLS follows) would, and ends exactly at its end.
void expect_exact_reads(const Bytes& stream, std::size_t header_length) {
    std::size_t have = 0;
    for (int rounds = 0; rounds < 200; ++rounds) {
        auto h = parse_proxy_header(std::span(stream.data(), have));
        if (h.status == ProxyStatus::done) {
            EXPECT_EQ(have, header_length);
            EXPECT_EQ(h.consumed, header_length);
            return;
        }
        ASSERT_EQ(h.status, ProxyStatus::need_more) << h.error;
        ASSERT_GT(h.min_total, have);
        have = h.min_total;
        ASSERT_LE(have, header_length) << "read past the header";
    }
    FAIL() << "did not finish";
}

// The first `n` bytes already say invalid.
void expect_invalid_after(const Bytes& b, std::size_t n) {
    ASSERT_LE(n, b.size());
    auto h = parse_proxy_header(std::span(b.data(), n));
    EXPECT_EQ(h.status, ProxyStatus::invalid) << "after " << n << " bytes";
    EXPECT_NE(h.error, nullptr);
    if (n > 0) {
        auto before = parse_proxy_header(std::span(b.data(), n - 1));
        EXPECT_EQ(before.status, ProxyStatus::need_more) << "already invalid at " << n - 1;
    }
}

// ---------------------------------------------------------------- v1

TEST(ProxyV1, Tcp4) {
    auto h = parse("PROXY TCP4 198.51.100.7 10.0.0.1 51234 8443\r\n");
    ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_EQ(h.version, 1);
    EXPECT_EQ(h.consumed, 45u);
    EXPECT_FALSE(h.is_local);
    ASSERT_TRUE(h.source && h.destination);
    EXPECT_EQ(h.source->address, addr("198.51.100.7"));
    EXPECT_EQ(h.source->port, 51234);
    EXPECT_EQ(h.destination->address, addr("10.0.0.1"));
    EXPECT_EQ(h.destination->port, 8443);
}

TEST(ProxyV1, Tcp6) {
    auto h = parse("PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n");
    ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_EQ(h.source->address, addr("2001:db8::7"));
    EXPECT_EQ(h.source->port, 65535);
    EXPECT_EQ(h.destination->address, addr("2001:db8::1"));
    EXPECT_EQ(h.destination->port, 0);
}

TEST(ProxyV1, Tcp6MappedSourceIsNormalized) {
    auto h = parse("PROXY TCP6 ::ffff:198.51.100.7 ::ffff:10.0.0.1 1 2\r\n");
    ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_EQ(h.source->address, addr("198.51.100.7"));
    EXPECT_TRUE(h.source->address.is_v4());
}

TEST(ProxyV1, UnknownCarriesNoAddress) {
    for (const char* line :
         {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
          "PROXY UNKNOWN anything at all\r\n"}) {
        auto h = parse(line);
        ASSERT_EQ(h.status, ProxyStatus::done) << line;
        EXPECT_EQ(h.consumed, std::string_view(line).size());
        EXPECT_FALSE(h.source);
        EXPECT_FALSE(h.destination);
        EXPECT_FALSE(h.is_local);
    }
}

TEST(ProxyV1, BytesAfterTheHeaderAreNotConsumed) {
    std::string header = "PROXY TCP4 198.51.100.7 10.0.0.1 51234 8443\r\n";
    auto h = parse(header + "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(h.status, ProxyStatus::done);
    EXPECT_EQ(h.consumed, header.size());
    // A TLS ClientHello right behind it.
    auto tls = cat(bytes(header), Bytes{0x16, 0x03, 0x01, 0x02, 0x00});
    EXPECT_EQ(parse(tls).consumed, header.size());
}

TEST(ProxyV1, LongestLineIs107Bytes) {
    // The protocol's own worst case.
    std::string longest =
        "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_EQ(longest.size(), kProxyV1MaxBytes);
    auto h = parse(longest);
    EXPECT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_EQ(h.consumed, 107u);
}

TEST(ProxyV1, ArrivesAByteAtATime) {
    for (std::string line : {"PROXY TCP4 198.51.100.7 10.0.0.1 51234 8443\r\n",
                             "PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n", "PROXY UNKNOWN\r\n"}) {
        SCOPED_TRACE(line);
        auto stream = bytes(line + "GET / HTTP/1.1\r\n");
        expect_fragmented(stream, line.size());
        expect_exact_reads(stream, line.size());
    }
}

TEST(ProxyV1, MalformedLinesAreInvalid) {
    for (const char* line : {
             "PROXY TCP4 198.51.100.7 10.0.0.1 51234\r\n",          // a field short
             "PROXY TCP4 198.51.100.7 10.0.0.1 51234 8443 9\r\n",   // a field more
             "PROXY TCP4  198.51.100.7 10.0.0.1 51234 8443\r\n",    // two spaces
             "PROXY TCP4 198.51.100.7 10.0.0.1 51234 8443 \r\n",    // trailing space
             "PROXY TCP4 198.51.100.256 10.0.0.1 51234 8443\r\n",   // bad IPv4
             "PROXY TCP4 198.51.100 10.0.0.1 51234 8443\r\n",       // short IPv4
             "PROXY TCP4 2001:db8::7 10.0.0.1 51234 8443\r\n",      // IPv6 under TCP4
             "PROXY TCP6 198.51.100.7 2001:db8::1 51234 8443\r\n",  // IPv4 under TCP6
             "PROXY TCP6 fe80::1%1 2001:db8::1 51234 8443\r\n",     // zone id
             "PROXY TCP4 198.51.100.7 10.0.0.1 65536 8443\r\n",     // port too large
             "PROXY TCP4 198.51.100.7 10.0.0.1 -1 8443\r\n",        // negative port
             "PROXY TCP4 198.51.100.7 10.0.0.1 123456 8443\r\n",    // six digits
             "PROXY TCP4 198.51.100.7 10.0.0.1 51234 \r\n",         // empty port
             "PROXY TCP4\r\n",                                      // no addresses
             "PROXY TCP5 198.51.100.7 10.0.0.1 51234 8443\r\n",     // unknown protocol
             "PROXY UDP4 198.51.100.7 10.0.0.1 51234 8443\r\n",     // UDP
             "PROXY UNKNOWNX\r\n",                                  // not UNKNOWN
             "PROXY \r\n",                                          // nothing
             "PROXY\r\n",                                           // no space
             "proxy TCP4 198.51.100.7 10.0.0.1 51234 8443\r\n",     // lower case
             "PROXY TCP4 198.51.100.7 10.0.0.1 51234 8443\n",       // LF only
             "PROXY TCP4 198.51.100.7 10.0.0.1 51234 8443\rX\n",    // CR, then not LF
             "PROXY TCP4 198.51.100.7\t10.0.0.1 51234 8443\r\n",    // tab
             "PROXY UNKNOWN \x01\r\n",                              // control byte
             "PROXY UNKNOWN \xC3\xA9\r\n",                          // not ASCII
         }) {
        auto h = parse(line);
        EXPECT_EQ(h.status, ProxyStatus::invalid) << "accepted: " << line;
        EXPECT_NE(h.error, nullptr) << line;
    }
}

TEST(ProxyV1, NoCrlfWithin107BytesIsInvalid) {
    std::string line = "PROXY UNKNOWN " + std::string(91, 'x');
    ASSERT_EQ(line.size(), 105u);
    EXPECT_EQ(parse(line).status, ProxyStatus::need_more);
    EXPECT_EQ(parse(line + "\r").status, ProxyStatus::need_more);
    EXPECT_EQ(parse(line + "\r\n").status, ProxyStatus::done);  // 107 bytes
    // From 106 bytes without CR on, the CRLF can only end past byte 107:
    // refused at once rather than after more input.
    EXPECT_EQ(parse(line + "x").status, ProxyStatus::invalid);
    EXPECT_EQ(parse(line + "x\r").status, ProxyStatus::invalid);
    EXPECT_EQ(parse(line + "x\r\n").status, ProxyStatus::invalid);  // 108 bytes
    EXPECT_EQ(parse(std::string(200, 'P')).status, ProxyStatus::invalid);
}

TEST(ProxyV1, GarbageIsRefusedWithoutWaiting) {
    // HTTP, TLS and a v1 with the wrong protocol are refused as soon as the
    // first byte that cannot fit arrives, not at a timeout.
    expect_invalid_after(bytes("GET / HTTP/1.1\r\n"), 1);
    expect_invalid_after(Bytes{0x16, 0x03, 0x01, 0x00, 0xA5}, 1);
    expect_invalid_after(bytes("PRI * HTTP/2.0\r\n"), 3);
    expect_invalid_after(bytes("PROXYTCP4 "), 6);
    expect_invalid_after(bytes("PROXY TCP5 1.2.3.4"), 10);
    expect_invalid_after(bytes("PROXY UDP4 1.2.3.4"), 8);
    expect_invalid_after(bytes("PROXY UNKNOWNX"), 14);
    expect_invalid_after(bytes("PROXY TCP4 1.2.3.4 hello"), 20);
    expect_invalid_after(bytes("PROXY TCP4 1.2.3.4\n"), 19);
}

TEST(ProxyHeader, EmptyInputNeedsMore) {
    auto h = parse(Bytes{});
    EXPECT_EQ(h.status, ProxyStatus::need_more);
    // Both versions are at least this long, so reading it never overshoots.
    EXPECT_EQ(h.min_total, 15u);
}

// ---------------------------------------------------------------- v2

TEST(ProxyV2, Tcp4) {
    auto b = v2(kProxyCmd, kTcp4, kTcp4Block);
    auto h = parse(b);
    ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_EQ(h.version, 2);
    EXPECT_EQ(h.consumed, 28u);
    EXPECT_FALSE(h.is_local);
    ASSERT_TRUE(h.source && h.destination);
    EXPECT_EQ(h.source->address, addr("198.51.100.7"));
    EXPECT_EQ(h.source->port, 51234);
    EXPECT_EQ(h.destination->address, addr("10.0.0.1"));
    EXPECT_EQ(h.destination->port, 8443);
}

TEST(ProxyV2, Tcp6) {
    auto h = parse(v2(kProxyCmd, kTcp6, tcp6_block("2001:db8::7", "2001:db8::1", 1, 65535)));
    ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_EQ(h.consumed, 52u);
    EXPECT_EQ(h.source->address, addr("2001:db8::7"));
    EXPECT_EQ(h.source->port, 1);
    EXPECT_EQ(h.destination->address, addr("2001:db8::1"));
    EXPECT_EQ(h.destination->port, 65535);
}

TEST(ProxyV2, Tcp6MappedSourceIsNormalized) {
    auto h = parse(v2(kProxyCmd, kTcp6, tcp6_block("::ffff:198.51.100.7", "::1", 1, 2)));
    ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_EQ(h.source->address, addr("198.51.100.7"));
    EXPECT_TRUE(h.source->address.is_v4());
}

TEST(ProxyV2, LocalCarriesNoAddress) {
    // A load balancer's own health check: LOCAL, with or without a block.
    for (const Bytes& b : {v2(kLocalCmd, kUnspec, {}), v2(kLocalCmd, kTcp4, kTcp4Block),
                           v2(kLocalCmd, kUnspec, Bytes{1, 2, 3})}) {
        auto h = parse(b);
        ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
        EXPECT_TRUE(h.is_local);
        EXPECT_FALSE(h.source);
        EXPECT_EQ(h.consumed, b.size());
    }
}

TEST(ProxyV2, UnspecCarriesNoAddress) {
    auto h = parse(v2(kProxyCmd, kUnspec, {}));
    ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_FALSE(h.is_local);
    EXPECT_FALSE(h.source);
}

TEST(ProxyV2, TlvsAreSkipped) {
    // AWS's VPC endpoint id (0xEA), ALPN (0x01), authority (0x02), NOOP (0x04).
    Bytes tlvs = cat(cat(tlv(0xEA, bytes("\x01vpce-0123456789abcdef")), tlv(0x01, bytes("h2"))),
                     cat(tlv(0x02, bytes("api.example.com")), tlv(0x04, Bytes(5, 0))));
    auto b = v2(kProxyCmd, kTcp4, cat(kTcp4Block, tlvs));
    auto h = parse(b);
    ASSERT_EQ(h.status, ProxyStatus::done) << h.error;
    EXPECT_EQ(h.consumed, b.size());
    EXPECT_EQ(h.source->address, addr("198.51.100.7"));
    // An empty TLV is a TLV.
    EXPECT_EQ(parse(v2(kProxyCmd, kTcp4, cat(kTcp4Block, tlv(0x04, {})))).status,
              ProxyStatus::done);
}

TEST(ProxyV2, BytesAfterTheHeaderAreNotConsumed) {
    auto header = v2(kProxyCmd, kTcp4, cat(kTcp4Block, tlv(0x04, Bytes(3, 0))));
    auto stream = cat(header, bytes("GET / HTTP/1.1\r\n\r\n"));
    auto h = parse(stream);
    ASSERT_EQ(h.status, ProxyStatus::done);
    EXPECT_EQ(h.consumed, header.size());
}

TEST(ProxyV2, ArrivesAByteAtATime) {
    for (const Bytes& header :
         {v2(kProxyCmd, kTcp4, kTcp4Block),
          v2(kProxyCmd, kTcp6,
             cat(tcp6_block("2001:db8::7", "2001:db8::1", 1, 2), tlv(0xE0, Bytes(8, 7)))),
          v2(kLocalCmd, kUnspec, {})}) {
        auto stream = cat(header, Bytes{0x16, 0x03, 0x01});
        expect_fragmented(stream, header.size());
        expect_exact_reads(stream, header.size());
    }
}

TEST(ProxyV2, MinTotalIsExactOnceTheLengthIsKnown) {
    auto b = v2(kProxyCmd, kTcp4, cat(kTcp4Block, tlv(0x04, Bytes(100, 0))));
    EXPECT_EQ(parse_proxy_header(std::span(b.data(), 10)).min_total, 16u);
    EXPECT_EQ(parse_proxy_header(std::span(b.data(), 16)).min_total, b.size());
    EXPECT_EQ(parse_proxy_header(std::span(b.data(), 20)).min_total, b.size());
}

TEST(ProxyV2, LargestBlockIsAccepted) {
    Bytes block = cat(kTcp4Block, tlv(0x04, Bytes(kProxyV2MaxPayload - 12 - 3, 0)));
    ASSERT_EQ(block.size(), kProxyV2MaxPayload);
    EXPECT_EQ(parse(v2(kProxyCmd, kTcp4, block)).status, ProxyStatus::done);
}

TEST(ProxyV2, LongerBlockIsRefusedFromItsLengthAlone) {
    Bytes b = kSignature;
    b.insert(b.end(), {kProxyCmd, kTcp4});
    put16(b, static_cast<unsigned>(kProxyV2MaxPayload + 1));
    expect_invalid_after(b, 16);
    Bytes max = kSignature;
    max.insert(max.end(), {kProxyCmd, kTcp4, 0xFF, 0xFF});
    EXPECT_EQ(parse(max).status, ProxyStatus::invalid);
}

TEST(ProxyV2, WrongSignatureIsRefusedAtTheFirstWrongByte) {
    for (std::size_t i = 0; i < kSignature.size(); ++i) {
        Bytes b = v2(kProxyCmd, kTcp4, kTcp4Block);
        b[i] ^= 0x20;
        if (i == 0) {
            // "\x2D" is neither 'P' nor CR.
            EXPECT_EQ(parse_proxy_header(std::span(b.data(), 1)).status, ProxyStatus::invalid);
            continue;
        }
        expect_invalid_after(b, i + 1);
    }
}

TEST(ProxyV2, BadVersionOrCommandIsRefusedAtThatByte) {
    expect_invalid_after(v2(0x11, kTcp4, kTcp4Block), 13);  // version 1 in a v2 signature
    expect_invalid_after(v2(0x31, kTcp4, kTcp4Block), 13);  // version 3
    expect_invalid_after(v2(0x22, kTcp4, kTcp4Block), 13);  // command 2
    expect_invalid_after(v2(0x2F, kTcp4, kTcp4Block), 13);  // command 15
}

TEST(ProxyV2, UnsupportedOrUnknownFamilyIsRefusedAtThatByte) {
    for (std::uint8_t fam : {0x12, 0x22, 0x31, 0x32, 0x10, 0x20, 0x13, 0x41, 0x01, 0xFF}) {
        SCOPED_TRACE(static_cast<int>(fam));
        expect_invalid_after(v2(kProxyCmd, fam, Bytes(216, 0)), 14);
    }
    // LOCAL ignores a defined family, UDP included, but not an undefined one.
    EXPECT_EQ(parse(v2(kLocalCmd, 0x12, kTcp4Block)).status, ProxyStatus::done);
    EXPECT_EQ(parse(v2(kLocalCmd, 0x31, {})).status, ProxyStatus::done);
    expect_invalid_after(v2(kLocalCmd, 0x41, {}), 14);
}

TEST(ProxyV2, AddressBlockTooShortForItsFamily) {
    expect_invalid_after(v2(kProxyCmd, kTcp4, Bytes(11, 0)), 16);
    expect_invalid_after(v2(kProxyCmd, kTcp6, Bytes(35, 0)), 16);
    expect_invalid_after(v2(kProxyCmd, kTcp6, kTcp4Block), 16);
    EXPECT_EQ(parse(v2(kProxyCmd, kTcp6, Bytes(36, 0))).status, ProxyStatus::done);
}

TEST(ProxyV2, BrokenTlvsAreInvalid) {
    // Two stray bytes after the addresses: not even a TLV header.
    EXPECT_EQ(parse(v2(kProxyCmd, kTcp4, cat(kTcp4Block, Bytes{0x04, 0x00}))).status,
              ProxyStatus::invalid);
    // A TLV that claims more than the block holds.
    Bytes overrun = tlv(0x02, bytes("api.example.com"));
    overrun[2] += 1;
    EXPECT_EQ(parse(v2(kProxyCmd, kTcp4, cat(kTcp4Block, overrun))).status, ProxyStatus::invalid);
    // One good TLV followed by one cut short.
    EXPECT_EQ(parse(v2(kProxyCmd, kTcp4, cat(cat(kTcp4Block, tlv(0x04, {})), Bytes{0x01}))).status,
              ProxyStatus::invalid);
}

TEST(ProxyV2, AV1SignatureThenBinaryIsNotV2) {
    // A v2 header must start with CR, a v1 with 'P'; anything else is refused.
    EXPECT_EQ(parse(cat(bytes("PROXY "), kSignature)).status, ProxyStatus::invalid);
    EXPECT_EQ(parse(Bytes{0x00}).status, ProxyStatus::invalid);
    EXPECT_EQ(parse(Bytes{'\n'}).status, ProxyStatus::invalid);
}

// ---------------------------------------------------------------- any input

// Mutated headers and random bytes: whatever arrives, the answer is
// consistent and never reads outside the input (run under ASan in CI).
TEST(ProxyHeader, MutatedInputKeepsTheContract) {
    std::mt19937 rng(20240601);
    const std::vector<Bytes> seeds = {
        bytes("PROXY TCP4 198.51.100.7 10.0.0.1 51234 8443\r\n"),
        bytes("PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n"),
        bytes("PROXY UNKNOWN\r\n"),
        v2(kProxyCmd, kTcp4, cat(kTcp4Block, tlv(0x04, Bytes(4, 0)))),
        v2(kProxyCmd, kTcp6, tcp6_block("2001:db8::7", "2001:db8::1", 1, 2)),
        v2(kLocalCmd, kUnspec, {}),
    };
    for (int round = 0; round < 20000; ++round) {
        Bytes b = seeds[rng() % seeds.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !b.empty(); ++e) {
            switch (rng() % 4) {
                case 0:
                    b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
                    break;
                case 1:
                    b.erase(b.begin() + static_cast<long>(rng() % b.size()));
                    break;
                case 2:
                    b.insert(b.begin() + static_cast<long>(rng() % (b.size() + 1)),
                             static_cast<std::uint8_t>(rng()));
                    break;
                case 3:
                    b.resize(rng() % (b.size() + 1));
                    break;
            }
        }
        // Exactly sized, so ASan sees a read past the end.
        auto heap = std::make_unique<std::uint8_t[]>(b.size() + 1);
        std::copy(b.begin(), b.end(), heap.get());
        auto h = parse_proxy_header(std::span<const std::uint8_t>(heap.get(), b.size()));
        switch (h.status) {
            case ProxyStatus::done:
                ASSERT_GT(h.consumed, 0u);
                ASSERT_LE(h.consumed, b.size());
                ASSERT_TRUE(h.version == 1 || h.version == 2);
                ASSERT_EQ(h.source.has_value(), h.destination.has_value());
                break;
            case ProxyStatus::need_more:
                ASSERT_GT(h.min_total, b.size());
                ASSERT_LE(h.min_total, dsgw::access::kProxyHeaderMaxBytes);
                break;
            case ProxyStatus::invalid:
                ASSERT_NE(h.error, nullptr);
                break;
        }
    }
}

}  // namespace
