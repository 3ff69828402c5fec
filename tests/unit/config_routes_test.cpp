// The route matcher (SPEC §8): glob_match and match_route, which the request
// path runs, and route_shadows behind --check-config's warning.

#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/config/routes.hpp"

#include <fnmatch.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace dsgw::config;

namespace {

// ---------------------------------------------------------------- glob_match

TEST(GlobMatch, Literals) {
    EXPECT_TRUE(glob_match("deepseek-r1", "deepseek-r1"));
    EXPECT_FALSE(glob_match("deepseek-r1", "deepseek-r10"));
    EXPECT_FALSE(glob_match("deepseek-r1", "deepseek-r"));
    EXPECT_FALSE(glob_match("deepseek-r1", "DeepSeek-R1"));  // case matters
    EXPECT_FALSE(glob_match("a", ""));
    EXPECT_TRUE(is_literal_glob("deepseek-ai/DeepSeek-R1"));
    EXPECT_FALSE(is_literal_glob("a*"));
    EXPECT_FALSE(is_literal_glob("a?"));
    EXPECT_FALSE(is_literal_glob("a[b]"));
    EXPECT_FALSE(is_literal_glob("a\\b"));
}

TEST(GlobMatch, Stars) {
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("*", "deepseek-ai/DeepSeek-R1"));  // '/' is not special
    EXPECT_TRUE(glob_match("*", ".hidden"));                  // nor is a leading '.'
    EXPECT_TRUE(glob_match("deepseek-r1*", "deepseek-r1"));
    EXPECT_TRUE(glob_match("deepseek-r1*", "deepseek-r1-distill-qwen-7b"));
    EXPECT_FALSE(glob_match("deepseek-r1*", "deepseek-v3"));
    EXPECT_TRUE(glob_match("*-7b", "qwen-7b"));
    EXPECT_FALSE(glob_match("*-7b", "qwen-7b-instruct"));
    EXPECT_TRUE(glob_match("deepseek-*-7b", "deepseek-r1-distill-7b"));
    EXPECT_FALSE(glob_match("deepseek-*-7b", "deepseek-7b"));
    EXPECT_TRUE(glob_match("*r1*", "deepseek-r1-0528"));
    EXPECT_TRUE(glob_match("a/*/c", "a/b/x/c"));
}

TEST(GlobMatch, QuestionMarksBracketsEscapes) {
    EXPECT_TRUE(glob_match("v?", "v3"));
    EXPECT_FALSE(glob_match("v?", "v"));
    EXPECT_FALSE(glob_match("v?", "v30"));
    EXPECT_TRUE(glob_match("r[0-9]", "r1"));
    EXPECT_FALSE(glob_match("r[0-9]", "rx"));
    EXPECT_TRUE(glob_match("r[!0-9]", "rx"));
    EXPECT_TRUE(glob_match("r[^0-9]", "rx"));
    EXPECT_FALSE(glob_match("r[^0-9]", "r1"));
    EXPECT_TRUE(glob_match("r[[:digit:]]*", "r1-lite"));
    EXPECT_TRUE(glob_match("a[]]b", "a]b"));
    EXPECT_TRUE(glob_match("[a", "[a"));  // an unclosed '[' is itself
    EXPECT_TRUE(glob_match("a\\*", "a*"));
    EXPECT_FALSE(glob_match("a\\*", "ab"));
    EXPECT_FALSE(glob_match("a\\*", "a\\*"));
    EXPECT_TRUE(glob_match("\\*x", "*x"));
    EXPECT_FALSE(glob_match("\\*x", "ax"));
    EXPECT_FALSE(glob_match("a\\", "a\\"));  // a lone '\' at the end matches nothing
    EXPECT_FALSE(glob_match("a\\", "a"));
}

TEST(GlobMatch, NamesWithNulAndLongNames) {
    using namespace std::string_view_literals;
    // Literal and star forms see every byte.
    EXPECT_TRUE(glob_match("a*", "a\0b"sv));
    EXPECT_FALSE(glob_match("a", "a\0"sv));
    // fnmatch cannot: such a name matches none of its globs.
    EXPECT_FALSE(glob_match("a?b", "a\0b"sv));
    EXPECT_FALSE(glob_match("a*b*", "ab\0"sv));
    // Longer than the stack copies.
    const std::string name = "m-" + std::string(1000, 'x') + "-7b";
    EXPECT_TRUE(glob_match("m-*-?b", name));
    EXPECT_FALSE(glob_match("m-*-?c", name));
    const std::string glob = std::string(300, 'x') + "?";
    EXPECT_TRUE(glob_match(glob, std::string(301, 'x')));
}

