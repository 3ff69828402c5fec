#pragma once
// The top-level "model" of a JSON request body (SPEC §8), read as the body
// arrives: a resumable scanner that validates the whole text and keeps no copy
// of it. Chosen over Boost.JSON's parsers by measurement (docs/performance.md,
// "Reading the model from a JSON body"; bench/json_scan).
//
// Strictness is Boost.JSON's default parse (RFC 8259, UTF-8 checked, no
// comments, no trailing commas, no leading BOM, lone or unpaired UTF-16
// surrogates in \u escapes refused, exponents that overflow Boost.JSON's int
// refused), with kMaxDepth for the depth; tests/fuzz/fuzz_model_scan.cpp
// checks the verdict, the model and its offsets against Boost.JSON.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dsgw::llm {

// Reads a JSON text fed in pieces (an HTTP body as it arrives, decoded from
// chunked if it was), validates all of it, and remembers the top-level
// object's "model" member: the LAST one when given twice (Python's json, which
// vLLM and SGLang use). Keys are compared after their escapes are decoded.
class ModelScan {
public:
    // Arrays and objects nested deeper than this are refused ("too deep").
    // Python's json, which the servers behind us parse with, stops near its
    // recursion limit of 1000, so nothing deeper would be served anyway; a bit
    // per level keeps the stack at 128 bytes inside the object.
    static constexpr std::uint32_t kMaxDepth = 1000;
    // A string "model" longer than this (decoded) fails the scan ("model too
    // long"): no model name is near it, and the value is the one thing kept.
    static constexpr std::size_t kMaxModelBytes = 4096;

    ModelScan() = default;

    // The next bytes. False once the text is known to be invalid (then stays
    // false; further feeds are ignored).
    bool feed(const char* data, std::size_t n);
    // The body ended. False when the text is invalid or incomplete.
    bool finish();

    // After a finish() that returned true: what the top-level "model" was.
    enum class Model : std::uint8_t { absent, string, other };
    Model model_kind() const { return model_kind_; }
    // The text is an object (else a valid non-object: no model).
    bool top_level_object() const { return top_object_; }
    // The decoded value (escapes and \u sequences, surrogate pairs included,
    // resolved), when model_kind() is Model::string.
    const std::string& model() const { return model_; }
    // Offsets in the whole text of that value's opening quote, and one past
    // its closing quote (Model::string only).
    std::uint64_t model_begin() const { return model_begin_; }
    std::uint64_t model_end() const { return model_end_; }

    // Where the text became invalid (the offending byte, the text's length
    // when it ended too early, the model's opening quote when it is too
    // long), and a short reason ("unexpected character",
    // "invalid UTF-8", "too deep", ...). Null while valid.
    std::uint64_t error_offset() const { return error_offset_; }
    const char* error() const { return error_; }

    // The prompt (SPEC §9), for prefix_affinity: asked for with
    // capture_prompt() before the first feed(), the scan also notes where
    // the values of the top-level "tools" and "prompt", and of "role" and
    // "content" in each object of the top-level "messages" array, lie in the
    // text (raw JSON, quotes included; the last of duplicate keys wins).
    // Messages stop being noted once the values noted add up to `max_bytes`:
    // a prompt is only hashed that far.
    struct Span {
        std::uint64_t begin = 0, end = 0;  // [begin, end) in the whole text
        bool empty() const { return begin == end; }
    };
    struct Message {
        Span role, content;
    };
    void capture_prompt(std::uint64_t max_bytes) { capture_max_ = max_bytes; }
    // After a finish() that returned true: whether "messages" was an array,
    // its objects, and the other two values (empty when absent).
    bool has_messages() const { return has_messages_; }
    const std::vector<Message>& messages() const { return messages_; }
    Span tools() const { return tools_; }
    Span prompt() const { return prompt_; }

    // For the next request (keeps the model's and the messages' capacity;
    // capture_prompt() is off again).
    void reset();

private:
    enum class State : std::uint8_t;

    bool fail(const char* at, const char* base, const char* reason);
    bool fail_at(std::uint64_t offset, const char* reason);
    bool model_too_long();
    bool end_number(const char* at, const char* base);
    bool append(const char* p, std::size_t n);
    bool append_code_point(std::uint32_t cp);
    bool push(bool object);
    void pop(std::uint64_t end);
    void value_done(std::uint64_t end);
    void start_value(unsigned char c, std::uint64_t at);
    void key_done();
    bool in_object() const { return (stack_[(depth_ - 1) >> 6] >> ((depth_ - 1) & 63)) & 1; }

    std::uint64_t consumed_ = 0;                       // bytes fed before the current piece
    std::uint64_t stack_[(kMaxDepth + 63) / 64] = {};  // bit set: that level is an object
    std::uint32_t depth_ = 0;
    State state_{};
    // The string being read: its bytes go nowhere, to key_ (a top-level key)
    // or to model_ (the value of a top-level "model").
    enum class Sink : std::uint8_t { none, key, model } sink_ = Sink::none;
    bool string_is_key_ = false;
    // What the value about to start is: a top-level "model", one of the
    // prompt's parts, or nothing of interest.
    enum class Next : std::uint8_t { none, model, tools, prompt, messages, role, content };
    Next next_ = Next::none;
    bool top_object_ = false;
    // A multi-byte UTF-8 sequence cut by the end of a piece: bytes still due,
    // and the range of the next one.
    std::uint8_t utf8_need_ = 0;
    std::uint8_t utf8_lo_ = 0;
    std::uint8_t utf8_hi_ = 0;
    // A \u escape: hex digits read so far, its value, and the high surrogate
    // it pairs with (0 when it is not the second half of a pair).
    std::uint8_t hex_digits_ = 0;
    std::uint32_t hex_ = 0;
    std::uint32_t high_surrogate_ = 0;
    // The rest of true, false or null still to match.
    const char* literal_ = nullptr;
    // A number, as Boost.JSON 1.81 counts it for its exponent-overflow check:
    // significant digits (mant), the decimal shift they imply (bias), the
    // exponent and its sign.
    std::uint64_t mant_ = 0;
    std::int64_t bias_ = 0;
    std::int32_t exp_ = 0;
    bool negative_ = false;
    bool exp_negative_ = false;
    bool int_overflowed_ = false;
    bool frac_overflowed_ = false;
    // A top-level key, decoded: "model" is 5 bytes, so 8 are plenty; a longer
    // key only counts up to 9 and is not kept.
    char key_[8] = {};
    std::uint8_t key_len_ = 0;

    Model model_kind_ = Model::absent;
    std::string model_;
    std::uint64_t model_begin_ = 0;
    std::uint64_t model_end_ = 0;
    std::uint64_t error_offset_ = 0;
    const char* error_ = nullptr;

    // The prompt's parts (capture_prompt()). A value being noted: which
    // part, where it began, and the depth it ends at.
    std::uint64_t capture_max_ = 0;
    std::uint64_t captured_ = 0;
    Next capturing_ = Next::none;
    std::uint64_t capture_begin_ = 0;
    std::uint32_t capture_depth_ = 0;
    bool messages_open_ = false;  // inside the top-level "messages" array (at depth 2)
    bool message_noted_ = false;  // the object at depth 3 is messages_.back()
    bool has_messages_ = false;
    Span tools_, prompt_;
    std::vector<Message> messages_;
};

}  // namespace dsgw::llm
