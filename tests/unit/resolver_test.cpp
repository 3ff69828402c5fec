// Re-resolution of servers given by host name (upstreams[].resolve_interval):
// one round of upstream::re_resolve(), with a stand-in for getaddrinfo(), so
// nothing here waits for a timer or needs DNS. The thread that runs rounds
// every resolve_interval is exercised by tests/integration/dns_test.cpp.

#include "deepseek_gateway/upstream/resolver.hpp"
#include "deepseek_gateway/config/config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

namespace ip = boost::asio::ip;
using namespace std::chrono_literals;
using dsgw::config::Config;
using dsgw::upstream::re_resolve;
using dsgw::upstream::re_resolved;

std::vector<ip::address> addrs(std::initializer_list<const char*> v) {
    std::vector<ip::address> out;
    for (const char* a : v) out.push_back(ip::make_address(a));
    return out;
}

// Upstream "pool": gpu.lan:8000 (host name, resolved to `gpu`), then
// 10.0.0.9:8000 (an IP literal).
Config config_with(std::vector<ip::address> gpu) {
    Config c;
    auto& u = c.upstreams.emplace_back();
    u.name = "pool";
    auto& named = u.servers.emplace_back();
    named.address = {"gpu.lan", 8000};
    named.host_name = true;
    named.resolved = std::move(gpu);
    auto& literal = u.servers.emplace_back();
    literal.address = {"10.0.0.9", 8000};
    literal.resolved = addrs({"10.0.0.9"});
    return c;
}

// What the stand-in DNS answers, and who asked.
struct FakeDns {
    std::map<std::string, std::vector<ip::address>> answers;
    std::vector<std::string> asked;
    dsgw::upstream::ResolveFn fn() {
        return [this](const std::string& host,
                      std::vector<ip::address>& out) -> std::optional<std::string> {
            asked.push_back(host);
            auto it = answers.find(host);
            if (it == answers.end()) return std::string("Name or service not known");
            out = it->second;
            return std::nullopt;
        };
    }
};

TEST(ReResolve, SameAddressesInAnotherOrderAreNoChange) {
    auto cfg = config_with(addrs({"10.0.0.5", "10.0.0.6"}));
    FakeDns dns;
    dns.answers["gpu.lan"] = addrs({"10.0.0.6", "10.0.0.5"});
    std::set<std::string> failing;
    auto r = re_resolve(cfg, 0, dns.fn(), failing);
    EXPECT_TRUE(r.changes.empty());
    EXPECT_TRUE(r.warnings.empty());
    EXPECT_TRUE(r.notes.empty());
    EXPECT_EQ(dns.asked, std::vector<std::string>{"gpu.lan"}) << "IP literals are not resolved";
}

TEST(ReResolve, ANewSetIsAChangeOfThatServerSorted) {
    auto cfg = config_with(addrs({"10.0.0.5"}));
    FakeDns dns;
    dns.answers["gpu.lan"] = addrs({"10.0.0.7", "10.0.0.5", "10.0.0.7"});
    std::set<std::string> failing;
    auto r = re_resolve(cfg, 0, dns.fn(), failing);
    ASSERT_EQ(r.changes.size(), 1u);
    EXPECT_EQ(r.changes[0].upstream, 0u);
    EXPECT_EQ(r.changes[0].server, 0u);
    EXPECT_EQ(r.changes[0].addresses, addrs({"10.0.0.5", "10.0.0.7"}));
}

TEST(ReResolve, AFailureKeepsTheAddressesAndWarnsOnceUntilItResolvesAgain) {
    auto cfg = config_with(addrs({"10.0.0.5"}));
    FakeDns dns;  // knows no name
    std::set<std::string> failing;
    auto first = re_resolve(cfg, 0, dns.fn(), failing);
    EXPECT_TRUE(first.changes.empty()) << "a failed lookup removes nothing";
    ASSERT_EQ(first.warnings.size(), 1u);
    EXPECT_EQ(first.warnings[0],
              "upstream pool server gpu.lan:8000: cannot resolve \"gpu.lan\": Name or service "
              "not known; keeping its addresses (10.0.0.5) until it resolves again");
    for (int i = 0; i < 3; ++i) {
        auto again = re_resolve(cfg, 0, dns.fn(), failing);
        EXPECT_TRUE(again.warnings.empty()) << "warned once, not every interval";
        EXPECT_EQ(again.debug.size(), 1u);
        EXPECT_TRUE(again.changes.empty());
    }
    dns.answers["gpu.lan"] = addrs({"10.0.0.5"});
    auto back = re_resolve(cfg, 0, dns.fn(), failing);
    EXPECT_TRUE(back.changes.empty());
    EXPECT_EQ(back.notes, std::vector<std::string>{
                              "upstream pool server gpu.lan:8000: \"gpu.lan\" resolves again"});
    // And a later failure is news again.
    dns.answers.clear();
    EXPECT_EQ(re_resolve(cfg, 0, dns.fn(), failing).warnings.size(), 1u);
}

TEST(ReResolve, OnlyUpstreamsWithHostNamesAndAnIntervalAreReResolved) {
    auto cfg = config_with(addrs({"10.0.0.5"}));
    EXPECT_TRUE(re_resolved(cfg.upstreams[0]));
    cfg.upstreams[0].resolve_interval = 0s;
    EXPECT_FALSE(re_resolved(cfg.upstreams[0])) << "0 = never";
    auto literal_only = config_with({});
    literal_only.upstreams[0].servers.erase(literal_only.upstreams[0].servers.begin());
    EXPECT_FALSE(re_resolved(literal_only.upstreams[0]));
}

}  // namespace
