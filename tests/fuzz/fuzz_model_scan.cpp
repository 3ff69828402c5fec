// llm::ModelScan (llm/model_scan.hpp) against Boost.JSON 1.81's parse with
// the same max_depth. Checked: the same verdict; for a valid text, the same
// top-level kind, the same top-level "model" (kind and decoded value: Boost's
// object keeps the last of duplicate keys, as we do), and model_begin/end
// frame a JSON string that Boost decodes to that value. The input is also fed
// split at a position its first byte picks, and in pieces of a size its
// second byte picks (each piece a heap copy of its own, so that ASan sees a
// read past it): the results must equal the whole feed's, error offset
// included. With capture_prompt() on, the prompt's parts (SPEC §9) are
// checked too: the same from every feed, and each noted span ("tools",
// "prompt", and "role"/"content" of each object of a "messages" array) is
// JSON text that Boost parses to the value its DOM holds there.
//
// Where we differ from Boost.JSON on purpose, nothing more is compared:
// - "model too long": a top-level string "model" past kMaxModelBytes. When
//   Boost takes the text, the string at the error offset must decode to a
//   value that long (the rest of the text was not read: Boost may refuse
//   it, and then we agree);
// - exponents near INT_MAX: Boost.JSON's check depends on whether the number
//   starts at least 33 bytes before the end of its buffer (its fast path
//   counts 17-18 significant digits where its slow path counts 16-17). We
//   follow the slow path; when the verdicts differ over "exponent_overflow",
//   Boost is asked again one byte at a time (always its slow path).

#include "check.hpp"
#include "deepseek_gateway/llm/model_scan.hpp"

#include <boost/json/src.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace json = boost::json;
using dsgw::llm::ModelScan;

struct Result {
    bool ok;
    bool object;
    ModelScan::Model kind;
    std::string model;
    std::uint64_t begin, end;
    std::string error;
    std::uint64_t error_offset;
    // The prompt's parts, as [begin, end) pairs: tools, prompt, then role
    // and content of each message; has_messages.
    std::vector<std::uint64_t> spans;
    bool has_messages;

    bool operator==(const Result&) const = default;
};

// Every value is noted: the fuzzer's inputs are far below this.
constexpr std::uint64_t kCapture = 1ull << 40;

Result result_of(ModelScan& m, bool ok) {
    Result r{ok, false, ModelScan::Model::absent, {}, 0, 0, {}, 0, {}, false};
    if (ok) {
        r.has_messages = m.has_messages();
        for (auto span : {m.tools(), m.prompt()})
            r.spans.insert(r.spans.end(), {span.begin, span.end});
        for (const auto& msg : m.messages())
            r.spans.insert(r.spans.end(),
                           {msg.role.begin, msg.role.end, msg.content.begin, msg.content.end});
        r.object = m.top_level_object();
        r.kind = m.model_kind();
        if (r.kind == ModelScan::Model::string) {
            r.model = m.model();
            r.begin = m.model_begin();
            r.end = m.model_end();
        }
    } else {
        r.error = m.error() != nullptr ? m.error() : "(null)";
        r.error_offset = m.error_offset();
    }
    return r;
}

// Feeds `text` in pieces that start at the given multiples of `step` (0:
// whole), or split once at `cut`.
Result scan(std::string_view text, std::size_t step, std::size_t cut) {
    ModelScan m;
    m.capture_prompt(kCapture);
    bool fed = true;
    const auto feed = [&](std::string_view piece) {
        const std::unique_ptr<char[]> copy(new char[piece.size() + 1]);
        std::memcpy(copy.get(), piece.data(), piece.size());
        const bool r = m.feed(copy.get(), piece.size());
        DSGW_FUZZ_CHECK(fed || !r);  // stays failed
        fed = fed && r;
    };
    if (step != 0) {
        for (std::size_t at = 0; at < text.size(); at += step) feed(text.substr(at, step));
    } else {
        feed(text.substr(0, cut));
        feed(text.substr(cut));
    }
    const bool ok = m.finish();
    DSGW_FUZZ_CHECK(fed || !ok);
    return result_of(m, ok);
}

json::parse_options options() {
    json::parse_options opt;
    opt.max_depth = ModelScan::kMaxDepth;
    return opt;
}

