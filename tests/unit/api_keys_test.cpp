// API keys: the keys file, the SHA-256 check, and Authorization: Bearer.

#include "deepseek_gateway/access/api_keys.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace dsgw::access;

// SHA-256("abc"), FIPS 180-2's example.
constexpr const char* kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

std::string hash(std::string_view key) {
    return to_hex(sha256(key));
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& e : v) s += "  " + e + "\n";
    return s;
}

// A file for keys "key-a" (team-a) and "key-b" (team-b).
std::string two_keys() {
    return "- name: team-a\n  sha256: " + hash("key-a") +
           "\n- name: team-b\n  sha256: " + hash("key-b") + "\n";
}

ApiKeys keys_of(const std::string& yaml) {
    auto r = parse_api_keys(yaml, "keys.yaml");
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
    return r.keys ? *r.keys : ApiKeys{};
}

// Exactly one error, with exactly this text.
void expect_one_error(const std::string& yaml, const std::string& error) {
    auto r = parse_api_keys(yaml, "keys.yaml");
    EXPECT_EQ(r.errors, std::vector<std::string>{error}) << joined(r.errors);
    EXPECT_EQ(r.keys, nullptr);
}

// ---------------------------------------------------------------- hashing

TEST(ApiKeyHash, Sha256OfKnownInput) {
    EXPECT_EQ(hash("abc"), kAbc);
    EXPECT_EQ(hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// ---------------------------------------------------------------- the file

TEST(ApiKeysFile, ReadsNamesAndHashes) {
    auto r = parse_api_keys(two_keys(), "keys.yaml");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_TRUE(r.warnings.empty()) << joined(r.warnings);
    ASSERT_TRUE(r.keys);
    ASSERT_EQ(r.keys->size(), 2u);
    EXPECT_EQ(r.keys->keys()[0].name, "team-a");
    EXPECT_EQ(to_hex(r.keys->keys()[0].sha256), hash("key-a"));
    EXPECT_EQ(r.keys->keys()[1].name, "team-b");
}

TEST(ApiKeysFile, FlowStyleAndUpperCaseHexAreFine) {
    std::string upper = hash("key-a");
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto keys = keys_of("[{name: team-a, sha256: \"" + upper + "\"}]");
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys.verify("key-a"), "team-a");
}

TEST(ApiKeysFile, HashKeyOutputRoundTrips) {
    // What `deepseek-gateway hash-key` prints, pasted as is.
    std::string printed = "- name: CHANGE-ME\n  sha256: " + hash("sk-live-123") + "\n";
    auto r = parse_api_keys(printed, "keys.yaml");
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    ASSERT_TRUE(r.keys);
    EXPECT_EQ(r.keys->verify("sk-live-123"), "CHANGE-ME");
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_EQ(r.warnings[0],
              "keys.yaml:1: name: still CHANGE-ME, as hash-key printed it; name the key's owner");
}

TEST(ApiKeysFile, SameNameTwiceIsARotation) {
    auto keys = keys_of("- {name: team-a, sha256: " + hash("old") +
                        "}\n- {name: team-a, sha256: " + hash("new") + "}\n");
    EXPECT_EQ(keys.verify("old"), "team-a");
    EXPECT_EQ(keys.verify("new"), "team-a");
}

TEST(ApiKeysFile, EmptyListRevokesEveryKey) {
    for (const char* text : {"[]\n", "", "# every key revoked\n"}) {
        auto r = parse_api_keys(text, "keys.yaml");
        EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
        ASSERT_TRUE(r.keys) << text;
        EXPECT_TRUE(r.keys->empty());
        EXPECT_EQ(r.warnings,
                  std::vector<std::string>{
                      "keys.yaml: lists no keys; every request will be refused with 401"});
    }
}

TEST(ApiKeysFile, ErrorsNameTheLine) {
    expect_one_error("- name: team-a\n  sha256: " + hash("a") + "\n- name: team-b\n",
                     "keys.yaml:3: sha256: required");
    expect_one_error("- sha256: " + hash("a") + "\n", "keys.yaml:1: name: required");
    expect_one_error("- name: team-a\n  sha256: " + hash("a") + "\n  note: x\n",
                     "keys.yaml:3: unknown key \"note\" (an entry has name and sha256)");
    expect_one_error("- name: \"team a\"\n  sha256: " + hash("a") + "\n",
                     "keys.yaml:1: name: must be 1-64 letters, digits, '_', '-' or '.' (got \"team "
                     "a\")");
    expect_one_error("- name: \"\"\n  sha256: " + hash("a") + "\n",
                     "keys.yaml:1: name: must be a non-empty string (got a value)");
    expect_one_error("- name: [x]\n  sha256: " + hash("a") + "\n",
                     "keys.yaml:1: name: must be a non-empty string (got a list)");
    expect_one_error("- team-a\n",
                     "keys.yaml:1: expected an entry {name: NAME, sha256: HEX} (got a value)");
    expect_one_error("team-a: " + hash("a") + "\n",
                     "keys.yaml:1: expected a list of {name, sha256} entries (got a mapping)");
    expect_one_error("- {name: a, name: b, sha256: " + hash("a") + "}\n",
                     "keys.yaml:1: name: given twice in one entry");
}

TEST(ApiKeysFile, AKeyWhereItsHashBelongsIsNeverQuoted) {
    const std::string secret = "sk-live-9d2f7c1e0b";
    auto r = parse_api_keys("- name: team-a\n  sha256: " + secret + "\n", "keys.yaml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0],
              "keys.yaml:2: sha256: must be 64 hexadecimal digits, the SHA-256 of the key as "
              "`deepseek-gateway hash-key` prints it, never the key itself (got 18 characters)");
    EXPECT_EQ(r.errors[0].find(secret), std::string::npos);
}

TEST(ApiKeysFile, HashMustBe64HexDigits) {
    std::string h = hash("a");
    for (const std::string& bad : {h.substr(1), h + "0", "g" + h.substr(1), h.substr(0, 63) + " ",
                                   std::string("0x") + h.substr(2), std::string()}) {
        auto r = parse_api_keys("- name: a\n  sha256: \"" + bad + "\"\n", "keys.yaml");
        ASSERT_EQ(r.errors.size(), 1u) << bad;
        EXPECT_EQ(r.errors[0].rfind("keys.yaml:2: sha256: must be 64 hexadecimal digits", 0), 0u)
            << r.errors[0];
    }
    auto r = parse_api_keys("- name: a\n  sha256: [1, 2]\n", "keys.yaml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].find("(got a list)"), std::string::npos) << r.errors[0];
}

TEST(ApiKeysFile, OneKeyListedTwiceIsAnError) {
    expect_one_error("- name: team-a\n  sha256: " + hash("k") +
                         "\n- name: team-b\n  sha256: " + hash("k") + "\n",
                     "keys.yaml:3: the same sha256 as the entry on line 1 (one key, two entries)");
}

TEST(ApiKeysFile, EveryErrorIsReported) {
    auto r = parse_api_keys("- name: a\n- sha256: x\n- {name: ok, sha256: " + hash("k") + "}\n",
                            "keys.yaml");
    EXPECT_EQ(r.errors.size(), 3u) << joined(r.errors);
    EXPECT_EQ(r.keys, nullptr);
}

TEST(ApiKeysFile, InvalidYamlNamesLineAndColumn) {
    auto r = parse_api_keys("- name: a\n  sha256: [unclosed\n", "keys.yaml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].rfind("keys.yaml:", 0), 0u) << r.errors[0];
    EXPECT_NE(r.errors[0].find(": invalid YAML: "), std::string::npos) << r.errors[0];
    expect_one_error(
        "- {name: a, sha256: " + hash("a") + "}\n---\n- {name: b, sha256: " + hash("b") + "}\n",
        "keys.yaml: holds 2 YAML documents; write the keys as one list");
}

TEST(ApiKeysFile, LoadsFromDisk) {
    char path[] = "/tmp/dsgw-keys-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path) << two_keys();
    auto r = load_api_keys_file(path);
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    EXPECT_EQ(r.keys->verify("key-b"), "team-b");

    std::ofstream(path) << "- name: x\n";
    r = load_api_keys_file(path);
    EXPECT_EQ(r.errors, std::vector<std::string>{std::string(path) + ":1: sha256: required"});
    ::unlink(path);

    r = load_api_keys_file(path);
    EXPECT_EQ(r.errors, std::vector<std::string>{"cannot read \"" + std::string(path) +
                                                 "\": No such file or directory"});
}

// ---------------------------------------------------------------- verify

TEST(ApiKeysVerify, KnownKeysNameTheirEntry) {
    auto keys = keys_of(two_keys());
    EXPECT_EQ(keys.verify("key-a"), "team-a");
    EXPECT_EQ(keys.verify("key-b"), "team-b");
}

TEST(ApiKeysVerify, AnythingElseIsUnknown) {
    auto keys = keys_of(two_keys());
    for (const char* k : {"", "key-", "key-c", "KEY-A", "key-a ", " key-a", "key-ab"})
        EXPECT_FALSE(keys.verify(k)) << k;
    // The hash itself is not a key.
    EXPECT_FALSE(keys.verify(hash("key-a")));
    EXPECT_FALSE(ApiKeys{}.verify("key-a"));
}

TEST(ApiKeysVerify, BinaryAndLongKeys) {
    std::string binary("k\0ey", 4);
    std::string long_key(100000, 'k');
    ApiKeys keys({ApiKey{"bin", sha256(binary)}, ApiKey{"long", sha256(long_key)}});
    EXPECT_EQ(keys.verify(binary), "bin");
    EXPECT_FALSE(keys.verify("k"));
    EXPECT_EQ(keys.verify(long_key), "long");
}

// ---------------------------------------------------------------- Authorization

TEST(BearerToken, ParsesRfc6750Credentials) {
    EXPECT_EQ(bearer_token("Bearer abc"), "abc");
    EXPECT_EQ(bearer_token("bearer abc"), "abc");
    EXPECT_EQ(bearer_token("BEARER abc"), "abc");
    EXPECT_EQ(bearer_token("Bearer   abc"), "abc");  // 1*SP
    EXPECT_EQ(bearer_token("  Bearer abc \t"), "abc");
    EXPECT_EQ(bearer_token("Bearer sk-A1_b2.c3~d4+e5/f6=="), "sk-A1_b2.c3~d4+e5/f6==");
    EXPECT_EQ(bearer_token("Bearer a!#$%&'*"), "a!#$%&'*");
}

TEST(BearerToken, RejectsOtherShapes) {
    for (const char* bad : {"", "Bearer", "Bearer ", "Bearerabc", "Bearer\tabc", "Bearer abc def",
                            "Basic dXNlcjpwYXNz", "Token abc", "Bear abc", "Bearer: abc",
                            "Bearer abc\x01", "Bearer \x7f", "Bearer caf\xc3\xa9"}) {
        EXPECT_FALSE(bearer_token(bad)) << "accepted \"" << bad << "\"";
    }
}

AuthResult auth(const ApiKeys& keys, std::vector<std::string_view> values) {
    return authenticate(keys, values);
}

TEST(Authenticate, Outcomes) {
    auto keys = keys_of(two_keys());
    auto ok = auth(keys, {"Bearer key-a"});
    EXPECT_EQ(ok.outcome, AuthOutcome::ok);
    EXPECT_EQ(ok.name, "team-a");
    EXPECT_EQ(auth(keys, {"bearer   key-b"}).name, "team-b");

    struct Case {
        std::vector<std::string_view> values;
        AuthOutcome outcome;
    } cases[] = {
        {{}, AuthOutcome::missing_key},
        {{""}, AuthOutcome::missing_key},
        {{"Basic dXNlcjpwYXNz"}, AuthOutcome::missing_key},
        {{"Bearer"}, AuthOutcome::missing_key},
        {{"Bearer   "}, AuthOutcome::missing_key},  // an empty key variable
        {{"Bearer key-c"}, AuthOutcome::bad_key},
        {{"Bearer key-a extra"}, AuthOutcome::bad_key},
        {{"Bearer\tkey-a"}, AuthOutcome::bad_key},
        {{"Bearer key-a", "Bearer key-a"}, AuthOutcome::bad_key},  // singleton field twice
        {{"Bearer key-a", ""}, AuthOutcome::bad_key},
    };
    for (const auto& c : cases) {
        auto r = auth(keys, c.values);
        EXPECT_EQ(r.outcome, c.outcome) << (c.values.empty() ? "(none)" : c.values[0]);
        EXPECT_TRUE(r.name.empty());
    }
}

TEST(Authenticate, NoKeysRefusesEveryone) {
    EXPECT_EQ(auth(ApiKeys{}, {"Bearer key-a"}).outcome, AuthOutcome::bad_key);
    EXPECT_EQ(auth(ApiKeys{}, {}).outcome, AuthOutcome::missing_key);
}

TEST(Authenticate, ReasonsAndChallenges) {
    EXPECT_EQ(to_deny_reason(AuthOutcome::missing_key), DenyReason::missing_key);
    EXPECT_EQ(to_deny_reason(AuthOutcome::bad_key), DenyReason::bad_key);
    EXPECT_STREQ(www_authenticate(AuthOutcome::missing_key), "Bearer realm=\"deepseek-gateway\"");
    EXPECT_STREQ(www_authenticate(AuthOutcome::bad_key),
                 "Bearer realm=\"deepseek-gateway\", error=\"invalid_token\"");
}

}  // namespace
