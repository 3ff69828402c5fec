// Request targets and Host values (request_target.hpp): RFC 9112 §3.2-3.3.

#include "deepseek_gateway/proxy/request_target.hpp"

#include <gtest/gtest.h>
#include <boost/url/authority_view.hpp>

#include <string>
#include <string_view>

namespace {

using dsgw::proxy::check_target;
using dsgw::proxy::TargetForm;
using dsgw::proxy::valid_host;

TEST(RequestTarget, OriginFormIsAccepted) {
    auto t = check_target("GET", "/v1/models?x=1");
    EXPECT_EQ(t.form, TargetForm::origin);
    EXPECT_TRUE(t.error.empty());
}

TEST(RequestTarget, AbsoluteFormGivesTheOriginFormAndTheAuthority) {
    auto t = check_target("GET", "http://example.test:8080/v1/models?x=1");
    EXPECT_EQ(t.form, TargetForm::absolute);
    EXPECT_TRUE(t.error.empty()) << t.error;
    EXPECT_EQ(t.authority, "example.test:8080");
    EXPECT_EQ(t.path, "/v1/models?x=1");

    t = check_target("POST", "HTTPS://Example.test");
    EXPECT_TRUE(t.error.empty()) << t.error;
    EXPECT_EQ(t.authority, "Example.test");
    EXPECT_EQ(t.path, "");  // the head writer sends "/"

    t = check_target("GET", "http://[::1]:9?q");
    EXPECT_TRUE(t.error.empty()) << t.error;
    EXPECT_EQ(t.authority, "[::1]:9");
    EXPECT_EQ(t.path, "?q");  // the head writer sends "/?q"
}

TEST(RequestTarget, AbsoluteFormsThatAreRefused) {
    for (std::string_view target :
         {"ftp://h/", "http://u@h/", "http://u:p@h/", "http:///x", "http://a b/", "http://h:x/",
          "http://h/#frag", "http:/x", "mailto:a@b", "example.test:443", "foo", "", "*x",
          "http://[zz]/"}) {
        auto t = check_target("GET", target);
        EXPECT_FALSE(t.error.empty()) << "accepted: " << target;
    }
}

TEST(RequestTarget, AsteriskOnlyWithOptions) {
    EXPECT_TRUE(check_target("OPTIONS", "*").error.empty());
    EXPECT_EQ(check_target("OPTIONS", "*").form, TargetForm::asterisk);
    EXPECT_FALSE(check_target("GET", "*").error.empty());
    EXPECT_FALSE(check_target("POST", "*").error.empty());
}

TEST(RequestTarget, AuthorityFormIsRefused) {
    auto t = check_target("CONNECT", "example.test:443");
    EXPECT_EQ(t.form, TargetForm::authority);
    EXPECT_FALSE(t.error.empty());
}

TEST(HostValue, ValidValues) {
    for (std::string_view host :
         {"example.com", "example.com:8080", "127.0.0.1:80", "[::1]:8080", "[::1]",
          "xn--bcher-kva.example", "a_b.example", "h:", "", "ex%41mple.com", "[v1.fe]",
          "[2001:db8::7]:443", "sub-delims!$&'()*+,;=.example",
          // A reg-name that starts like an IPv4 address (RFC 3986 §3.2.2's
          // first-match rule); Boost.URL 1.81 refuses it ("leftover").
          "1.2.3.4.example", "10.0.0.1x:80"}) {
        EXPECT_TRUE(valid_host(host)) << "refused: " << host;
    }
}

TEST(HostValue, InvalidValues) {
    for (std::string_view host :
         {"a/b", "a b", "u@h", "h?x", "h#x", "h\\x", "h:x", "h:8x", "[::1", "::1]", "[zz]", "h:1:2",
          "\xc3\xa9.example", "%zz.example", "h\t", "[::1]x", "a\"b", "<h>"}) {
        EXPECT_FALSE(valid_host(host)) << "accepted: " << host;
    }
}

// The fast path (plain names) must agree with Boost.URL's grammar, which
// decides everything else.
TEST(HostValue, AgreesWithBoostUrlOnEveryShortValue) {
    const std::string alphabet = "a0.-_~!:[]@/%?# \x7f\xc3";
    std::string v;
    int checked = 0;
    for (char c1 : alphabet)
        for (char c2 : alphabet)
            for (char c3 : alphabet) {
                v = {c1, c2, c3};
                auto a = boost::urls::parse_authority(v);
                const bool expected = a && !a->has_userinfo();
                EXPECT_EQ(valid_host(v), expected) << v;
                ++checked;
            }
    EXPECT_GT(checked, 1000);
}

}  // namespace