TEST(GlobMatch, AgreesWithFnmatch) {
    const std::vector<std::string> globs = {
        "*",       "deepseek-*", "*-7b", "d*k",    "?",     "??*",    "[a-d]*",
        "[!a-d]*", "a\\*b",      "*\\?", "*[0-9]", "x*y*z", "*/*",    ".*",
        "\\\\*",   "[",          "[]",   "a[",     "*[",    "[]-a]*", "deepseek"};
    const std::vector<std::string> names = {
        "",    "a",  "d",   "deepseek", "deepseek-r1", "deepseek-r1-7b", "a*b", "ab",
        "x?",  "x9", "xyz", "x/y",      ".env",        "\\abc",          "[",   "a[",
        "zz[", "]",  "-",   "b"};
    for (const auto& g : globs)
        for (const auto& n : names)
            EXPECT_EQ(glob_match(g, n), ::fnmatch(g.c_str(), n.c_str(), 0) == 0)
                << "glob \"" << g << "\", name \"" << n << "\"";
}

// ---------------------------------------------------------------- match_route

RouteConfig route(std::vector<std::string> models, std::string path = "") {
    RouteConfig r;
    r.models = std::move(models);
    r.path = std::move(path);
    return r;
}

TEST(MatchRoute, FirstFitWins) {
    ListenerConfig lc;
    lc.routes = {route({"deepseek-r1*"}, "/v1/"), route({"deepseek-*"}), route({}, "/v1/"),
                 route({"*"})};
    const std::string r1 = "deepseek-r1-0528", v3 = "deepseek-v3", other = "qwen";
    EXPECT_EQ(match_route(lc, "/v1/chat/completions", &r1), 0);
    EXPECT_EQ(match_route(lc, "/v2/chat/completions", &r1), 1);  // route 0's path does not fit
    EXPECT_EQ(match_route(lc, "/v1/chat/completions", &v3), 1);
    EXPECT_EQ(match_route(lc, "/v1/chat/completions", &other), 2);
    EXPECT_EQ(match_route(lc, "/other", &other), 3);
}

TEST(MatchRoute, RequestsWithoutModelTakeOnlyRoutesWithoutGlobs) {
    ListenerConfig lc;
    lc.routes = {route({"*"}), route({"a"}, "/v1/"), route({}, "/v1/models")};
    EXPECT_EQ(match_route(lc, "/v1/models", nullptr), 2);
    EXPECT_EQ(match_route(lc, "/v1/embeddings", nullptr), -1);
    const std::string a = "a";
    EXPECT_EQ(match_route(lc, "/v1/models", &a), 0);
}

TEST(MatchRoute, PathIsAPlainPrefix) {
    ListenerConfig lc;
    lc.routes = {route({}, "/v1/embeddings")};
    EXPECT_EQ(match_route(lc, "/v1/embeddings", nullptr), 0);
    EXPECT_EQ(match_route(lc, "/v1/embeddings/x", nullptr), 0);
    EXPECT_EQ(match_route(lc, "/v1/embeddingsX", nullptr), 0);
    EXPECT_EQ(match_route(lc, "/v1/embedding", nullptr), -1);
    EXPECT_EQ(match_route(lc, "/V1/embeddings", nullptr), -1);
    EXPECT_EQ(match_route(lc, "", nullptr), -1);
}

TEST(MatchRoute, NoRoutesNoMatch) {
    ListenerConfig lc;
    const std::string m = "deepseek-r1";
    EXPECT_EQ(match_route(lc, "/v1/chat/completions", &m), -1);
    lc.routes = {route({"deepseek-v3", "deepseek-r1"})};  // any glob of the list
    EXPECT_EQ(match_route(lc, "/v1/chat/completions", &m), 0);
}

}  // namespace
