// CIDR sets, the allow/deny decision, and which address it is made on when
// proxies sit in front (admission).

#include "deepseek_gateway/access/admission.hpp"
#include "deepseek_gateway/access/cidr.hpp"
#include "deepseek_gateway/access/policy.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace ip = boost::asio::ip;
using dsgw::access::CidrSet;
using dsgw::access::Decision;
using dsgw::access::Policy;

ip::address addr(const char* text) {
    return ip::make_address(text);
}

CidrSet set_of(std::initializer_list<const char*> ranges) {
    CidrSet set;
    for (const char* r : ranges) {
        auto err = set.add(r);
        EXPECT_FALSE(err) << r << ": " << err.value_or("");
    }
    return set;
}

// The error add() returns for `text`, or "" when it was accepted.
std::string error_for(const char* text) {
    CidrSet set;
    auto err = set.add(text);
    if (err) {
        EXPECT_TRUE(set.empty()) << "a rejected entry must not be added: " << text;
    }
    return err.value_or("");
}

// ---------------------------------------------------------------- normalize

TEST(Normalize, UnmapsIpv4MappedIpv6) {
    EXPECT_EQ(dsgw::access::normalize(addr("::ffff:127.0.0.1")), addr("127.0.0.1"));
    EXPECT_TRUE(dsgw::access::normalize(addr("::ffff:10.1.2.3")).is_v4());
}

TEST(Normalize, LeavesOtherAddressesAlone) {
    for (const char* a :
         {"127.0.0.1", "::1", "2001:db8::1", "::", "::127.0.0.1", "64:ff9b::1.2.3.4"}) {
        EXPECT_EQ(dsgw::access::normalize(addr(a)), addr(a)) << a;
    }
}

// ---------------------------------------------------------------- parsing

TEST(CidrParse, AcceptsIpv4Ranges) {
    auto set = set_of({"10.0.0.0/8", "192.168.1.0/24", "0.0.0.0/0", "10.0.0.5/32"});
    EXPECT_EQ(set.size(), 4u);
    const std::vector<std::string> expected{"10.0.0.0/8", "192.168.1.0/24", "0.0.0.0/0",
                                            "10.0.0.5/32"};
    EXPECT_EQ(set.to_strings(), expected);
}

TEST(CidrParse, AcceptsIpv6Ranges) {
    auto set = set_of({"2001:db8::/32", "::/0", "::1/128", "fe80::/10"});
    EXPECT_EQ(set.size(), 4u);
    EXPECT_EQ(set.to_strings(),
              (std::vector<std::string>{"2001:db8::/32", "::/0", "::1/128", "fe80::/10"}));
}

TEST(CidrParse, BareAddressIsASingleHost) {
    auto set = set_of({"10.0.0.5", "2001:db8::7"});
    EXPECT_EQ(set.to_strings(), (std::vector<std::string>{"10.0.0.5/32", "2001:db8::7/128"}));
    EXPECT_TRUE(set.contains(addr("10.0.0.5")));
    EXPECT_FALSE(set.contains(addr("10.0.0.6")));
    EXPECT_TRUE(set.contains(addr("2001:db8::7")));
    EXPECT_FALSE(set.contains(addr("2001:db8::8")));
}

TEST(CidrParse, BareIpv4MappedAddressIsTheIpv4Host) {
    auto set = set_of({"::ffff:10.0.0.5"});
    EXPECT_EQ(set.to_strings(), (std::vector<std::string>{"10.0.0.5/32"}));
    EXPECT_TRUE(set.contains(addr("10.0.0.5")));
    EXPECT_TRUE(set.contains(addr("::ffff:10.0.0.5")));
}

TEST(CidrParse, Ipv4MappedRangeIsTheIpv4Range) {
    // contains() unmaps clients first, so this form must become 10.0.0.0/8.
    auto set = set_of({"::ffff:10.0.0.0/104"});
    EXPECT_EQ(set.to_strings(), (std::vector<std::string>{"10.0.0.0/8"}));
    EXPECT_TRUE(set.contains(addr("10.200.0.1")));
    EXPECT_TRUE(set.contains(addr("::ffff:10.200.0.1")));
    EXPECT_FALSE(set.contains(addr("11.0.0.1")));

    auto all = set_of({"::ffff:0:0/96"});
    EXPECT_EQ(all.to_strings(), (std::vector<std::string>{"0.0.0.0/0"}));
    EXPECT_TRUE(all.contains(addr("203.0.113.9")));
    EXPECT_FALSE(all.contains(addr("2001:db8::1")));
}

