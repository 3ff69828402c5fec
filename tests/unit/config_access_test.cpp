// listeners[].access.trusted_proxies / proxy_protocol and listeners[].auth:
// values, defaults, the keys file read at load, and every error with its path.

#include "config_checks.hpp"
#include "deepseek_gateway/config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

using namespace dsgw::config;
using namespace dsgw::config::testing;
namespace ip = boost::asio::ip;

namespace {

std::string with_listener(const std::string& listener) {
    return "listeners: [{name: l, address: 127.0.0.1:8080, upstream: u, " + listener +
           "}]\nupstreams: [{name: u, servers: [{address: 127.0.0.1:9001}]}]\n";
}

std::string with_access(const std::string& extra) {
    return with_listener("access: {allow: [192.168.1.0/24], " + extra + "}");
}

// A keys file in /tmp, removed with the object.
struct KeysFile {
    std::string path;
    explicit KeysFile(const std::string& text) {
        char tmpl[] = "/tmp/dsgw-config-keys-XXXXXX";
        int fd = ::mkstemp(tmpl);
        EXPECT_GE(fd, 0);
        ::close(fd);
        path = tmpl;
        write(text);
    }
    ~KeysFile() { ::unlink(path.c_str()); }
    void write(const std::string& text) const { std::ofstream(path, std::ios::trunc) << text; }
};

std::string entry(const std::string& name, const std::string& key) {
    return "- name: " + name + "\n  sha256: " + dsgw::access::to_hex(dsgw::access::sha256(key)) +
           "\n";
}

// ---------------------------------------------------------------- access

TEST(ConfigAccess, DefaultsTrustNobody) {
    auto r = load_config_string(with_access("on_deny: close"));
    const auto& l = loaded_listener(r);
    EXPECT_TRUE(l.access.trusted_proxies.empty());
    EXPECT_FALSE(l.access.proxy_protocol);
    EXPECT_FALSE(l.auth.enabled());
    EXPECT_EQ(l.auth.keys, nullptr);
    EXPECT_FALSE(l.auth.forward);
}

TEST(ConfigAccess, TrustedProxiesAreCidrs) {
    auto r = load_config_string(
        with_access("trusted_proxies: [10.0.0.0/24, \"2001:db8:ffff::/48\", 172.16.0.5]"));
    const auto& l = loaded_listener(r);
    EXPECT_EQ(l.access.trusted_proxies.to_strings(),
              (std::vector<std::string>{"10.0.0.0/24", "172.16.0.5/32", "2001:db8:ffff::/48"}));
    EXPECT_TRUE(l.access.trusted_proxies.contains(ip::make_address("::ffff:10.0.0.9")));
    EXPECT_FALSE(l.access.proxy_protocol);
    // An empty list is allowed: it trusts nobody.
    EXPECT_TRUE(load_config_string(with_access("trusted_proxies: []")).errors.empty());
}

TEST(ConfigAccess, BadTrustedProxyNamesItsIndex) {
    expect_one_error(with_access("trusted_proxies: [10.0.0.0/24, 10.0.0.1/8]"),
                     "listeners[0].access.trusted_proxies[1]: address has bits set below the "
                     "prefix; did you mean \"10.0.0.0/8\"? (got \"10.0.0.1/8\")");
    expect_one_error(with_access("trusted_proxies: [lb.example.com]"),
                     "listeners[0].access.trusted_proxies[0]: not an IP address or CIDR range (got "
                     "\"lb.example.com\")");
    auto r = load_config_string(with_access("trusted_proxies: 10.0.0.0/24"));
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_EQ(r.errors[0].rfind("listeners[0].access.trusted_proxies: ", 0), 0u) << r.errors[0];
}

TEST(ConfigAccess, ProxyProtocolWithTrustedProxies) {
    auto r =
        load_config_string(with_access("trusted_proxies: [10.0.0.0/24], proxy_protocol: true"));
    const auto& l = loaded_listener(r);
    EXPECT_TRUE(l.access.proxy_protocol);
    r = load_config_string(with_access("trusted_proxies: [10.0.0.0/24], proxy_protocol: false"));
    EXPECT_FALSE(loaded_listener(r).access.proxy_protocol);
    // false needs nothing.
    EXPECT_TRUE(load_config_string(with_access("proxy_protocol: false")).errors.empty());
}

TEST(ConfigAccess, ProxyProtocolNeedsTrustedProxies) {
    const std::string why =
        "listeners[0].access.proxy_protocol: needs trusted_proxies (the load balancers allowed to "
        "send the PROXY header; a connection from any other peer is closed)";
    expect_one_error(with_access("proxy_protocol: true"), why);
    expect_one_error(with_access("trusted_proxies: [], proxy_protocol: true"), why);
    // A list whose entry is broken reports that entry, not this.
    expect_one_error(with_access("trusted_proxies: [junk], proxy_protocol: true"),
                     "listeners[0].access.trusted_proxies[0]: not an IP address or CIDR range "
                     "(got \"junk\")");
}

TEST(ConfigAccess, ProxyProtocolIsABoolean) {
    auto r = load_config_string(with_access("trusted_proxies: [10.0.0.0/24], proxy_protocol: v2"));
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_EQ(r.errors[0].rfind("listeners[0].access.proxy_protocol: ", 0), 0u) << r.errors[0];
}

TEST(ConfigAccess, TyposAreStillCaught) {
    auto r = load_config_string(with_access("trusted_proxy: [10.0.0.0/24]"));
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_NE(r.errors[0].find("did you mean \"trusted_proxies\""), std::string::npos)
        << r.errors[0];
}

// ---------------------------------------------------------------- auth

const std::string kAllow = "access: {allow: [127.0.0.0/8]}";

TEST(ConfigAuth, KeysFileIsLoaded) {
    KeysFile f(entry("team-a", "key-a") + entry("team-b", "key-b"));
    auto r = load_config_string(with_listener(kAllow + ", auth: {api_keys_file: " + f.path + "}"));
    const auto& l = loaded_listener(r);
    ASSERT_TRUE(l.auth.enabled());
    EXPECT_EQ(l.auth.api_keys_file, f.path);
    EXPECT_FALSE(l.auth.forward);
    ASSERT_EQ(l.auth.keys->size(), 2u);
    EXPECT_EQ(l.auth.keys->verify("key-b"), "team-b");
    EXPECT_TRUE(r.warnings.empty()) << joined(r.warnings);
}

TEST(ConfigAuth, ForwardIsABoolean) {
    KeysFile f(entry("team-a", "key-a"));
    auto r = load_config_string(
        with_listener(kAllow + ", auth: {api_keys_file: " + f.path + ", forward: true}"));
    EXPECT_TRUE(loaded_listener(r).auth.forward);
    r = load_config_string(
        with_listener(kAllow + ", auth: {api_keys_file: " + f.path + ", forward: maybe}"));
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_EQ(r.errors[0].rfind("listeners[0].auth.forward: ", 0), 0u) << r.errors[0];
}

TEST(ConfigAuth, EveryLoadReReadsTheFile) {
    // What a SIGHUP does: the same YAML, a changed keys file.
    KeysFile f(entry("team-a", "key-a"));
    const auto yaml = with_listener(kAllow + ", auth: {api_keys_file: " + f.path + "}");
    auto first = load_config_string(yaml);
    EXPECT_EQ(loaded_listener(first).auth.keys->verify("key-a"), "team-a");
    f.write(entry("team-c", "key-c"));
    auto second = load_config_string(yaml);
    EXPECT_FALSE(loaded_listener(second).auth.keys->verify("key-a"));
    EXPECT_EQ(loaded_listener(second).auth.keys->verify("key-c"), "team-c");
    // The first configuration keeps its own keys.
    EXPECT_EQ(loaded_listener(first).auth.keys->verify("key-a"), "team-a");
}

TEST(ConfigAuth, ErrorsInTheFileNameKeyPathFileAndLine) {
    KeysFile f(entry("team-a", "key-a") + "- name: team-b\n  sha256: not-a-hash\n");
    expect_one_error(
        with_listener(kAllow + ", auth: {api_keys_file: " + f.path + "}"),
        "listeners[0].auth.api_keys_file: " + f.path +
            ":4: sha256: must be 64 hexadecimal digits, the SHA-256 of the key as "
            "`deepseek-gateway hash-key` prints it, never the key itself (got 10 characters)");
}

TEST(ConfigAuth, UnreadableFileIsAnError) {
    expect_one_error(with_listener(kAllow + ", auth: {api_keys_file: /nonexistent/keys.yaml}"),
                     "listeners[0].auth.api_keys_file: cannot read \"/nonexistent/keys.yaml\": No "
                     "such file or directory");
}

TEST(ConfigAuth, FileWarningsCarryTheKeyPath) {
    KeysFile f("[]\n");
    auto r = load_config_string(with_listener(kAllow + ", auth: {api_keys_file: " + f.path + "}"));
    const auto& l = loaded_listener(r);
    ASSERT_TRUE(l.auth.enabled());
    EXPECT_TRUE(l.auth.keys->empty());
    EXPECT_EQ(r.warnings, std::vector<std::string>{"listeners[0].auth.api_keys_file: " + f.path +
                                                   ": lists no keys; every request will be "
                                                   "refused with 401"});
}

TEST(ConfigAuth, ShapeErrors) {
    expect_one_error(with_listener(kAllow + ", auth: {forward: true}"),
                     "listeners[0].auth.api_keys_file: required");
    expect_one_error(with_listener(kAllow + ", auth: {api_keys_file: \"\"}"),
                     "listeners[0].auth.api_keys_file: must not be empty");
    KeysFile f(entry("team-a", "key-a"));
    auto r = load_config_string(
        with_listener(kAllow + ", auth: {api_keys_file: " + f.path + ", keys_file: x}"));
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_EQ(r.errors[0].rfind("listeners[0].auth.keys_file: unknown key", 0), 0u) << r.errors[0];
    r = load_config_string(with_listener(kAllow + ", auth: " + f.path));
    ASSERT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_EQ(r.errors[0].rfind("listeners[0].auth: ", 0), 0u) << r.errors[0];
}

TEST(ConfigAuth, EachListenerHasItsOwnKeys) {
    KeysFile a(entry("team-a", "key-a"));
    KeysFile b(entry("team-b", "key-b"));
    auto r = load_config_string(
        "listeners:\n"
        "  - {name: one, address: 127.0.0.1:8080, upstream: u, " +
        kAllow + ", auth: {api_keys_file: " + a.path +
        "}}\n"
        "  - {name: two, address: 127.0.0.1:8081, upstream: u, " +
        kAllow + ", auth: {api_keys_file: " + b.path +
        "}}\n"
        "  - {name: open, address: 127.0.0.1:8082, upstream: u, " +
        kAllow +
        "}\n"
        "upstreams: [{name: u, servers: [{address: 127.0.0.1:9001}]}]\n");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    const auto& ls = r.config->listeners;
    EXPECT_EQ(ls[0].auth.keys->verify("key-a"), "team-a");
    EXPECT_FALSE(ls[0].auth.keys->verify("key-b"));
    EXPECT_EQ(ls[1].auth.keys->verify("key-b"), "team-b");
    EXPECT_FALSE(ls[2].auth.enabled());
}

}  // namespace
