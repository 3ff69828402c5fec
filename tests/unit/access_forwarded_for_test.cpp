// The client address behind trusted proxies (X-Forwarded-For, walked from the
// right as nginx's real_ip_recursive does) and the header sent upstream.

#include "deepseek_gateway/access/forwarded_for.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string_view>
#include <vector>

namespace {

namespace ip = boost::asio::ip;
using dsgw::access::CidrSet;
using dsgw::access::client_address_from_xff;
using dsgw::access::parse_forwarded_element;
using dsgw::access::resolve_forwarded_for;

ip::address addr(const char* text) {
    return ip::make_address(text);
}

CidrSet trusted(std::initializer_list<const char*> ranges) {
    CidrSet set;
    for (const char* r : ranges) EXPECT_FALSE(set.add(r)) << r;
    return set;
}

// The load balancers of the tests: 10.0.0.0/24 and 2001:db8:ffff::/48.
const CidrSet kProxies = trusted({"10.0.0.0/24", "2001:db8:ffff::/48"});

dsgw::access::ForwardedClient resolve(const char* peer, std::vector<std::string_view> values,
                                      const CidrSet& set = kProxies) {
    return resolve_forwarded_for(addr(peer), values, set);
}

// ---------------------------------------------------------------- untrusted peer

TEST(ForwardedFor, UntrustedPeerIsTheClientWhateverTheHeaderSays) {
    auto r = resolve("203.0.113.7", {"198.51.100.1", "10.0.0.1"});
    EXPECT_EQ(r.address, addr("203.0.113.7"));
    EXPECT_FALSE(r.peer_trusted);
    EXPECT_FALSE(r.malformed);
}

TEST(ForwardedFor, UntrustedPeerSendsOnlyItselfUpstream) {
    // A spoofed chain is replaced, never appended to.
    auto r = resolve("203.0.113.7", {"1.2.3.4, 5.6.7.8"});
    EXPECT_EQ(r.forwarded_for, "203.0.113.7");
    EXPECT_EQ(resolve("203.0.113.7", {}).forwarded_for, "203.0.113.7");
}

TEST(ForwardedFor, EmptyTrustedSetBelievesNobody) {
    auto r = resolve("10.0.0.1", {"198.51.100.1"}, CidrSet{});
    EXPECT_EQ(r.address, addr("10.0.0.1"));
    EXPECT_FALSE(r.peer_trusted);
    EXPECT_EQ(r.forwarded_for, "10.0.0.1");
}

TEST(ForwardedFor, GarbageFromAnUntrustedPeerIsNotEvenParsed) {
    auto r = resolve("203.0.113.7", {"not an address"});
    EXPECT_EQ(r.address, addr("203.0.113.7"));
    EXPECT_FALSE(r.malformed);
}

// ---------------------------------------------------------------- trusted peer

TEST(ForwardedFor, TrustedPeerWithoutHeaderIsTheClient) {
    auto r = resolve("10.0.0.2", {});
    EXPECT_EQ(r.address, addr("10.0.0.2"));
    EXPECT_TRUE(r.peer_trusted);
    EXPECT_EQ(r.forwarded_for, "10.0.0.2");
    EXPECT_EQ(resolve("10.0.0.2", {"", "  "}).address, addr("10.0.0.2"));
}

TEST(ForwardedFor, TrustedPeerNamesTheClient) {
    auto r = resolve("10.0.0.2", {"198.51.100.1"});
    EXPECT_EQ(r.address, addr("198.51.100.1"));
    EXPECT_TRUE(r.peer_trusted);
    EXPECT_FALSE(r.malformed);
    EXPECT_EQ(r.forwarded_for, "198.51.100.1, 10.0.0.2");
}

TEST(ForwardedFor, RightmostUntrustedAddressWins) {
    // The client can write anything on the left; the proxies append on the right.
    auto r = resolve("10.0.0.2", {"1.1.1.1, 198.51.100.1, 10.0.0.3, 10.0.0.4"});
    EXPECT_EQ(r.address, addr("198.51.100.1"));
    EXPECT_EQ(r.forwarded_for, "1.1.1.1, 198.51.100.1, 10.0.0.3, 10.0.0.4, 10.0.0.2");
}

TEST(ForwardedFor, EveryHopTrustedGivesTheLeftmost) {
    auto r = resolve("10.0.0.2", {"10.0.0.9, 10.0.0.8", "10.0.0.7"});
    EXPECT_EQ(r.address, addr("10.0.0.9"));
    EXPECT_FALSE(r.malformed);
}

TEST(ForwardedFor, SeveralHeadersAreOneListInOrder) {
    auto r = resolve("10.0.0.2", {"198.51.100.1", "203.0.113.5, 10.0.0.3"});
    EXPECT_EQ(r.address, addr("203.0.113.5"));
    EXPECT_EQ(r.forwarded_for, "198.51.100.1, 203.0.113.5, 10.0.0.3, 10.0.0.2");
    // The last header is walked first.
    EXPECT_EQ(resolve("10.0.0.2", {"203.0.113.5, 10.0.0.3", "198.51.100.1"}).address,
              addr("198.51.100.1"));
}

TEST(ForwardedFor, WhitespaceAndEmptyElementsAreIgnored) {
    auto r = resolve("10.0.0.2", {"  198.51.100.1 ,\t, ,10.0.0.3\t ", " "});
    EXPECT_EQ(r.address, addr("198.51.100.1"));
    EXPECT_FALSE(r.malformed);
    EXPECT_EQ(resolve("10.0.0.2", {",,,"}).address, addr("10.0.0.2"));
}

TEST(ForwardedFor, UpstreamValueKeepsEachHeaderTrimmed) {
    auto r = resolve("10.0.0.2", {"  198.51.100.1 ", "", "\t10.0.0.3"});
    EXPECT_EQ(r.forwarded_for, "198.51.100.1, 10.0.0.3, 10.0.0.2");
}

TEST(ForwardedFor, Ipv6HopsWithAndWithoutBrackets) {
    auto r = resolve("2001:db8:ffff::1", {"2001:db8:1::7, [2001:db8:ffff::2]"});
    EXPECT_EQ(r.address, addr("2001:db8:1::7"));
    EXPECT_EQ(r.forwarded_for, "2001:db8:1::7, [2001:db8:ffff::2], 2001:db8:ffff::1");
    EXPECT_EQ(resolve("10.0.0.2", {"[2001:db8:1::7]:443"}).address, addr("2001:db8:1::7"));
}

TEST(ForwardedFor, PortsAreToleratedAndDropped) {
    auto r = resolve("10.0.0.2", {"198.51.100.1:51234, 10.0.0.3:443"});
    EXPECT_EQ(r.address, addr("198.51.100.1"));
    EXPECT_FALSE(r.malformed);
}

TEST(ForwardedFor, MappedAddressesAreNormalized) {
    // A dual-stack socket shows the IPv4 proxy as ::ffff:10.0.0.2.
    auto r = resolve("::ffff:10.0.0.2", {"::ffff:198.51.100.1"});
    EXPECT_TRUE(r.peer_trusted);
    EXPECT_EQ(r.address, addr("198.51.100.1"));
    EXPECT_TRUE(r.address.is_v4());
    EXPECT_EQ(r.forwarded_for, "::ffff:198.51.100.1, 10.0.0.2");
    // A mapped hop is trusted by its IPv4 range.
    EXPECT_EQ(resolve("10.0.0.2", {"198.51.100.1, ::ffff:10.0.0.3"}).address, addr("198.51.100.1"));
    EXPECT_EQ(resolve("203.0.113.7", {}).forwarded_for, "203.0.113.7");
    EXPECT_EQ(resolve("::ffff:203.0.113.7", {}).forwarded_for, "203.0.113.7");
}

TEST(ForwardedFor, LoopbackProxyOverIpv6) {
    auto r = resolve("::1", {"2001:db8::5"}, trusted({"::1/128"}));
    EXPECT_EQ(r.address, addr("2001:db8::5"));
    EXPECT_EQ(r.forwarded_for, "2001:db8::5, ::1");
}

// ---------------------------------------------------------------- malformed

TEST(ForwardedFor, MalformedRightmostEntryLeavesThePeer) {
    auto r = resolve("10.0.0.2", {"198.51.100.1, garbage"});
    EXPECT_EQ(r.address, addr("10.0.0.2"));
    EXPECT_TRUE(r.malformed);
    // The chain still goes upstream as received.
    EXPECT_EQ(r.forwarded_for, "198.51.100.1, garbage, 10.0.0.2");
}

TEST(ForwardedFor, MalformedEntryStopsAtTheLastTrustedHop) {
    auto r = resolve("10.0.0.2", {"198.51.100.1, unknown, 10.0.0.3"});
    EXPECT_EQ(r.address, addr("10.0.0.3"));
    EXPECT_TRUE(r.malformed);
}

TEST(ForwardedFor, MalformedEntryLeftOfTheClientIsNeverReached) {
    auto r = resolve("10.0.0.2", {"<script>, 198.51.100.1, 10.0.0.3"});
    EXPECT_EQ(r.address, addr("198.51.100.1"));
    EXPECT_FALSE(r.malformed);
}

TEST(ForwardedFor, ClientAddressFromXffIsTheResolvedAddress) {
    std::vector<std::string_view> v{"198.51.100.1, 10.0.0.3"};
    EXPECT_EQ(client_address_from_xff(addr("10.0.0.2"), v, kProxies), addr("198.51.100.1"));
    EXPECT_EQ(client_address_from_xff(addr("203.0.113.7"), v, kProxies), addr("203.0.113.7"));
}

// ---------------------------------------------------------------- one element

TEST(ForwardedElement, AcceptsAddressesWithOptionalPorts) {
    struct Case {
        const char* text;
        const char* address;
    } cases[] = {
        {"192.0.2.7", "192.0.2.7"},
        {" 192.0.2.7\t", "192.0.2.7"},
        {"192.0.2.7:0", "192.0.2.7"},
        {"192.0.2.7:65535", "192.0.2.7"},
        {"2001:db8::7", "2001:db8::7"},
        {"[2001:db8::7]", "2001:db8::7"},
        {"[2001:db8::7]:443", "2001:db8::7"},
        {"::1", "::1"},
        {"::ffff:192.0.2.7", "192.0.2.7"},
        {"[::ffff:192.0.2.7]:80", "192.0.2.7"},
        // Unbracketed IPv6 is an address, never address:port.
        {"2001:db8::7:443", "2001:db8::7:443"},
    };
    for (const auto& c : cases) {
        auto a = parse_forwarded_element(c.text);
        ASSERT_TRUE(a) << c.text;
        EXPECT_EQ(*a, addr(c.address)) << c.text;
    }
}

TEST(ForwardedElement, RejectsEverythingElse) {
    for (const char* bad : {"",
                            "  ",
                            "unknown",
                            "_hidden",
                            "example.com",
                            "example.com:80",
                            "192.0.2",
                            "192.0.2.256",
                            "192.0.2.7:",
                            "192.0.2.7:65536",
                            "192.0.2.7:123456",
                            "192.0.2.7:-1",
                            "192.0.2.7:8a",
                            "192.0.2.7:80:80",
                            "192.0.2.07",
                            "[192.0.2.7]",
                            "[2001:db8::7",
                            "2001:db8::7]",
                            "[2001:db8::7]443",
                            "[2001:db8::7]:",
                            "[2001:db8::7]:99999",
                            "fe80::1%eth0",
                            "[fe80::1%1]",
                            "2001:db8:::7",
                            "1.2.3.4 5.6.7.8",
                            "for=192.0.2.7",
                            "\"192.0.2.7\""}) {
        EXPECT_FALSE(parse_forwarded_element(bad)) << "accepted \"" << bad << "\"";
    }
}

// Found by fuzzing (tests/fuzz/fuzz_forwarded_for): Asio's address parser
// reads a C string, so the bytes after a NUL were never looked at and
// "192.0.2.1\0junk" was 192.0.2.1. The request parser refuses NUL in a
// header value, so this was not reachable from a client; the function is
// exact on its own now.
TEST(ForwardedElement, RejectsANulAndWhatFollowsIt) {
    using namespace std::string_view_literals;
    for (auto bad : {"192.0.2.1\0junk"sv, "192.0.2.1\0"sv, "192.0.2.1:80\0"sv, "2001:db8::1\0x"sv,
                     "[2001:db8::1\0x]:443"sv, "[2001:db8::1]:4\0"sv}) {
        EXPECT_FALSE(parse_forwarded_element(bad)) << "accepted a NUL at " << bad.find('\0');
    }
}

}  // namespace
