// Reading the top-level "model" of an OpenAI chat body: llm::ModelScan against
// Boost.JSON 1.81's basic_parser with a handler that does only that (SAX) and
// its stream_parser building the DOM (on a reused monotonic buffer, its
// fastest set-up) and then looking the model up. docs/performance.md,
// "Reading the model from a JSON body", has the figures and the choice.
//
//   bench_json_scan                 the table: ns/byte, best of 5 rounds
//   bench_json_scan --only NAME BODY [iterations]
//                                   one parser on one body (for callgrind:
//                                   --collect-atstart=no --toggle-collect='measure*')
//
// Bodies: 4 KiB and 256 KiB; "en" is English text with a few escapes and a
// little non-ASCII (é, —, 中文) as JavaScript's JSON.stringify writes it, "zh"
// Chinese text as UTF-8, "zh-esc" the same as Python's json.dumps writes it
// (ensure_ascii: \uXXXX). Model first or last.

#include "deepseek_gateway/llm/model_scan.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/src.hpp>
#include <boost/json/stream_parser.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace json = boost::json;
using dsgw::llm::ModelScan;

// ---- bodies ----------------------------------------------------------------

struct Rng {
    std::uint64_t s = 0x9E3779B97F4A7C15u;
    std::uint32_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return static_cast<std::uint32_t>(s >> 16);
    }
    std::size_t below(std::size_t n) { return next() % n; }
};

enum class Text { en, zh, zh_escaped };

void append_text(std::string& out, std::size_t bytes, Text kind, Rng& rng) {
    static const char* const en[] = {
        "the",       "model",   "answer",    "question", "reasoning", "step",  "first",
        "therefore", "we",      "consider",  "function", "returns",   "value", "of",
        "a",         "list",    "and",       "is",       "to",        "in",    "that",
        "context",   "window",  "tokens",    "prompt",   "résumé",    "café",  "—",
        "output",    "example", "following", "code:",    "result,",   "data.", "中文"};
    static const char* const zh[] = {"模型",   "推理", "问题", "答案", "我们", "因此", "首先",
                                     "上下文", "函数", "返回", "数据", "例如", "，",   "。",
                                     "的",     "是",   "在",   "和",   "一个", "可以"};
    const std::size_t start = out.size();
    std::size_t words = 0;
    while (out.size() - start < bytes) {
        ++words;
        if (kind == Text::en) {
            out += en[rng.below(std::size(en))];
            if (words % 40 == 0) {
                out += "\\n\\n";
            } else if (words % 97 == 0) {
                out += " \\\"quoted\\\" ";
            } else {
                out += ' ';
            }
            continue;
        }
        const char* w = zh[rng.below(std::size(zh))];
        if (kind == Text::zh) {
            out += w;
        } else {
            // Python's ensure_ascii: every code point as \uXXXX.
            for (const char* p = w; *p != '\0'; p += 3) {
                const unsigned cp = (static_cast<unsigned>(p[0] & 0x0F) << 12) |
                                    (static_cast<unsigned>(p[1] & 0x3F) << 6) |
                                    static_cast<unsigned>(p[2] & 0x3F);
                char u[8];
                std::snprintf(u, sizeof u, "\\u%04x", cp);
                out += u;
            }
        }
        if (words % 30 == 0) out += "\\n";
        if (words % 7 == 0) out += ' ';
    }
}

std::string chat_body(std::size_t target, bool model_last, Text kind) {
    Rng rng;
    const std::string model = R"("model":"deepseek-ai/DeepSeek-R1")";
    std::string body = "{";
    if (!model_last) body += model + ",";
    body += R"("messages":[)";
    const char* roles[] = {"user", "assistant"};
    const std::string tail = R"(],"temperature":0.6,"top_p":0.95,"max_tokens":4096,"stream":true)";
    for (int i = 0; body.size() + tail.size() + model.size() + 64 < target; ++i) {
        if (i != 0) body += ',';
        body += R"({"role":")";
        body += i == 0 ? "system" : roles[i % 2];
        body += R"(","content":")";
        const std::size_t room = target - body.size() - tail.size() - model.size() - 16;
        const std::size_t want = std::min(room, target / 8 + rng.below(target / 8 + 1));
        append_text(body, std::min<std::size_t>(want, 3000), kind, rng);
        body += "\"}";
    }
    body += tail;
    if (model_last) body += "," + model;
    body += "}";
    return body;
}