TEST(CidrParse, PrefixOutOfRangeIsAnError) {
    EXPECT_NE(error_for("10.0.0.0/33").find("0-32"), std::string::npos);
    EXPECT_NE(error_for("10.0.0.0/999").find("0-32"), std::string::npos);
    EXPECT_NE(error_for("::/129").find("0-128"), std::string::npos);
}

TEST(CidrParse, PrefixThatIsNotANumberIsAnError) {
    for (const char* bad : {"10.0.0.0/", "10.0.0.0/abc", "10.0.0.0/-1", "10.0.0.0/+8",
                            "10.0.0.0/8/8", "10.0.0.0/ 8", "10.0.0.0/1234", "10.0.0.0/8 "}) {
        auto err = error_for(bad);
        EXPECT_NE(err, "") << bad;
        EXPECT_NE(err.find(bad), std::string::npos) << "error should quote the input: " << err;
    }
}

TEST(CidrParse, HostBitsSetIsAnErrorWithASuggestion) {
    auto err = error_for("10.0.0.1/8");
    EXPECT_NE(err.find("did you mean \"10.0.0.0/8\""), std::string::npos) << err;
    EXPECT_NE(err.find("10.0.0.1/8"), std::string::npos) << err;

    err = error_for("192.168.1.1/24");
    EXPECT_NE(err.find("\"192.168.1.0/24\""), std::string::npos) << err;

    err = error_for("2001:db8::1/32");
    EXPECT_NE(err.find("did you mean \"2001:db8::/32\""), std::string::npos) << err;

    err = error_for("0.0.0.1/0");
    EXPECT_NE(err.find("\"0.0.0.0/0\""), std::string::npos) << err;
}

TEST(CidrParse, GarbageIsAnError) {
    for (const char* bad :
         {"", "hello", "300.1.1.1", "10.0.0", "10.0.0.0.0", " 10.0.0.1", "10.0.0.1 ", "10.0.0.0 /8",
          "/8", "example.com/24", "2001:db8:::1", "[::1]", "10.0.0.1:80", "*"}) {
        EXPECT_NE(error_for(bad), "") << "accepted \"" << bad << "\"";
    }
}

// Found by fuzzing (tests/fuzz/fuzz_cidr): Asio's address parser reads a C
// string, so "10.0.0.1\0junk" (YAML can write a NUL: "\0") was 10.0.0.1.
TEST(CidrParse, ANulIsAnError) {
    using namespace std::string_view_literals;
    for (auto bad : {"10.0.0.1\0junk"sv, "10.0.0.0\0/8"sv, "::1\0"sv, "2001:db8::\0/32"sv}) {
        CidrSet set;
        EXPECT_TRUE(set.add(bad)) << "accepted a NUL at " << bad.find('\0');
        EXPECT_TRUE(set.empty());
    }
}

TEST(CidrParse, RejectedEntryLeavesTheSetUnchanged) {
    CidrSet set = set_of({"10.0.0.0/8"});
    EXPECT_TRUE(set.add("10.0.0.1/8"));
    EXPECT_TRUE(set.add("junk"));
    EXPECT_EQ(set.size(), 1u);
    EXPECT_FALSE(set.contains(addr("11.0.0.0")));
}

// ---------------------------------------------------------------- contains

TEST(CidrContains, EmptySetContainsNothing) {
    CidrSet set;
    EXPECT_TRUE(set.empty());
    EXPECT_EQ(set.size(), 0u);
    for (const char* a : {"0.0.0.0", "127.0.0.1", "::", "::1", "::ffff:1.2.3.4"}) {
        EXPECT_FALSE(set.contains(addr(a))) << a;
    }
}

TEST(CidrContains, Ipv4RangeBoundaries) {
    auto set = set_of({"192.168.1.0/24"});
    EXPECT_TRUE(set.contains(addr("192.168.1.0")));
    EXPECT_TRUE(set.contains(addr("192.168.1.1")));
    EXPECT_TRUE(set.contains(addr("192.168.1.255")));
    EXPECT_FALSE(set.contains(addr("192.168.0.255")));
    EXPECT_FALSE(set.contains(addr("192.168.2.0")));
    EXPECT_FALSE(set.contains(addr("10.0.0.1")));
}

