// The top-level "model" of a JSON body (llm/model_scan.hpp, SPEC §8). Every
// text is scanned whole, split in two at every position, and byte by byte;
// the three must agree on everything (scan() below checks it).

#include "deepseek_gateway/llm/model_scan.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using dsgw::llm::ModelScan;
using Model = ModelScan::Model;

struct Scanned {
    bool ok = false;
    bool object = false;
    Model kind = Model::absent;
    std::string model;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    std::string error;
    std::uint64_t error_offset = 0;

    bool operator==(const Scanned&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Scanned& s) {
    return os << "{ok=" << s.ok << " object=" << s.object << " kind=" << int(s.kind) << " model='"
              << s.model << "' [" << s.begin << "," << s.end << ") error='" << s.error << "' at "
              << s.error_offset << "}";
}

// Feeds `text` in the pieces that start at `cuts` (ascending, inside the text).
Scanned scan_pieces(ModelScan& m, std::string_view text, const std::vector<std::size_t>& cuts) {
    m.reset();
    std::size_t from = 0;
    bool fed = true;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : text.size();
        // A copy of each piece only: ASan sees a read past it.
        const std::string piece(text.substr(from, to - from));
        const bool r = m.feed(piece.data(), piece.size());
        EXPECT_TRUE(fed || !r) << "a feed after a failed one succeeded";
        fed = fed && r;
        from = to;
    }
    Scanned s;
    s.ok = m.finish();
    EXPECT_TRUE(fed || !s.ok);
    if (s.ok) {
        s.object = m.top_level_object();
        s.kind = m.model_kind();
        if (s.kind == Model::string) {
            s.model = m.model();
            s.begin = m.model_begin();
            s.end = m.model_end();
        }
    } else {
        s.error = m.error() != nullptr ? m.error() : "(null)";
        s.error_offset = m.error_offset();
    }
    return s;
}

// The text whole, then split in two at every position, then byte by byte: the
// same result each time (reported once, whole).
Scanned scan(std::string_view text) {
    ModelScan m;
    const Scanned whole = scan_pieces(m, text, {});
    for (std::size_t cut = 1; cut < text.size(); ++cut) {
        const Scanned split = scan_pieces(m, text, {cut});
        EXPECT_EQ(split, whole) << "split at " << cut << " of: " << text;
        if (split != whole) break;
    }
    std::vector<std::size_t> bytes;
    for (std::size_t i = 1; i < text.size(); ++i) bytes.push_back(i);
    EXPECT_EQ(scan_pieces(m, text, bytes), whole) << "byte by byte: " << text;
    return whole;
}

std::string model_of(std::string_view text) {
    const Scanned s = scan(text);
    EXPECT_TRUE(s.ok) << text << ": " << s;
    EXPECT_EQ(s.kind, Model::string) << text;
    return s.model;
}

Scanned invalid(std::string_view text) {
    const Scanned s = scan(text);
    EXPECT_FALSE(s.ok) << "accepted: " << text;
    return s;
}

TEST(ModelScan, ModelFirstAndLast) {
    const std::string first =
        R"({"model":"deepseek-r1","messages":[{"role":"user","content":"hi"}]})";
    const Scanned s = scan(first);
    ASSERT_TRUE(s.ok) << s;
    EXPECT_TRUE(s.object);
    EXPECT_EQ(s.kind, Model::string);
    EXPECT_EQ(s.model, "deepseek-r1");
    EXPECT_EQ(first.substr(s.begin, s.end - s.begin), "\"deepseek-r1\"");

    const std::string last =
        R"({"messages":[{"role":"user","content":"hi"}],"stream":true,"model":"v3"})";
    const Scanned t = scan(last);
    ASSERT_TRUE(t.ok) << t;
    EXPECT_EQ(t.model, "v3");
    EXPECT_EQ(last.substr(t.begin, t.end - t.begin), "\"v3\"");
}

