// Where the prompt lies in a JSON body (llm::ModelScan with capture_prompt())
// and its canonical block hashes (llm/prompt_blocks.hpp, SPEC §9). Every body
// is also fed byte by byte and split at every position: the spans and the
// hashes must not depend on how the body arrived.

#include "deepseek_gateway/llm/prompt_blocks.hpp"
#include "deepseek_gateway/llm/model_scan.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using dsgw::llm::BodyPiece;
using dsgw::llm::ModelScan;

constexpr std::uint64_t kCapture = 1 << 20;

std::string text_of(std::string_view body, ModelScan::Span s) {
    return std::string(body.substr(s.begin, s.end - s.begin));
}

// The parts noted, as text: "tools=...|prompt=...|role:content|role:content".
std::string parts(const ModelScan& m, std::string_view body) {
    std::string out = "tools=" + text_of(body, m.tools()) + "|prompt=" + text_of(body, m.prompt());
    if (m.has_messages()) {
        out += "|messages";
        for (const auto& msg : m.messages())
            out += "|" + text_of(body, msg.role) + ":" + text_of(body, msg.content);
    }
    return out;
}

// Scans `body` whole, then in two pieces at every cut, then byte by byte;
// every way must note the same parts. Returns them ("invalid" when the scan
// fails).
std::string scan(std::string_view body, std::uint64_t capture = kCapture) {
    ModelScan m;
    m.capture_prompt(capture);
    if (!m.feed(body.data(), body.size()) || !m.finish()) return "invalid";
    const std::string whole = parts(m, body);
    for (std::size_t cut = 1; cut < body.size(); ++cut) {
        m.reset();
        m.capture_prompt(capture);
        m.feed(body.data(), cut);
        m.feed(body.data() + cut, body.size() - cut);
        EXPECT_TRUE(m.finish());
        EXPECT_EQ(parts(m, body), whole) << "cut at " << cut;
    }
    m.reset();
    m.capture_prompt(capture);
    for (char c : body) m.feed(&c, 1);
    EXPECT_TRUE(m.finish());
    EXPECT_EQ(parts(m, body), whole) << "byte by byte";
    return whole;
}

TEST(PromptScan, NotesToolsAndEachMessagesRoleAndContent) {
    EXPECT_EQ(scan(R"({"model":"r1","tools":[{"type":"function"}],"messages":[)"
                   R"({"role":"system","content":"You are terse."},)"
                   R"({"content":[{"type":"text","text":"hi"}],"role":"user","name":"x"}],)"
                   R"("temperature":0.2})"),
              R"(tools=[{"type":"function"}]|prompt=|messages|"system":"You are terse.")"
              R"(|"user":[{"type":"text","text":"hi"}])");
}

TEST(PromptScan, NotesTheCompletionsPrompt) {
    EXPECT_EQ(scan(R"({"model":"r1","prompt":"Once upon a time","max_tokens":5})"),
              R"(tools=|prompt="Once upon a time")");
    EXPECT_EQ(scan(R"({"prompt":[1, 2, 3]})"), "tools=|prompt=[1, 2, 3]");
}

TEST(PromptScan, IgnoresNestedKeysOfTheSameNames) {
    // "messages", "role" and "content" count only where SPEC §9 puts them.
    EXPECT_EQ(
        scan(R"({"metadata":{"messages":[{"role":"x","content":"y"}],"prompt":"p"},)"
             R"("messages":[{"role":"user","content":"a","extra":{"role":"no","content":"no"}},)"
             R"("not an object",[{"role":"no"}],{"content":null}]})"),
        R"(tools=|prompt=|messages|"user":"a"|:null)");
}

TEST(PromptScan, TheLastOfDuplicateKeysWins) {
    EXPECT_EQ(
        scan(R"({"messages":[{"role":"a","content":"1"}],"messages":[{"role":"b","role":"c"}]})"),
        R"(tools=|prompt=|messages|"c":)");
    EXPECT_EQ(scan(R"({"tools":1,"tools":[2]})"), "tools=[2]|prompt=");
}

TEST(PromptScan, MessagesThatAreNotAnArrayAreNoMessages) {
    EXPECT_EQ(scan(R"({"messages":"hello"})"), "tools=|prompt=");
    EXPECT_EQ(scan(R"({"messages":[]})"), "tools=|prompt=|messages");
}

TEST(PromptScan, StopsNotingMessagesPastTheCapture) {
    // 20 bytes: the first message's values are 6 + 16 bytes, so the second is
    // not noted; tools, a single value, is.
    EXPECT_EQ(scan(R"({"messages":[{"role":"user","content":"0123456789abcd"},)"
                   R"({"role":"user","content":"second"}],"tools":[1]})",
                   20),
              R"(tools=[1]|prompt=|messages|"user":"0123456789abcd")");
}

TEST(PromptScan, NothingIsNotedWithoutCapture) {
    ModelScan m;
    const std::string_view body = R"({"model":"m","tools":[1],"messages":[{"role":"u"}]})";
    ASSERT_TRUE(m.feed(body.data(), body.size()));
    ASSERT_TRUE(m.finish());
    EXPECT_EQ(m.model(), "m");
    EXPECT_EQ(parts(m, body), "tools=|prompt=");
}

// ---- block hashes -------------------------------------------------------------