TEST(CidrContains, Ipv4OddPrefixes) {
    auto set = set_of({"10.0.0.4/31", "172.16.0.0/12"});
    EXPECT_FALSE(set.contains(addr("10.0.0.3")));
    EXPECT_TRUE(set.contains(addr("10.0.0.4")));
    EXPECT_TRUE(set.contains(addr("10.0.0.5")));
    EXPECT_FALSE(set.contains(addr("10.0.0.6")));
    EXPECT_FALSE(set.contains(addr("172.15.255.255")));
    EXPECT_TRUE(set.contains(addr("172.16.0.0")));
    EXPECT_TRUE(set.contains(addr("172.31.255.255")));
    EXPECT_FALSE(set.contains(addr("172.32.0.0")));
    auto top_half = set_of({"128.0.0.0/1"});
    EXPECT_TRUE(top_half.contains(addr("128.0.0.0")));
    EXPECT_TRUE(top_half.contains(addr("255.255.255.255")));
    EXPECT_FALSE(top_half.contains(addr("127.255.255.255")));
}

TEST(CidrContains, Ipv4SlashThirtyTwoIsExact) {
    auto set = set_of({"10.0.0.5/32"});
    EXPECT_TRUE(set.contains(addr("10.0.0.5")));
    EXPECT_FALSE(set.contains(addr("10.0.0.4")));
    EXPECT_FALSE(set.contains(addr("10.0.0.6")));
}

TEST(CidrContains, Ipv4SlashZeroContainsEveryIpv4AddressOnly) {
    auto set = set_of({"0.0.0.0/0"});
    for (const char* a : {"0.0.0.0", "1.2.3.4", "127.0.0.1", "255.255.255.255", "::ffff:8.8.8.8"}) {
        EXPECT_TRUE(set.contains(addr(a))) << a;
    }
    for (const char* a : {"::", "::1", "2001:db8::1"}) EXPECT_FALSE(set.contains(addr(a))) << a;
}

TEST(CidrContains, Ipv6SlashZeroContainsEveryIpv6AddressOnly) {
    // The spec asks for both 0.0.0.0/0 and ::/0 to allow everyone; a mapped
    // IPv4 client counts as IPv4.
    auto set = set_of({"::/0"});
    for (const char* a : {"::", "::1", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}) {
        EXPECT_TRUE(set.contains(addr(a))) << a;
    }
    for (const char* a : {"1.2.3.4", "::ffff:1.2.3.4"}) EXPECT_FALSE(set.contains(addr(a))) << a;
}