TEST(ModelScan, EscapesInTheValueAreDecoded) {
    EXPECT_EQ(model_of(R"({"model":"a\"b\\c\/d\be\ff\ng\rh\ti"})"), "a\"b\\c/d\be\ff\ng\rh\ti");
    EXPECT_EQ(model_of(R"({"model":"\u0041\u00e9\u4e2D\u0000z"})"),
              std::string("A\xC3\xA9\xE4\xB8\xAD\0z", 8));
    // A surrogate pair is one code point: U+1F600.
    EXPECT_EQ(model_of(R"({"model":"x\ud83d\uDE00y"})"), "x\xF0\x9F\x98\x80y");
    EXPECT_EQ(model_of(R"({"model":"\uDBFF\uDFFF"})"), "\xF4\x8F\xBF\xBF");
    // The offsets span the escaped form as written.
    const std::string text = R"({"model" : "\u0041b" })";
    const Scanned s = scan(text);
    EXPECT_EQ(text.substr(s.begin, s.end - s.begin), R"("\u0041b")");
}

TEST(ModelScan, KeysAreComparedDecoded) {
    EXPECT_EQ(model_of(R"({"mod\u0065l":"x"})"), "x");
    EXPECT_EQ(model_of(R"({"\u006d\u006F\u0064\u0065\u006c":"y"})"), "y");
    EXPECT_EQ(model_of(R"({"m\/odel":"no","model":"z"})"), "z");  // "m/odel" is another key
    for (std::string_view text :
         {R"({"models":"x"})", R"({"Model":"x"})", R"({"mode":"x"})", R"({"model\u0000":"x"})",
          R"({"a-much-longer-key-model":"x"})", R"({"":"x"})", R"({"modelmodelmodel":"x"})"}) {
        const Scanned s = scan(text);
        EXPECT_TRUE(s.ok) << text;
        EXPECT_EQ(s.kind, Model::absent) << text;
    }
}

