// listeners[].routes (SPEC §8): values and defaults, every error with its
// path, the warning for a route an earlier one shadows, and the matcher
// (glob_match, match_route) the request path runs.

#include "config_checks.hpp"
#include "deepseek_gateway/config/config.hpp"
#include "deepseek_gateway/config/routes.hpp"

#include <fnmatch.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

using namespace dsgw::config;
using namespace dsgw::config::testing;

namespace {

const std::string kUpstreams =
    "upstreams:\n"
    "  - {name: u, servers: [{address: 127.0.0.1:9001}]}\n"
    "  - {name: r1-pool, servers: [{address: 127.0.0.1:9002}]}\n"
    "  - {name: embed-pool, servers: [{address: 127.0.0.1:9003}]}\n";

// One listener with `routes` (a YAML flow list) and `extra` listener keys.
std::string with_routes(const std::string& routes, const std::string& extra = "upstream: u") {
    return "listeners: [{name: l, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, " +
           extra + (extra.empty() ? "" : ", ") + "routes: " + routes + "}]\n" + kUpstreams;
}

// The warnings about routes (not the one about an upstream no route uses).
std::vector<std::string> route_warnings(const LoadResult& r) {
    std::vector<std::string> out;
    for (const auto& w : r.warnings)
        if (w.starts_with("listeners[")) out.push_back(w);
    return out;
}

// The same, of a configuration that must load.
std::vector<std::string> warnings_of(const std::string& routes) {
    auto r = load_config_string(with_routes(routes));
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_NE(r.config, nullptr);
    return route_warnings(r);
}

// A keys file in /tmp, removed with the object.
struct KeysFile {
    std::string path;
    explicit KeysFile(const std::string& text) {
        char tmpl[] = "/tmp/dsgw-routes-keys-XXXXXX";
        int fd = ::mkstemp(tmpl);
        EXPECT_GE(fd, 0);
        ::close(fd);
        path = tmpl;
        std::ofstream(path, std::ios::trunc) << text;
    }
    ~KeysFile() { ::unlink(path.c_str()); }
};

std::string entry(const std::string& name, const std::string& key) {
    return "- name: " + name + "\n  sha256: " + dsgw::access::to_hex(dsgw::access::sha256(key)) +
           "\n";
}

// ---------------------------------------------------------------- loading

TEST(ConfigRoutes, TheSpecExampleLoads) {
    auto r = load_config_string(
        with_routes("[{name: r1, match: {model: \"deepseek-r1*\", path: /v1/}, upstream: r1-pool, "
                    "rewrite_model: deepseek-ai/DeepSeek-R1}, "
                    "{name: embeddings, match: {path: /v1/embeddings}, upstream: embed-pool}]",
                    "upstream: u"));
    const auto& l = loaded_listener(r);
    EXPECT_TRUE(r.warnings.empty()) << joined(r.warnings);
    EXPECT_TRUE(l.has_upstream());
    EXPECT_EQ(l.upstream_index, 0u);
    ASSERT_EQ(l.routes.size(), 2u);
    const RouteConfig& r1 = l.routes[0];
    EXPECT_EQ(r1.name, "r1");
    EXPECT_EQ(r1.models, std::vector<std::string>{"deepseek-r1*"});
    EXPECT_EQ(r1.path, "/v1/");
    EXPECT_EQ(r1.upstream, "r1-pool");
    EXPECT_EQ(r1.upstream_index, 1u);
    EXPECT_EQ(r1.rewrite_model, "deepseek-ai/DeepSeek-R1");
    EXPECT_TRUE(r1.api_keys.empty());
    const RouteConfig& emb = l.routes[1];
    EXPECT_EQ(emb.name, "embeddings");
    EXPECT_TRUE(emb.models.empty());
    EXPECT_EQ(emb.path, "/v1/embeddings");
    EXPECT_EQ(emb.upstream_index, 2u);
    EXPECT_TRUE(emb.rewrite_model.empty());
}

TEST(ConfigRoutes, DefaultsAndLists) {
    auto r = load_config_string(
        with_routes("[{match: {model: [deepseek-v3, \"deepseek-chat*\"]}, upstream: u}, "
                    "{match: {path: /v1/embeddings}, upstream: embed-pool}, "
                    "{name: third, match: {model: x}, upstream: r1-pool}]",
                    ""));
    const auto& l = loaded_listener(r);
    EXPECT_FALSE(l.has_upstream());
    EXPECT_TRUE(l.upstream.empty());
    ASSERT_EQ(l.routes.size(), 3u);
    EXPECT_EQ(l.routes[0].name, "route-1");
    EXPECT_EQ(l.routes[0].models, (std::vector<std::string>{"deepseek-v3", "deepseek-chat*"}));
    EXPECT_TRUE(l.routes[0].path.empty());
    EXPECT_EQ(l.routes[1].name, "route-2");
    EXPECT_EQ(l.routes[2].name, "third");
    // Every upstream is used by a route: no "not used" warning.
    EXPECT_TRUE(r.warnings.empty()) << joined(r.warnings);
}

TEST(ConfigRoutes, UpstreamIsOptionalOnlyWithRoutes) {
    auto r = load_config_string(with_routes("[{match: {model: x}, upstream: u}]", ""));
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
    // An empty list is no routes: the listener needs its upstream.
    r = load_config_string(with_routes("[]", ""));
    EXPECT_EQ(r.errors, std::vector<std::string>{"listeners[0].upstream: required"})
        << joined(r.errors);
    r = load_config_string(with_routes("[]", "upstream: u"));
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_TRUE(loaded_listener(r).routes.empty());
}

TEST(ConfigRoutes, RouteUpstreamMustExist) {
    expect_one_error(
        with_routes("[{match: {model: a}, upstream: u}, {match: {model: b}, "
                    "upstream: nowhere}]"),
        "listeners[0].routes[1].upstream: no upstream named \"nowhere\" (upstreams: u, "
        "r1-pool, embed-pool)");
    expect_one_error(with_routes("[{match: {model: a}, upstream: r1-pol}]"),
                     "listeners[0].routes[0].upstream: no upstream named \"r1-pol\" (did you mean "
                     "\"r1-pool\"?)");
}

TEST(ConfigRoutes, RequiredKeys) {
    expect_one_error(with_routes("[{match: {model: a}}]"),
                     "listeners[0].routes[0].upstream: required");
    expect_one_error(with_routes("[{upstream: u}]"), "listeners[0].routes[0].match: required");
    expect_one_error(with_routes("[{match: {}, upstream: u}]"),
                     "listeners[0].routes[0].match: needs model, path or both");
    expect_one_error(with_routes("[{match: /v1/, upstream: u}]"),
                     "listeners[0].routes[0].match: expected a mapping (got \"/v1/\")");
    expect_one_error(with_routes("[x]"), "listeners[0].routes[0]: expected a mapping (got \"x\")");
    expect_one_error(with_routes("{match: {model: a}, upstream: u}"),
                     "listeners[0].routes: expected a list (got a mapping)");
}

TEST(ConfigRoutes, UnknownKeysAreErrors) {
    expect_one_error(with_routes("[{match: {model: a}, upstream: u, rewrite_models: b}]"),
                     "listeners[0].routes[0].rewrite_models: unknown key (did you mean "
                     "\"rewrite_model\"?)");
    expect_one_error(with_routes("[{match: {model: a}, upstream: u, apikeys: [b]}]"),
                     "listeners[0].routes[0].apikeys: unknown key (did you mean \"api_keys\"?)");
    expect_one_error(with_routes("[{match: {model: a, host: b}, upstream: u}]"),
                     "listeners[0].routes[0].match.host: unknown key (expected one of: model, "
                     "path)");
    // A typo of model leaves the match without model or path: both are said.
    auto r = load_config_string(with_routes("[{match: {models: a}, upstream: u}]"));
    EXPECT_EQ(r.errors, (std::vector<std::string>{
                            "listeners[0].routes[0].match: needs model, path or both",
                            "listeners[0].routes[0].match.models: unknown key (did you mean "
                            "\"model\"?)"}))
        << joined(r.errors);
}

TEST(ConfigRoutes, ModelGlobs) {
    const std::string p = "listeners[0].routes[0].match.model";
    auto route = [](const std::string& model) {
        return with_routes("[{match: {model: " + model + "}, upstream: u}]");
    };
    expect_one_error(route("\"\""), p + ": must not be empty");
    expect_one_error(route("[]"), p + ": must list at least one glob");
    expect_one_error(route("[a, \"\"]"), p + "[1]: must not be empty");
    expect_one_error(route("{a: b}"), p + ": expected a glob or a list of globs (got a mapping)");
    expect_one_error(route("[[a]]"), p + "[0]: expected a string (got a list)");
    expect_one_error(route("\"a\\0b\""), p + ": must not contain a NUL character");
    expect_one_error(route("'deepseek\\'"),
                     p + ": ends with a lone '\\', so it matches nothing; write '\\\\' for a "
                         "backslash (got \"deepseek\\\")");
    // An escaped backslash at the end is fine.
    EXPECT_TRUE(load_config_string(route("'a\\\\'")).errors.empty());
    const std::string longest(256, 'm');
    EXPECT_TRUE(load_config_string(route(longest)).errors.empty());
    expect_one_error(route(longest + "m"), p + ": must be at most 256 bytes (got 257)");
    expect_one_error(route("[a, " + longest + "m]"),
                     p + "[1]: must be at most 256 bytes (got 257)");
}

TEST(ConfigRoutes, PathPrefix) {
    const std::string p = "listeners[0].routes[0].match.path";
    auto route = [](const std::string& path) {
        return with_routes("[{match: {path: " + path + "}, upstream: u}]");
    };
    expect_one_error(route("v1/"), p + ": must start with \"/\" (got \"v1/\")");
    expect_one_error(route("\"\""), p + ": must start with \"/\" (got \"\")");
    expect_one_error(route("\"/v1/models?x=1\""),
                     p + ": must not contain \"?\": the path is matched without its query (got "
                         "\"/v1/models?x=1\")");
    expect_one_error(route("[/v1/]"), p + ": expected a string (got a list)");
    EXPECT_EQ(loaded_listener(load_config_string(route("/"))).routes.at(0).path, "/");
}

TEST(ConfigRoutes, Names) {
    const std::string p = "listeners[0].routes[0].name";
    auto named = [](const std::string& name) {
        return with_routes("[{name: " + name + ", match: {model: a}, upstream: u}]");
    };
    expect_one_error(named("\"\""), p + ": must not be empty");
    expect_one_error(named("\"r 1\""), p + ": must be 1-64 letters, digits, '_', '-' or '.' (got "
                                           "\"r 1\")");
    expect_one_error(named("default"), p + ": \"default\" is reserved: it labels requests sent "
                                           "to the listener's upstream");
    expect_one_error(named("none"),
                     p + ": \"none\" is reserved: it labels requests that no route matched");
    expect_one_error(with_routes("[{name: a, match: {model: a}, upstream: u}, {name: a, match: "
                                 "{model: b}, upstream: u}]"),
                     "listeners[0].routes[1].name: duplicate name \"a\" (also "
                     "listeners[0].routes[0])");
    expect_one_error(with_routes("[{name: route-2, match: {model: a}, upstream: u}, {match: "
                                 "{model: b}, upstream: u}]"),
                     "listeners[0].routes[1].name: the default name \"route-2\" is taken by "
                     "listeners[0].routes[0]; give this route a name");
    // Names are per listener.
    auto r = load_config_string(
        "listeners:\n"
        "  - {name: a, address: 127.0.0.1:8080, access: {allow: [127.0.0.0/8]}, routes: [{name: "
        "x, match: {model: a}, upstream: u}]}\n"
        "  - {name: b, address: 127.0.0.1:8081, access: {allow: [127.0.0.0/8]}, routes: [{name: "
        "x, match: {model: a}, upstream: u}]}\n"
        "upstreams: [{name: u, servers: [{address: 127.0.0.1:9001}]}]\n");
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
    // A bad name is reported once, not again as a duplicate.
    auto twice = load_config_string(with_routes(
        "[{name: none, match: {model: a}, upstream: u}, {name: none, match: {model: b}, "
        "upstream: u}]"));
    EXPECT_EQ(twice.errors.size(), 2u) << joined(twice.errors);
}

TEST(ConfigRoutes, RewriteModel) {
    auto r = load_config_string(
        with_routes("[{match: {path: /v1/embeddings}, upstream: u, rewrite_model: bge-m3}]"));
    // Allowed on a path-only route too: every request there gets that model.
    EXPECT_EQ(loaded_listener(r).routes.at(0).rewrite_model, "bge-m3");
    expect_one_error(
        with_routes("[{match: {model: a}, upstream: u, rewrite_model: \"\"}]"),
        "listeners[0].routes[0].rewrite_model: must not be empty; leave rewrite_model out to send "
        "the client's name");
}

TEST(ConfigRoutes, ApiKeysNeedTheListenersAuth) {
    expect_one_error(with_routes("[{match: {model: a}, upstream: u, api_keys: [team-a]}]"),
                     "listeners[0].routes[0].api_keys: needs auth on the listener: these are "
                     "names from its api_keys_file");
}

TEST(ConfigRoutes, ApiKeysAreNamesFromTheKeysFile) {
    // Two entries may share a name (a key rotation).
    KeysFile f(entry("team-a", "a1") + entry("team-a", "a2") + entry("team-b", "b"));
    const std::string auth = "upstream: u, auth: {api_keys_file: " + f.path + "}";
    auto r = load_config_string(
        with_routes("[{match: {model: a}, upstream: u, api_keys: [team-a, team-b]}]", auth));
    EXPECT_EQ(loaded_listener(r).routes.at(0).api_keys,
              (std::vector<std::string>{"team-a", "team-b"}));
    expect_one_error(
        with_routes("[{match: {model: a}, upstream: u, api_keys: [team-a, team-c]}]", auth),
        "listeners[0].routes[0].api_keys[1]: no key named \"team-c\" in " + f.path +
            " (did you mean \"team-a\"?)");
    expect_one_error(with_routes("[{match: {model: a}, upstream: u, api_keys: [ops]}]", auth),
                     "listeners[0].routes[0].api_keys[0]: no key named \"ops\" in " + f.path);
    expect_one_error(
        with_routes("[{match: {model: a}, upstream: u, api_keys: []}]", auth),
        "listeners[0].routes[0].api_keys: must list at least one key name; leave api_keys out to "
        "let every client use this route");
    expect_one_error(with_routes("[{match: {model: a}, upstream: u, api_keys: team-a}]", auth),
                     "listeners[0].routes[0].api_keys: expected a list (got \"team-a\")");
}

TEST(ConfigRoutes, AnUnreadableKeysFileIsReportedOnce) {
    auto r = load_config_string(
        with_routes("[{match: {model: a}, upstream: u, api_keys: [team-a]}]",
                    "upstream: u, auth: {api_keys_file: /nonexistent/keys.yaml}"));
    EXPECT_EQ(r.errors,
              std::vector<std::string>{"listeners[0].auth.api_keys_file: cannot read "
                                       "\"/nonexistent/keys.yaml\": No such file or directory"})
        << joined(r.errors);
}

// ---------------------------------------------------------------- shadowing

std::string shadow_warning(int later, const std::string& later_name, int earlier,
                           const std::string& earlier_name) {
    return "listeners[0].routes[" + std::to_string(later) + "]: route \"" + later_name +
           "\" is never used: every request it matches is matched first by "
           "listeners[0].routes[" +
           std::to_string(earlier) + "] (\"" + earlier_name + "\")";
}

TEST(ConfigRoutesShadowing, ACompletelyShadowedRouteIsAWarning) {
    // No model on the earlier route: any model under its path.
    EXPECT_EQ(warnings_of("[{name: v1, match: {path: /v1/}, upstream: u}, "
                          "{name: chat, match: {path: /v1/chat, model: x}, upstream: r1-pool}]"),
              std::vector<std::string>{shadow_warning(1, "chat", 0, "v1")});
    // "*" covers every glob.
    EXPECT_EQ(warnings_of("[{name: all, match: {model: \"*\"}, upstream: u}, "
                          "{name: r1, match: {model: \"deepseek-r1*\", path: /v1/}, "
                          "upstream: r1-pool}]"),
              std::vector<std::string>{shadow_warning(1, "r1", 0, "all")});
    // A literal name the earlier glob matches; a later identical glob.
    EXPECT_EQ(warnings_of("[{name: ds, match: {model: [\"deepseek-*\", \"q?\"]}, upstream: u}, "
                          "{name: r1, match: {model: [deepseek-r1, \"q?\"]}, upstream: r1-pool}]"),
              std::vector<std::string>{shadow_warning(1, "r1", 0, "ds")});
    // Same path prefix, and the unnamed default name in the message.
    EXPECT_EQ(warnings_of("[{match: {path: /v1/}, upstream: u}, {match: {path: /v1/}, "
                          "upstream: r1-pool}]"),
              std::vector<std::string>{shadow_warning(1, "route-2", 0, "route-1")});
    // One warning per shadowed route, naming the first route that shadows it.
    EXPECT_EQ(
        warnings_of("[{name: a, match: {path: /}, upstream: u}, "
                    "{name: b, match: {path: /v1/}, upstream: r1-pool}, "
                    "{name: c, match: {path: /v1/x}, upstream: embed-pool}]"),
        (std::vector<std::string>{shadow_warning(1, "b", 0, "a"), shadow_warning(2, "c", 0, "a")}));
}

TEST(ConfigRoutesShadowing, NoWarningWhenSomeRequestGetsThrough) {
    const std::vector<std::string> none;
    // A narrower earlier path.
    EXPECT_EQ(warnings_of("[{match: {path: /v1/chat}, upstream: u}, {match: {path: /v1/}, "
                          "upstream: r1-pool}]"),
              none);
    // A later route without model takes requests without one.
    EXPECT_EQ(warnings_of("[{match: {model: \"*\"}, upstream: u}, {match: {path: /v1/}, "
                          "upstream: r1-pool}]"),
              none);
    // One later glob not covered.
    EXPECT_EQ(warnings_of("[{match: {model: \"deepseek-*\"}, upstream: u}, {match: {model: "
                          "[deepseek-r1, qwen]}, upstream: r1-pool}]"),
              none);
    // Later globs that are not literal are compared only for identity: kept
    // (conservative, though "deepseek-*" does cover "deepseek-r1*").
    EXPECT_EQ(warnings_of("[{match: {model: \"deepseek-*\"}, upstream: u}, {match: {model: "
                          "\"deepseek-r1*\"}, upstream: r1-pool}]"),
              none);
    // An escaped glob is not literal: "a\*" is the name "a*", which "a?" matches, but this
    // is not worked out.
    EXPECT_EQ(warnings_of("[{match: {model: \"a?\"}, upstream: u}, {match: {model: 'a\\*'}, "
                          "upstream: r1-pool}]"),
              none);
    // A literal the earlier glob does not match.
    EXPECT_EQ(warnings_of("[{match: {model: \"deepseek-*\"}, upstream: u}, {match: {model: "
                          "DeepSeek-R1}, upstream: r1-pool}]"),
              none);
    // The earlier path and the later model: both must match on the earlier one.
    EXPECT_EQ(warnings_of("[{match: {model: a, path: /v1/}, upstream: u}, {match: {model: a}, "
                          "upstream: r1-pool}]"),
              none);
}

TEST(ConfigRoutesShadowing, BrokenRoutesAreNotCompared) {
    // The first route's match is broken: only its error, no warning from it.
    auto r = load_config_string(with_routes(
        "[{match: {model: \"\"}, upstream: u}, {match: {model: a}, upstream: r1-pool}]"));
    EXPECT_EQ(r.errors.size(), 1u) << joined(r.errors);
    EXPECT_TRUE(route_warnings(r).empty()) << joined(r.warnings);
}

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

TEST(MatchRoute, LoadedConfiguration) {
    auto r =
        load_config_string(with_routes("[{match: {model: \"deepseek-r1*\"}, upstream: r1-pool}, "
                                       "{match: {path: /v1/embeddings}, upstream: embed-pool}]",
                                       ""));
    const auto& l = loaded_listener(r);
    const std::string r1 = "deepseek-r1", v3 = "deepseek-v3";
    EXPECT_EQ(match_route(l, "/v1/chat/completions", &r1), 0);
    EXPECT_EQ(match_route(l, "/v1/chat/completions", &v3), -1);
    EXPECT_EQ(match_route(l, "/v1/embeddings", &v3), 1);
}

}  // namespace