std::vector<std::uint64_t> blocks_of(std::string_view body, std::size_t block_bytes,
                                     std::size_t max_blocks = 1024) {
    ModelScan m;
    m.capture_prompt(kCapture);
    EXPECT_TRUE(m.feed(body.data(), body.size()));
    EXPECT_TRUE(m.finish());
    std::vector<std::uint64_t> out;
    const BodyPiece piece{body.data(), body.size()};
    dsgw::llm::prompt_blocks(m, {&piece, 1}, block_bytes, max_blocks, out);
    return out;
}

std::vector<std::uint64_t> hashed(std::string_view canonical, std::size_t block_bytes) {
    std::vector<std::uint64_t> out;
    dsgw::llm::hash_blocks(canonical, block_bytes, 1024, out);
    return out;
}

TEST(PromptBlocks, AreTheHashesOfTheCanonicalPrompt) {
    const std::string body =
        R"({"model":"r1","temperature":1,"tools":[7],"messages":[)"
        R"({"role":"system","content":"Be brief."},{"content":"Hi","role":"user"}]})";
    // tools, newline, then role and content (raw JSON) and a newline per message.
    const std::string canonical = "[7]\n\"system\"\"Be brief.\"\n\"user\"\"Hi\"\n";
    EXPECT_EQ(blocks_of(body, 16), hashed(canonical, 16));
    EXPECT_EQ(blocks_of(body, 16).size(), (canonical.size() + 15) / 16);
    EXPECT_EQ(blocks_of(R"({"prompt":"abc"})", 16), hashed("\"abc\"", 16));
}

TEST(PromptBlocks, IgnoreFieldsOutsideThePromptAndKeyOrder) {
    const auto a = blocks_of(R"({"model":"a","messages":[{"role":"user","content":"hello"}]})", 8);
    const auto b = blocks_of(
        R"({"stream":true,"messages":[{"content":"hello","name":"n","role":"user"}],"model":"b"})",
        8);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, blocks_of(R"({"messages":[{"role":"user","content":"hellO"}]})", 8));
}

TEST(PromptBlocks, AGrowingConversationKeepsItsLeadingBlocks) {
    const std::string turn1 =
        R"({"messages":[{"role":"system","content":"You are a helpful assistant."},)"
        R"({"role":"user","content":"What is a KV cache?"}]})";
    const std::string turn2 =
        R"({"messages":[{"role":"system","content":"You are a helpful assistant."},)"
        R"({"role":"user","content":"What is a KV cache?"},)"
        R"({"role":"assistant","content":"Keys and values kept."},)"
        R"({"role":"user","content":"Why keep them?"}]})";
    const auto one = blocks_of(turn1, 16);
    const auto two = blocks_of(turn2, 16);
    ASSERT_GT(two.size(), one.size());
    // Every full block of turn 1 is a block of turn 2; its short last one is not.
    const std::size_t full = one.size() - 1;
    ASSERT_GT(full, 2u);
    EXPECT_TRUE(
        std::equal(one.begin(), one.begin() + static_cast<std::ptrdiff_t>(full), two.begin()));
    EXPECT_NE(one[full], two[full]);
}

TEST(PromptBlocks, AreCumulative) {
    // The same block after different prefixes hashes differently.
    const auto a = hashed("AAAAAAAABBBBBBBB", 8);
    const auto b = hashed("CCCCCCCCBBBBBBBB", 8);
    ASSERT_EQ(a.size(), 2u);
    EXPECT_NE(a[1], b[1]);
}

TEST(PromptBlocks, DoNotDependOnHowTheBodyIsCutInPieces) {
    const std::string body =
        R"({"tools":[{"a":1}],"messages":[{"role":"user","content":"abcdefghijklmnopqrstuvwxyz"}]})";
    const auto whole = blocks_of(body, 8);
    ModelScan m;
    m.capture_prompt(kCapture);
    ASSERT_TRUE(m.feed(body.data(), body.size()));
    ASSERT_TRUE(m.finish());
    for (std::size_t a = 1; a < body.size(); ++a) {
        for (std::size_t b = a + 1; b < body.size(); b += 7) {
            const BodyPiece pieces[] = {
                {body.data(), a}, {body.data() + a, b - a}, {body.data() + b, body.size() - b}};
            std::vector<std::uint64_t> out;
            dsgw::llm::prompt_blocks(m, pieces, 8, 1024, out);
            ASSERT_EQ(out, whole) << "cuts at " << a << ", " << b;
        }
    }
}

TEST(PromptBlocks, StopAtMaxBlocks) {
    const std::string prompt(100, 'x');
    const auto capped = blocks_of(R"({"prompt":")" + prompt + R"("})", 10, 3);
    const auto all = blocks_of(R"({"prompt":")" + prompt + R"("})", 10);
    ASSERT_EQ(capped.size(), 3u);
    EXPECT_TRUE(std::equal(capped.begin(), capped.end(), all.begin()));
}

TEST(PromptBlocks, NoPromptNoBlocks) {
    EXPECT_TRUE(blocks_of(R"({"model":"m","input":"embed me"})", 8).empty());
    EXPECT_TRUE(blocks_of(R"({"messages":[]})", 8).empty());
    EXPECT_TRUE(blocks_of(R"([1,2])", 8).empty());
}

TEST(PromptBlocks, HashesAreStableAcrossBuilds) {
    // XXH3-64 is frozen: these values are the same in every build and every
    // gateway replica (the consistency of several replicas rests on it).
    // XXH3-64("abcdefgh") is 0x6f45a76842a96483; the block's hash is XXH3-64
    // of 8 zero bytes (no block before) and that, little-endian.
    const auto h = hashed("abcdefgh", 8);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0], 0xfc71fc6de256dd3eull);
}

}  // namespace