TEST(ModelScan, InvalidEscapesAndSurrogatesAreRefused) {
    // Boost.JSON refuses a lone or unpaired surrogate (Python's json would not).
    for (std::string_view text :
         {R"({"model":"\ud800"})", R"({"model":"\ud800x"})", R"({"model":"\ud800\n"})",
          R"({"model":"\ud800\ud800"})", R"({"model":"\ud800\u0041"})", R"({"model":"\udc00"})",
          R"({"model":"\uDFFF\uDC00"})", R"({"x":["\ud83d"]})", R"({"\udc00":1})",
          R"({"model":"\u12"})", R"({"model":"\u12g4"})", R"({"model":"\x41"})",
          R"({"model":"\U0041"})", R"({"model":"\'"})", R"({"model":"\ "})", R"(["\)"}) {
        invalid(text);
    }
    EXPECT_EQ(invalid(R"({"model":"\udc00"})").error, "invalid surrogate");
    EXPECT_EQ(invalid(R"({"model":"\q"})").error, "invalid escape");
    EXPECT_EQ(invalid(R"({"model":"\u00G0"})").error, "invalid \\u escape");
}

TEST(ModelScan, NestedModelKeysAreIgnored) {
    EXPECT_EQ(model_of(R"({"messages":[{"model":"inner"}],"model":"outer"})"), "outer");
    EXPECT_EQ(model_of(R"({"model":"outer","x":{"model":"inner","y":{"model":"deeper"}}})"),
              "outer");
    for (std::string_view text :
         {R"({"a":{"model":"x"}})", R"([{"model":"x"}])", R"({"a":[{"model":"x"}]})",
          R"({"a":["model","x"]})", R"({"a":"model","b":"x"})"}) {
        const Scanned s = scan(text);
        EXPECT_TRUE(s.ok) << text;
        EXPECT_EQ(s.kind, Model::absent) << text;
    }
}

TEST(ModelScan, TheLastDuplicateWins) {
    const std::string text = R"({"model":"a","x":1,"model":"b"})";
    const Scanned s = scan(text);
    EXPECT_EQ(s.model, "b");
    EXPECT_EQ(text.substr(s.begin, s.end - s.begin), "\"b\"");
    EXPECT_EQ(scan(R"({"model":"a","model":2})").kind, Model::other);
    EXPECT_EQ(model_of(R"({"model":null,"model":"c"})"), "c");
    EXPECT_EQ(model_of(R"({"model":"a","mod\u0065l":"d"})"), "d");
}

TEST(ModelScan, ANonStringModelIsOther) {
    for (std::string_view text :
         {R"({"model":1})", R"({"model":-1.5e3})", R"({"model":null})", R"({"model":true})",
          R"({"model":false})", R"({"model":{"name":"x"}})", R"({"model":["x"]})",
          R"({"model":[]})", R"({"model":{}})"}) {
        const Scanned s = scan(text);
        EXPECT_TRUE(s.ok) << text;
        EXPECT_EQ(s.kind, Model::other) << text;
    }
}

TEST(ModelScan, ANonObjectTextHasNoModel) {
    for (std::string_view text : {R"(["model","x"])", R"("model")", "1", "-0.5", "null", "true",
                                  "false", "[]", " [ ] ", R"([{"model":"x"}])", "\"\""}) {
        const Scanned s = scan(text);
        EXPECT_TRUE(s.ok) << text;
        EXPECT_FALSE(s.object) << text;
        EXPECT_EQ(s.kind, Model::absent) << text;
    }
    const Scanned s = scan("{}");
    EXPECT_TRUE(s.ok);
    EXPECT_TRUE(s.object);
    EXPECT_EQ(s.kind, Model::absent);
}

TEST(ModelScan, AnEmptyOrIncompleteTextIsInvalid) {
    for (std::string_view text :
         {"", " ", "\r\n\t ", "{", "[", R"({"model")", R"({"model":)", R"({"model":"x")",
          R"({"model":"x",)", R"({"model":"x)", R"({"model":"x\)", R"({"model":"x\u12)",
          R"({"model":"\ud83d\)", "[1,", "[1", "{\"a\":[]"}) {
        const Scanned s = invalid(text);
        EXPECT_EQ(s.error, "incomplete") << text;
        EXPECT_EQ(s.error_offset, text.size()) << text;
    }
}

TEST(ModelScan, TrailingCharactersAreRefused) {
    for (std::string_view text : std::initializer_list<std::string_view>{
             "{} x", "{}{}", R"({"model":"a"}])", "{},", "1 2", "[]]", "null null",
             std::string_view("{}\0", 3), "\"a\"\"b\"", "{} /**/"}) {
        invalid(text);
    }
    const Scanned s = invalid("{}  x");
    EXPECT_EQ(s.error, "trailing characters");
    EXPECT_EQ(s.error_offset, 4u);
}

TEST(ModelScan, ALeadingByteOrderMarkIsRefused) {
    // As Boost.JSON does (RFC 8259 §8.1: a parser MAY ignore it).
    const Scanned s = invalid("\xEF\xBB\xBF{\"model\":\"x\"}");
    EXPECT_EQ(s.error, "unexpected character");
    EXPECT_EQ(s.error_offset, 0u);
}

TEST(ModelScan, WhitespaceWhereverTheGrammarAllowsIt) {
    EXPECT_EQ(model_of(" \t\r\n{ \"a\" : [ 1 , { } , [ ] ] ,\n\t\"model\"\r\n:\t\"x\" \n} \r\n"),
              "x");
    EXPECT_EQ(model_of("{\"model\":\" x \"}"), " x ");
    // Not whitespace in JSON: form feed, vertical tab, NBSP.
    for (std::string_view text : {"\f{}", "{\v}", "{}\xC2\xA0", "{\"model\":\f\"x\"}"})
        invalid(text);
}

TEST(ModelScan, UTF8IsChecked) {
    // Well-formed sequences of every length are kept as they are.
    EXPECT_EQ(model_of("{\"model\":\"\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\xEF\xBF\xBF\"}"),
              "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\xEF\xBF\xBF");
    EXPECT_EQ(model_of("{\"model\":\"\xF4\x8F\xBF\xBF\xED\x9F\xBF\xEE\x80\x80\"}"),
              "\xF4\x8F\xBF\xBF\xED\x9F\xBF\xEE\x80\x80");
    // Overlong forms, surrogates, past U+10FFFF, stray continuation bytes,
    // cut sequences, bytes that never occur: in values and in keys, top
    // level or nested.
    for (std::string_view bad : {"\xC0\x80",
                                 "\xC1\xBF",
                                 "\xE0\x80\x80",
                                 "\xE0\x9F\xBF",
                                 "\xED\xA0\x80",
                                 "\xED\xBF\xBF",
                                 "\xF0\x80\x80\x80",
                                 "\xF0\x8F\xBF\xBF",
                                 "\xF4\x90\x80\x80",
                                 "\xF5\x80\x80\x80",
                                 "\xFF",
                                 "\xFE",
                                 "\x80",
                                 "\xBF",
                                 "\xC3",
                                 "\xC3\x41",
                                 "\xE4\xB8",
                                 "\xE4\xB8\x41",
                                 "\xF0\x9F\x98",
                                 "\xF0\x9F\x98\x41",
                                 "\xC3\xC3\xA9"}) {
        const std::string b(bad);
        for (const std::string& text :
             {"{\"model\":\"" + b + "\"}", "{\"" + b + "\":1}", "{\"a\":[\"x" + b + "y\"]}",
              "{\"a\":{\"" + b + "\":1}}", "[\"" + b + "\"]"}) {
            EXPECT_EQ(invalid(text).error, "invalid UTF-8") << text;
        }
    }
    // Outside strings a byte >= 0x80 is just unexpected.
    EXPECT_EQ(invalid("{\"model\":\xC3\xA9}").error, "unexpected character");
}

TEST(ModelScan, UTF8IsCheckedAtEveryPlaceInALongString) {
    // Long strings are read 16 bytes at a time: a sequence at every offset of
    // a block, and across two, among ASCII and among Chinese text.
    const std::string cjk = "\xE4\xB8\xAD\xE6\x96\x87\xE6\xA8\xA1\xE5\x9E\x8B";  // 中文模型
    for (const std::string& filler : {std::string(48, 'a'), cjk + cjk + cjk + cjk}) {
        for (std::size_t at = 0; at <= 40; ++at) {
            if (filler[0] != 'a' && at % 3 != 0) continue;  // whole characters only
            const std::string head = filler.substr(0, at);
            const std::string tail = filler.substr(at);
            for (std::string_view good : {"\xC3\xA9", "\xE0\xA0\x80", "\xED\x9F\xBF",
                                          "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "\\u00e9"}) {
                const std::string value = head + std::string(good) + tail;
                const std::string text = "{\"a\":\"" + value + "\",\"model\":\"" + value + "\"}";
                ModelScan m;
                ASSERT_TRUE(m.feed(text.data(), text.size()) && m.finish()) << text;
                if (good[0] != '\\') {
                    EXPECT_EQ(m.model(), value);
                }
            }
            for (std::string_view bad :
                 {"\xC1\xBF", "\xE0\x9F\xBF", "\xED\xA0\x80", "\xF0\x8F\xBF\xBF",
                  "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80", "\x80", "\xC3", "\xE4\xB8",
                  "\xF0\x9F\x98", "\xC3\xC3\xA9"}) {
                const std::string text = "{\"a\":\"" + head + std::string(bad) + tail + "\"}";
                ModelScan m;
                EXPECT_FALSE(m.feed(text.data(), text.size()) && m.finish()) << at << ": " << text;
                EXPECT_STREQ(m.error(), "invalid UTF-8");
            }
        }
    }
}

TEST(ModelScan, ControlCharactersInStringsAreRefused) {
    for (char c : {'\0', '\n', '\r', '\t', '\x1f'}) {
        const std::string text = std::string("{\"model\":\"a") + c + "\"}";
        const Scanned s = invalid(text);
        EXPECT_EQ(s.error, "control character in string");
        EXPECT_EQ(s.error_offset, 11u);
    }
    EXPECT_EQ(model_of("{\"model\":\"a\x7F\"}"), "a\x7F");  // DEL is not a control here
}

TEST(ModelScan, Numbers) {
    for (std::string_view n : {"0",
                               "-0",
                               "1",
                               "-1",
                               "10",
                               "1.5",
                               "-0.0",
                               "0e0",
                               "0E+1",
                               "1e5",
                               "1E-5",
                               "1.25e+10",
                               "123456789012345678901234567890",
                               "-123456789012345678901234567890.5e-3",
                               "18446744073709551615",
                               "18446744073709551616",
                               "-9223372036854775808",
                               "-9223372036854775809",
                               "1.7976931348623157e309",
                               "4.9e-330",
                               "0.00000000000000000000000000001",
                               "1e2147483647",
                               "1e-2147483647",
                               "1e+0000000000001",
                               "10e2147483647",
                               "1.5e-2147483647"}) {
        for (const std::string& text :
             {std::string(n), "{\"model\":" + std::string(n) + "}", "[" + std::string(n) + "]",
              "{\"a\":" + std::string(n) + ",\"model\":\"x\"}", " " + std::string(n) + " "}) {
            const Scanned s = scan(text);
            EXPECT_TRUE(s.ok) << text << ": " << s;
        }
    }
    for (std::string_view n :
         {"01",    "-01",  "00",  "-",        "+1",        "1.",  "-1.",  ".5",
          "1.e5",  "1e",   "1e+", "1E-",      "0x10",      "--1", "1..2", "1.2.3",
          "1e5.5", "1ee5", "-a",  "Infinity", "-Infinity", "NaN", "1,",   "١"}) {
        for (const std::string& text :
             {std::string(n), "{\"model\":" + std::string(n) + "}", "[" + std::string(n) + "]"}) {
            invalid(text);
        }
    }
}

TEST(ModelScan, ExponentsPastBoostJSONsIntAreRefused) {
    // Boost.JSON 1.81 refuses an exponent above INT_MAX, and one that the shift
    // of the significant digits takes past INT_MAX or INT_MIN.
    for (std::string_view n : {"1e2147483648", "1e-2147483648", "1e99999999999", "1.55e-2147483647",
                               "100000000000000000000e2147483647", "0.01e-2147483647"}) {
        const Scanned s = invalid(n);
        EXPECT_EQ(s.error, "number out of range") << n;
    }
}

TEST(ModelScan, Literals) {
    for (std::string_view text :
         {"true", "false", "null", "[true,false,null]", "{\"a\":true,\"b\":false,\"c\":null}"}) {
        EXPECT_TRUE(scan(text).ok) << text;
    }
    for (std::string_view text : {"t", "tr", "tru", "f", "fal", "fals", "n", "nu", "nul"}) {
        EXPECT_EQ(invalid(text).error, "incomplete") << text;
        invalid("[" + std::string(text) + "]");
    }
    for (std::string_view text : {"True", "FALSE", "nul1", "truex", "nulll", "[truefalse]",
                                  "{\"model\":tru}", "{\"model\":nil}", "undefined"}) {
        invalid(text);
    }
}

TEST(ModelScan, GrammarErrors) {
    for (std::string_view text : {"{,}",
                                  "{\"a\"}",
                                  "{\"a\" 1}",
                                  "{\"a\":1,}",
                                  "[1,]",
                                  "[,1]",
                                  "{\"a\"::1}",
                                  "{1:2}",
                                  "{'a':1}",
                                  "{a:1}",
                                  "[1 2]",
                                  "{\"a\":1 \"b\":2}",
                                  "{]",
                                  "[}",
                                  "{\"a\":[}",
                                  "//c\n{}",
                                  "/*c*/{}",
                                  "{\"model\":'x'}",
                                  "{\"model\":\"x\"]",
                                  "[\"a\":1]",
                                  "{\"a\",1}"}) {
        invalid(text);
    }
    const Scanned s = invalid("{\"a\":x}");
    EXPECT_EQ(s.error, "unexpected character");
    EXPECT_EQ(s.error_offset, 5u);
}

TEST(ModelScan, DepthIsLimited) {
    const auto nested = [](std::size_t depth) {
        std::string text;
        for (std::size_t i = 0; i < depth; ++i) text += i % 2 ? "[" : "{\"a\":";
        text += "1";
        for (std::size_t i = depth; i-- > 0;) text += i % 2 ? "]" : "}";
        return text;
    };
    const Scanned ok = scan(nested(ModelScan::kMaxDepth));
    EXPECT_TRUE(ok.ok) << ok;
    const Scanned deep = invalid(nested(ModelScan::kMaxDepth + 1));
    EXPECT_EQ(deep.error, "too deep");
    std::size_t opener = 0;  // where level kMaxDepth + 1 opens
    for (std::size_t i = 0; i < ModelScan::kMaxDepth; ++i) opener += i % 2 ? 1 : 5;
    EXPECT_EQ(deep.error_offset, opener);
    const Scanned arrays = invalid(std::string(ModelScan::kMaxDepth + 1, '['));
    EXPECT_EQ(arrays.error, "too deep");
    EXPECT_EQ(arrays.error_offset, ModelScan::kMaxDepth);
    // Back at the top after a deep excursion, a "model" counts again.
    EXPECT_EQ(model_of("{\"a\":" + nested(ModelScan::kMaxDepth - 1) + ",\"model\":\"m\"}"), "m");
}

TEST(ModelScan, TheModelIsCapped) {
    const std::string at_cap(ModelScan::kMaxModelBytes, 'm');
    EXPECT_EQ(model_of("{\"model\":\"" + at_cap + "\"}"), at_cap);
    const Scanned s = invalid("{\"x\":1, \"model\":\"" + at_cap + "x\"}");
    EXPECT_EQ(s.error, "model too long");
    EXPECT_EQ(s.error_offset, 16u);  // its opening quote, wherever the pieces end
    // Escapes count decoded: 4096 × "\u00e9" is 8 KiB decoded.
    std::string escaped;
    for (std::size_t i = 0; i < ModelScan::kMaxModelBytes / 2 + 1; ++i) escaped += "\\u00e9";
    EXPECT_EQ(invalid("{\"model\":\"" + escaped + "\"}").error, "model too long");
    // Only the model is capped: other strings of any size pass.
    const std::string long_text(3 * ModelScan::kMaxModelBytes, 'c');
    EXPECT_EQ(model_of("{\"messages\":\"" + long_text + "\",\"model\":\"x\"}"), "x");
}

TEST(ModelScan, ResetStartsOver) {
    ModelScan m;
    const std::string bad = "{\"model\":x";
    EXPECT_FALSE(m.feed(bad.data(), bad.size()));
    EXPECT_FALSE(m.feed("}", 1));  // stays failed
    EXPECT_FALSE(m.finish());
    EXPECT_STREQ(m.error(), "unexpected character");
    m.reset();
    EXPECT_EQ(m.error(), nullptr);
    const std::string good = "{\"model\":\"y\"}";
    EXPECT_TRUE(m.feed(good.data(), good.size()));
    EXPECT_TRUE(m.finish());
    EXPECT_EQ(m.model_kind(), Model::string);
    EXPECT_EQ(m.model(), "y");
    EXPECT_EQ(m.model_begin(), 9u);
    EXPECT_EQ(m.model_end(), 12u);
    m.reset();
    EXPECT_TRUE(m.feed("{}", 2));
    EXPECT_TRUE(m.finish());
    EXPECT_EQ(m.model_kind(), Model::absent);
}

TEST(ModelScan, AChatBodyInEveryPieceSize) {
    std::string body = R"({"messages":[{"role":"system","content":"You are \"helpful\".\n"},)";
    for (int i = 0; i < 20; ++i)
        body += R"({"role":"user","content":"Résumé: 中文 \ud83d\ude00 tab\there, long text )" +
                std::to_string(i) + R"("},)";
    body += R"({"role":"assistant","content":""}],"temperature":0.7,"max_tokens":1024,)"
            R"("stream":true,"model":"deepseek-ai/DeepSeek-R1"})";
    ModelScan m;
    for (std::size_t piece = 1; piece <= 64; ++piece) {
        std::vector<std::size_t> cuts;
        for (std::size_t at = piece; at < body.size(); at += piece) cuts.push_back(at);
        const Scanned s = scan_pieces(m, body, cuts);
        ASSERT_TRUE(s.ok) << "pieces of " << piece << ": " << s;
        EXPECT_EQ(s.model, "deepseek-ai/DeepSeek-R1");
        EXPECT_EQ(body.substr(s.begin, s.end - s.begin), "\"deepseek-ai/DeepSeek-R1\"");
    }
}

}  // namespace