TEST(CidrContains, Ipv6RangeBoundaries) {
    auto set = set_of({"2001:db8::/32"});
    EXPECT_TRUE(set.contains(addr("2001:db8::")));
    EXPECT_TRUE(set.contains(addr("2001:db8::1")));
    EXPECT_TRUE(set.contains(addr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(set.contains(addr("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(set.contains(addr("2001:db9::")));
    EXPECT_FALSE(set.contains(addr("::1")));
}

TEST(CidrContains, Ipv6PrefixesNotOnAByteBoundary) {
    auto set = set_of({"2001:db8:8000::/33", "fe80::/10", "2001:db8:1:2:8000::/65", "::2/127"});
    EXPECT_TRUE(set.contains(addr("2001:db8:8000::1")));
    EXPECT_TRUE(set.contains(addr("2001:db8:ffff::")));
    EXPECT_FALSE(set.contains(addr("2001:db8:7fff:ffff::")));
    EXPECT_TRUE(set.contains(addr("fe80::1")));
    EXPECT_TRUE(set.contains(addr("febf:ffff::")));
    EXPECT_FALSE(set.contains(addr("fec0::")));
    EXPECT_TRUE(set.contains(addr("2001:db8:1:2:8000::")));
    EXPECT_TRUE(set.contains(addr("2001:db8:1:2:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(set.contains(addr("2001:db8:1:2:7fff:ffff:ffff:ffff")));
    EXPECT_TRUE(set.contains(addr("::2")));
    EXPECT_TRUE(set.contains(addr("::3")));
    EXPECT_FALSE(set.contains(addr("::1")));
    EXPECT_FALSE(set.contains(addr("::4")));
}

TEST(CidrContains, Ipv4MappedClientMatchesIpv4Range) {
    auto set = set_of({"127.0.0.0/8"});
    EXPECT_TRUE(set.contains(addr("::ffff:127.0.0.1")));
    EXPECT_TRUE(set.contains(addr("::ffff:127.255.255.255")));
    EXPECT_FALSE(set.contains(addr("::ffff:128.0.0.1")));
    // Not mapped: ::127.0.0.1 (deprecated "compatible" form) and ::1 are IPv6.
    EXPECT_FALSE(set.contains(addr("::127.0.0.1")));
    EXPECT_FALSE(set.contains(addr("::1")));
}

TEST(CidrContains, MixedFamiliesInOneSet) {
    auto set = set_of({"10.0.0.0/8", "2001:db8::/32"});
    EXPECT_TRUE(set.contains(addr("10.1.1.1")));
    EXPECT_TRUE(set.contains(addr("::ffff:10.1.1.1")));
    EXPECT_TRUE(set.contains(addr("2001:db8::1")));
    EXPECT_FALSE(set.contains(addr("11.1.1.1")));
    EXPECT_FALSE(set.contains(addr("2001:db9::1")));
}

// ---------------------------------------------------------------- Policy

Policy policy(std::initializer_list<const char*> allow, std::initializer_list<const char*> deny) {
    Policy p;
    p.allow = set_of(allow);
    p.deny = set_of(deny);
    return p;
}

TEST(Policy, AllowedWhenInAllowAndNotInDeny) {
    auto p = policy({"192.168.1.0/24"}, {});
    EXPECT_EQ(p.decide(addr("192.168.1.10")), Decision::allowed);
}

TEST(Policy, NotAllowedWhenOutsideAllow) {
    auto p = policy({"192.168.1.0/24"}, {});
    EXPECT_EQ(p.decide(addr("192.168.2.10")), Decision::not_allowed);
    EXPECT_EQ(p.decide(addr("::1")), Decision::not_allowed);
}

TEST(Policy, DenyIsCheckedBeforeAllow) {
    auto p = policy({"10.0.0.0/8"}, {"10.0.0.5", "10.9.0.0/16"});
    EXPECT_EQ(p.decide(addr("10.0.0.5")), Decision::deny_list);
    EXPECT_EQ(p.decide(addr("10.9.1.1")), Decision::deny_list);
    EXPECT_EQ(p.decide(addr("10.0.0.6")), Decision::allowed);
    EXPECT_EQ(p.decide(addr("11.0.0.1")), Decision::not_allowed);
}

TEST(Policy, DenyOutsideAllowStillSaysDenyList) {
    auto p = policy({"10.0.0.0/8"}, {"203.0.113.0/24"});
    EXPECT_EQ(p.decide(addr("203.0.113.7")), Decision::deny_list);
}

TEST(Policy, EmptyAllowAllowsNobody) {
    Policy p;
    EXPECT_EQ(p.decide(addr("127.0.0.1")), Decision::not_allowed);
    EXPECT_EQ(p.decide(addr("::1")), Decision::not_allowed);
}

TEST(Policy, AllowEveryoneNeedsBothFamilies) {
    auto p = policy({"0.0.0.0/0", "::/0"}, {});
    for (const char* a : {"1.2.3.4", "::ffff:1.2.3.4", "2001:db8::1", "::1"}) {
        EXPECT_EQ(p.decide(addr(a)), Decision::allowed) << a;
    }
}

TEST(Policy, MappedClientIsJudgedAsIpv4) {
    auto p = policy({"127.0.0.0/8"}, {"127.0.0.2"});
    EXPECT_EQ(p.decide(addr("::ffff:127.0.0.1")), Decision::allowed);
    EXPECT_EQ(p.decide(addr("::ffff:127.0.0.2")), Decision::deny_list);
}

TEST(Policy, DecisionLabels) {
    EXPECT_STREQ(dsgw::access::to_string(Decision::allowed), "allowed");
    EXPECT_STREQ(dsgw::access::to_string(Decision::deny_list), "deny_list");
    EXPECT_STREQ(dsgw::access::to_string(Decision::not_allowed), "not_allowed");
}

TEST(Policy, DenyReasonLabelsFollowTheMetric) {
    using dsgw::access::DenyReason;
    const char* expected[] = {"deny_list", "not_allowed", "bad_proxy_header", "missing_key",
                              "bad_key"};
    for (std::size_t i = 0; i < dsgw::access::kDenyReasonCount; ++i)
        EXPECT_STREQ(dsgw::access::to_string(static_cast<DenyReason>(i)), expected[i]);
    EXPECT_EQ(dsgw::access::to_deny_reason(Decision::deny_list), DenyReason::deny_list);
    EXPECT_EQ(dsgw::access::to_deny_reason(Decision::not_allowed), DenyReason::not_allowed);
}

// ---------------------------------------------------------------- admission

using dsgw::access::AcceptAction;
using dsgw::access::admit_connection;
using dsgw::access::admit_proxied;
using dsgw::access::DenyReason;
using dsgw::access::judge_request;
using dsgw::access::ProxyHeader;
using dsgw::access::ProxyStatus;

// LAN clients allowed, one of them denied; load balancers at 10.0.0.0/24
// (not in allow: a trusted proxy needs no allow entry).
struct Listener {
    Policy rules = policy({"192.168.1.0/24", "::1/128"}, {"192.168.1.66", "10.0.0.66"});
    CidrSet proxies = set_of({"10.0.0.0/24", "2001:db8:ffff::/48"});
};

TEST(Admission, WithoutProxiesAllowDecidesAtAccept) {
    Listener l;
    auto a = admit_connection(addr("192.168.1.10"), l.rules, CidrSet{}, false);
    EXPECT_EQ(a.action, AcceptAction::admit);
    EXPECT_EQ(a.client, addr("192.168.1.10"));
    EXPECT_EQ(a.decision(), Decision::allowed);
    a = admit_connection(addr("203.0.113.7"), l.rules, CidrSet{}, false);
    EXPECT_EQ(a.action, AcceptAction::refuse);
    EXPECT_EQ(a.reason, DenyReason::not_allowed);
    EXPECT_EQ(a.decision(), Decision::not_allowed);
    a = admit_connection(addr("192.168.1.66"), l.rules, CidrSet{}, false);
    EXPECT_EQ(a.reason, DenyReason::deny_list);
    EXPECT_EQ(a.decision(), Decision::deny_list);
}

TEST(Admission, TrustedProxyIsAdmittedAndItsRequestsJudged) {
    Listener l;
    auto a = admit_connection(addr("10.0.0.2"), l.rules, l.proxies, false);
    EXPECT_EQ(a.action, AcceptAction::admit);
    EXPECT_EQ(a.client, addr("10.0.0.2"));
    // Per request, on the client it names.
    std::vector<std::string_view> lan{"192.168.1.10"}, outside{"203.0.113.7"},
        denied{"192.168.1.66"};
    auto fc = dsgw::access::resolve_forwarded_for(a.client, lan, l.proxies);
    EXPECT_EQ(judge_request(fc, l.rules), Decision::allowed);
    fc = dsgw::access::resolve_forwarded_for(a.client, outside, l.proxies);
    EXPECT_EQ(judge_request(fc, l.rules), Decision::not_allowed);
    fc = dsgw::access::resolve_forwarded_for(a.client, denied, l.proxies);
    EXPECT_EQ(judge_request(fc, l.rules), Decision::deny_list);
    // Without a header the proxy itself is the client, and it is not allowed.
    fc = dsgw::access::resolve_forwarded_for(a.client, {}, l.proxies);
    EXPECT_EQ(judge_request(fc, l.rules), Decision::not_allowed);
}

TEST(Admission, UntrustedPeerRequestsInheritTheConnectionDecision) {
    Listener l;
    std::vector<std::string_view> spoofed{"192.168.1.10"};
    auto fc = dsgw::access::resolve_forwarded_for(addr("203.0.113.7"), spoofed, l.proxies);
    EXPECT_EQ(fc.address, addr("203.0.113.7"));
    EXPECT_EQ(judge_request(fc, l.rules), Decision::allowed);  // judged at accept already
}

TEST(Admission, DenyListBeatsTrust) {
    Listener l;
    auto a = admit_connection(addr("10.0.0.66"), l.rules, l.proxies, false);
    EXPECT_EQ(a.action, AcceptAction::refuse);
    EXPECT_EQ(a.reason, DenyReason::deny_list);
    a = admit_connection(addr("10.0.0.66"), l.rules, l.proxies, true);
    EXPECT_EQ(a.reason, DenyReason::deny_list);
}

TEST(Admission, ProxyProtocolOnlyFromTrustedPeers) {
    Listener l;
    auto a = admit_connection(addr("10.0.0.2"), l.rules, l.proxies, true);
    EXPECT_EQ(a.action, AcceptAction::read_proxy_header);
    // An allowed LAN client is still not a proxy: it may not send the header.
    a = admit_connection(addr("192.168.1.10"), l.rules, l.proxies, true);
    EXPECT_EQ(a.action, AcceptAction::refuse);
    EXPECT_EQ(a.reason, DenyReason::bad_proxy_header);
    EXPECT_EQ(a.decision(), Decision::not_allowed);
    a = admit_connection(addr("::ffff:10.0.0.2"), l.rules, l.proxies, true);
    EXPECT_EQ(a.action, AcceptAction::read_proxy_header);
    EXPECT_EQ(a.client, addr("10.0.0.2"));
}

ProxyHeader header_from(const char* source) {
    ProxyHeader h;
    h.status = ProxyStatus::done;
    h.version = 2;
    h.source = dsgw::access::ProxyAddress{addr(source), 51234};
    h.destination = dsgw::access::ProxyAddress{addr("10.0.0.1"), 8443};
    return h;
}

TEST(Admission, PolicyAppliesToTheProxyHeaderSource) {
    Listener l;
    auto a = admit_proxied(header_from("192.168.1.10"), addr("10.0.0.2"), l.rules, l.proxies);
    EXPECT_EQ(a.action, AcceptAction::admit);
    EXPECT_EQ(a.client, addr("192.168.1.10"));
    a = admit_proxied(header_from("203.0.113.7"), addr("10.0.0.2"), l.rules, l.proxies);
    EXPECT_EQ(a.action, AcceptAction::refuse);
    EXPECT_EQ(a.reason, DenyReason::not_allowed);
    EXPECT_EQ(a.client, addr("203.0.113.7"));
    a = admit_proxied(header_from("192.168.1.66"), addr("10.0.0.2"), l.rules, l.proxies);
    EXPECT_EQ(a.reason, DenyReason::deny_list);
    a = admit_proxied(header_from("::ffff:192.168.1.10"), addr("10.0.0.2"), l.rules, l.proxies);
    EXPECT_EQ(a.action, AcceptAction::admit);
    EXPECT_EQ(a.client, addr("192.168.1.10"));
    a = admit_proxied(header_from("::1"), addr("10.0.0.2"), l.rules, l.proxies);
    EXPECT_EQ(a.action, AcceptAction::admit);
}

TEST(Admission, ProxyHeaderFromAnInnerProxyIsJudgedPerRequest) {
    // An L4 balancer in front of an L7 proxy: the PROXY source is itself trusted.
    Listener l;
    auto a = admit_proxied(header_from("10.0.0.9"), addr("10.0.0.2"), l.rules, l.proxies);
    EXPECT_EQ(a.action, AcceptAction::admit);
    std::vector<std::string_view> xff{"192.168.1.10"};
    auto fc = dsgw::access::resolve_forwarded_for(a.client, xff, l.proxies);
    EXPECT_EQ(fc.address, addr("192.168.1.10"));
    EXPECT_EQ(judge_request(fc, l.rules), Decision::allowed);
}

TEST(Admission, LocalAndUnknownHeadersMeanTheSocketPeer) {
    Listener l;
    ProxyHeader local;
    local.status = ProxyStatus::done;
    local.version = 2;
    local.is_local = true;
    auto a = admit_proxied(local, addr("10.0.0.2"), l.rules, l.proxies);
    EXPECT_EQ(a.action, AcceptAction::admit);  // the balancer's own health check
    EXPECT_EQ(a.client, addr("10.0.0.2"));
}

TEST(Admission, BadProxyHeaderIsRefused) {
    Listener l;
    for (auto status : {ProxyStatus::invalid, ProxyStatus::need_more}) {
        ProxyHeader h;
        h.status = status;
        auto a = admit_proxied(h, addr("10.0.0.2"), l.rules, l.proxies);
        EXPECT_EQ(a.action, AcceptAction::refuse);
        EXPECT_EQ(a.reason, DenyReason::bad_proxy_header);
        EXPECT_EQ(a.client, addr("10.0.0.2"));
    }
}

}  // namespace