// ---- parsers ---------------------------------------------------------------

// basic_parser's handler: the top-level "model", nothing else (SAX).
struct ModelHandler {
    static constexpr std::size_t max_array_size = -1;
    static constexpr std::size_t max_object_size = -1;
    static constexpr std::size_t max_string_size = -1;
    static constexpr std::size_t max_key_size = -1;

    int depth = 0;
    bool model_next = false;
    bool collecting = false;
    std::string key;
    std::string model;
    enum class Kind { absent, string, other } kind = Kind::absent;

    void value() {
        if (model_next) kind = Kind::other;
        model_next = false;
    }
    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_array_begin(json::error_code&) {
        value();
        ++depth;
        return true;
    }
    bool on_array_end(std::size_t, json::error_code&) {
        --depth;
        return true;
    }
    bool on_object_begin(json::error_code&) {
        value();
        ++depth;
        return true;
    }
    bool on_object_end(std::size_t, json::error_code&) {
        --depth;
        return true;
    }
    bool on_string_part(json::string_view s, std::size_t n, json::error_code&) {
        if (model_next) {
            if (n == s.size()) model.clear();
            model.append(s.data(), s.size());
            collecting = true;
        }
        return true;
    }
    bool on_string(json::string_view s, std::size_t n, json::error_code& ec) {
        if (model_next) {
            if (n == s.size()) model.clear();
            model.append(s.data(), s.size());
            kind = Kind::string;
            model_next = false;
        }
        (void)ec;
        return true;
    }
    bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
        if (depth == 1) key.append(s.data(), s.size());
        return true;
    }
    bool on_key(json::string_view s, std::size_t, json::error_code&) {
        if (depth == 1) {
            key.append(s.data(), s.size());
            model_next = key == "model";
            key.clear();
        }
        return true;
    }
    bool on_number_part(json::string_view, json::error_code&) { return true; }
    bool on_int64(std::int64_t, json::string_view, json::error_code&) {
        value();
        return true;
    }
    bool on_uint64(std::uint64_t, json::string_view, json::error_code&) {
        value();
        return true;
    }
    bool on_double(double, json::string_view, json::error_code&) {
        value();
        return true;
    }
    bool on_bool(bool, json::error_code&) {
        value();
        return true;
    }
    bool on_null(json::error_code&) {
        value();
        return true;
    }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }
};

json::parse_options options() {
    json::parse_options opt;
    opt.max_depth = ModelScan::kMaxDepth;
    return opt;
}

struct Scan {
    ModelScan m;
    std::size_t piece = 0;  // 0: the body in one piece
    bool run(std::string_view body) {
        m.reset();
        if (piece == 0) {
            m.feed(body.data(), body.size());
        } else {
            for (std::size_t at = 0; at < body.size(); at += piece)
                m.feed(body.data() + at, std::min(piece, body.size() - at));
        }
        return m.finish() && m.model_kind() == ModelScan::Model::string &&
               m.model() == "deepseek-ai/DeepSeek-R1";
    }
};

struct Sax {
    json::basic_parser<ModelHandler> p{options()};
    bool run(std::string_view body) {
        p.reset();
        p.handler() = ModelHandler{};
        json::error_code ec;
        p.write_some(false, body.data(), body.size(), ec);
        return !ec && p.done() && p.handler().kind == ModelHandler::Kind::string &&
               p.handler().model == "deepseek-ai/DeepSeek-R1";
    }
};

struct Dom {
    std::vector<unsigned char> buffer = std::vector<unsigned char>(4 << 20);
    json::stream_parser p{json::storage_ptr(), options()};
    bool run(std::string_view body) {
        json::monotonic_resource mr(buffer.data(), buffer.size());
        p.reset(&mr);
        json::error_code ec;
        p.write(body.data(), body.size(), ec);
        if (!ec) p.finish(ec);
        if (ec) return false;
        const json::value v = p.release();
        const json::object* o = v.if_object();
        if (o == nullptr) return false;
        const auto it = o->find("model");
        return it != o->end() && it->value().is_string() &&
               it->value().get_string() == "deepseek-ai/DeepSeek-R1";
    }
};