// Boost.JSON one byte at a time: always its slow number path.
bool boost_valid_bytewise(std::string_view text) {
    json::stream_parser p(json::storage_ptr(), options());
    json::error_code ec;
    for (char c : text) {
        p.write(&c, 1, ec);
        if (ec) return false;
    }
    p.finish(ec);
    return !ec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    dsgw::fuzz::current_wire() = text;

    ModelScan m;
    m.capture_prompt(kCapture);
    m.feed(text.data(), text.size());
    const Result whole = result_of(m, m.finish());
    if (size > 0) {
        DSGW_FUZZ_CHECK(scan(text, 0, data[0] * size / 256) == whole);
        DSGW_FUZZ_CHECK(scan(text, 1 + (size > 1 ? data[1] % 16 : 0), 0) == whole);
    }

    json::monotonic_resource mr;
    json::error_code ec;
    const json::value v = json::parse(text, ec, &mr, options());
    if (whole.error == "model too long") {
        // Refusing a text Boost refuses too is fine, whatever the reason;
        // a valid one must have a model that long at the error offset.
        if (ec) return 0;
        json::stream_parser p(json::storage_ptr(), options());
        p.write_some(text.data() + whole.error_offset, size - whole.error_offset, ec);
        DSGW_FUZZ_CHECK(!ec && p.done());
        const json::value model = p.release();
        DSGW_FUZZ_CHECK(model.is_string() && model.get_string().size() > ModelScan::kMaxModelBytes);
        return 0;
    }
    bool boost_ok = !ec;
    if (boost_ok != whole.ok &&
        (ec == json::error::exponent_overflow || whole.error == "number out of range"))
        boost_ok = boost_valid_bytewise(text);
    DSGW_FUZZ_CHECK(boost_ok == whole.ok);
    if (!whole.ok) {
        DSGW_FUZZ_CHECK(whole.error_offset <= size);
        return 0;
    }
    if (ec) return 0;  // valid by Boost's slow path only: no value to compare

    DSGW_FUZZ_CHECK(whole.object == v.is_object());
    ModelScan::Model kind = ModelScan::Model::absent;
    const json::value* model = nullptr;
    if (const json::object* o = v.if_object()) {
        model = o->if_contains("model");
        if (model != nullptr)
            kind = model->is_string() ? ModelScan::Model::string : ModelScan::Model::other;
    }
    DSGW_FUZZ_CHECK(whole.kind == kind);

    // The prompt's parts: each span frames the value Boost has there.
    json::monotonic_resource span_mr;
    const auto frames = [&](std::uint64_t b, std::uint64_t e, const json::value* want) {
        if (!want) return b == e;
        if (!(b < e && e <= size)) return false;
        json::error_code span_ec;
        const json::value got = json::parse(text.substr(b, e - b), span_ec, &span_mr, options());
        return !span_ec && got == *want;
    };
    const json::object* top = v.if_object();
    const auto member = [](const json::object* o, std::string_view key) -> const json::value* {
        return o ? o->if_contains(key) : nullptr;
    };
    DSGW_FUZZ_CHECK(frames(whole.spans[0], whole.spans[1], member(top, "tools")));
    DSGW_FUZZ_CHECK(frames(whole.spans[2], whole.spans[3], member(top, "prompt")));
    const json::value* messages = member(top, "messages");
    DSGW_FUZZ_CHECK(whole.has_messages == (messages && messages->is_array()));
    if (whole.has_messages) {
        std::size_t at = 4;
        for (const auto& element : messages->get_array()) {
            const json::object* msg = element.if_object();
            if (!msg) continue;
            DSGW_FUZZ_CHECK(at + 4 <= whole.spans.size());
            DSGW_FUZZ_CHECK(frames(whole.spans[at], whole.spans[at + 1], member(msg, "role")));
            DSGW_FUZZ_CHECK(
                frames(whole.spans[at + 2], whole.spans[at + 3], member(msg, "content")));
            at += 4;
        }
        DSGW_FUZZ_CHECK(at == whole.spans.size());
    } else {
        DSGW_FUZZ_CHECK(whole.spans.size() == 4);
    }

    if (kind != ModelScan::Model::string) return 0;
    const json::string& s = model->get_string();
    DSGW_FUZZ_CHECK(whole.model == std::string_view(s.data(), s.size()));
    DSGW_FUZZ_CHECK(whole.begin < whole.end && whole.end <= size);
    const json::value framed =
        json::parse(text.substr(whole.begin, whole.end - whole.begin), ec, &mr, options());
    DSGW_FUZZ_CHECK(!ec && framed.is_string() && framed.get_string() == s);
    return 0;
}