struct Body {
    std::string name;
    std::string text;
};

std::vector<Body> bodies() {
    std::vector<Body> out;
    for (std::size_t size : {std::size_t{4} << 10, std::size_t{256} << 10}) {
        const std::string k = size < (64 << 10) ? "4k" : "256k";
        out.push_back({k + "-en-first", chat_body(size, false, Text::en)});
        out.push_back({k + "-en-last", chat_body(size, true, Text::en)});
        out.push_back({k + "-zh-last", chat_body(size, true, Text::zh)});
        out.push_back({k + "-zh-esc-last", chat_body(size, true, Text::zh_escaped)});
    }
    return out;
}

// The loop callgrind counts (--toggle-collect='measure*').
template <class Parser>
__attribute__((noinline)) bool measure(Parser& parser, std::string_view body, long iterations) {
    bool ok = true;
    for (long i = 0; i < iterations; ++i) ok = parser.run(body) && ok;
    return ok;
}

// ns/byte: the best of 5 rounds of at least 0.2 s each.
template <class Parser>
double ns_per_byte(Parser& parser, std::string_view body) {
    using clock = std::chrono::steady_clock;
    if (!measure(parser, body, 1)) {
        std::fprintf(stderr, "parser failed on the body\n");
        std::exit(1);
    }
    long iterations = 1;
    for (;;) {
        const auto t0 = clock::now();
        measure(parser, body, iterations);
        if (clock::now() - t0 > std::chrono::milliseconds(50)) break;
        iterations *= 2;
    }
    iterations *= 4;
    double best = 1e30;
    for (int round = 0; round < 5; ++round) {
        const auto t0 = clock::now();
        measure(parser, body, iterations);
        const std::chrono::duration<double, std::nano> took = clock::now() - t0;
        best = std::min(best, took.count() / (static_cast<double>(iterations) * body.size()));
    }
    return best;
}

template <class Parser>
int only(Parser& parser, const std::string& body, long iterations) {
    return measure(parser, body, iterations) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<Body> all = bodies();
    if (argc >= 4 && std::strcmp(argv[1], "--only") == 0) {
        const std::string name = argv[2];
        const auto body =
            std::find_if(all.begin(), all.end(), [&](const Body& b) { return b.name == argv[3]; });
        if (body == all.end()) {
            std::fprintf(stderr, "no body %s\n", argv[3]);
            return 2;
        }
        const long iterations = argc >= 5 ? std::atol(argv[4]) : 100;
        std::printf("%s on %s: %zu bytes x %ld\n", name.c_str(), body->name.c_str(),
                    body->text.size(), iterations);
        if (name == "scan") {
            Scan s;
            return only(s, body->text, iterations);
        }
        if (name == "scan-16k") {
            Scan s;
            s.piece = 16 << 10;
            return only(s, body->text, iterations);
        }
        if (name == "sax") {
            Sax s;
            return only(s, body->text, iterations);
        }
        if (name == "dom") {
            Dom d;
            return only(d, body->text, iterations);
        }
        std::fprintf(stderr, "parsers: scan scan-16k sax dom\n");
        return 2;
    }

    std::printf("%-18s %8s %10s %10s %10s %10s %9s\n", "body (ns/byte)", "bytes", "scan",
                "scan-16k", "sax", "dom", "sax/scan");
    for (const Body& b : all) {
        Scan scan;
        Scan pieces;
        pieces.piece = 16 << 10;
        Sax sax;
        Dom dom;
        const double s = ns_per_byte(scan, b.text);
        const double s16 = ns_per_byte(pieces, b.text);
        const double x = ns_per_byte(sax, b.text);
        const double d = ns_per_byte(dom, b.text);
        std::printf("%-18s %8zu %10.3f %10.3f %10.3f %10.3f %8.1fx\n", b.name.c_str(),
                    b.text.size(), s, s16, x, d, x / s);
    }
    return 0;
}
