#include "deepseek_gateway/llm/model_scan.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string_view>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

// A state machine over the bytes, resumable at any byte: a piece may end
// anywhere (inside a string, an escape, a UTF-8 sequence, a number, a
// literal). Most of a chat body is string contents, which skip_string() passes
// over 16 bytes at a time; everything else is one byte per step.

namespace dsgw::llm {

enum class ModelScan::State : std::uint8_t {
    value,           // a value starts here: the text's, an element's, a member's
    first_value,     // after '[': a value or ']'
    first_key,       // after '{': a key or '}'
    key,             // after ',' in an object: a key
    colon,           // after a key
    next,            // after a value in a container: ',' or the container's close
    done,            // after the text's value: whitespace only
    string,          // inside a string
    escape,          // after '\' in a string
    hex,             // inside \uXXXX
    low_backslash,   // after a high surrogate's \uXXXX: the '\' of its low half
    low_u,           // then its 'u'
    utf8,            // inside a multi-byte UTF-8 sequence
    literal,         // inside true, false or null
    num_minus,       // after '-'
    num_zero,        // a leading 0
    num_int,         // integer digits
    num_frac_first,  // after '.'
    num_frac,        // fraction digits
    num_exp_sign,    // after 'e' or 'E'
    num_exp_first,   // after the exponent's sign
    num_exp,         // exponent digits
    failed,
};

namespace {

bool is_ws(unsigned char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

bool is_plain(unsigned char c) {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

// A UTF-8 lead byte (>= 0x80): the sequence's length and the range of its
// second byte (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF). Length 0: not a lead byte.
struct Lead {
    std::uint8_t len, lo, hi;
};

constexpr Lead lead_of(unsigned c) {
    if (c < 0xC2) return {0, 0, 0};
    if (c < 0xE0) return {2, 0x80, 0xBF};
    if (c == 0xE0) return {3, 0xA0, 0xBF};
    if (c == 0xED) return {3, 0x80, 0x9F};
    if (c < 0xF0) return {3, 0x80, 0xBF};
    if (c == 0xF0) return {4, 0x90, 0xBF};
    if (c < 0xF4) return {4, 0x80, 0xBF};
    if (c == 0xF4) return {4, 0x80, 0x8F};
    return {0, 0, 0};
}

struct Tables {
    Lead lead[256];
    std::int8_t hex[256];  // a hex digit's value, else -1
    constexpr Tables() : lead(), hex() {
        for (unsigned c = 0; c < 256; ++c) {
            lead[c] = lead_of(c);
            hex[c] = c >= '0' && c <= '9'   ? static_cast<std::int8_t>(c - '0')
                     : c >= 'a' && c <= 'f' ? static_cast<std::int8_t>(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? static_cast<std::int8_t>(c - 'A' + 10)
                                            : std::int8_t{-1};
        }
    }
};
constexpr Tables kTables;

Lead lead(char c) {
    return kTables.lead[static_cast<unsigned char>(c)];
}
int hex_value(char c) {
    return kTables.hex[static_cast<unsigned char>(c)];
}

// The length of the well-formed multi-byte sequence at p (at least 4 bytes
// readable), or 0.
[[gnu::always_inline]] inline unsigned utf8_length(const char* p) {
    const Lead l = lead(*p);
    const auto c1 = static_cast<unsigned char>(p[1]);
    if (l.len == 0 || static_cast<unsigned char>(c1 - l.lo) > l.hi - l.lo) return 0;
    if (l.len >= 3 && (static_cast<unsigned char>(p[2]) & 0xC0) != 0x80) return 0;
    if (l.len == 4 && (static_cast<unsigned char>(p[3]) & 0xC0) != 0x80) return 0;
    return l.len;
}

#ifdef __SSE2__
// Checks the bytes >= 0x80 of a 16-byte block (`high`, their mask) all at
// once: they must be well-formed UTF-8 sequences, but for one that may run
// past the block. Returns how far the block is done (16, or where that last
// sequence starts), or 0 when anything is off (the caller then looks at each
// sequence).
[[gnu::always_inline]] inline unsigned utf8_block(__m128i v, unsigned high) {
    // As signed bytes, 0x80-0xFF sort below all ASCII, in their own order.
    const auto below = [v](unsigned char c) {
        return static_cast<unsigned>(
            _mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(c)))));
    };
    const unsigned cont = below(0xC0);
    const unsigned below_c2 = below(0xC2);
    const unsigned below_e0 = below(0xE0);
    const unsigned below_f0 = below(0xF0);
    const unsigned below_f5 = below(0xF5);
    if ((below_c2 & ~cont) != 0 || (high & ~below_f5) != 0) return 0;  // C0, C1, F5-FF
    const unsigned lead2 = below_e0 & ~below_c2;
    const unsigned lead3 = below_f0 & ~below_e0;
    const unsigned lead4 = below_f5 & ~below_f0;
    // Each lead is followed by exactly its continuation bytes.
    const unsigned expected = ((lead2 | lead3 | lead4) << 1 | (lead3 | lead4) << 2 | lead4 << 3);
    if ((expected & 0xFFFF) != cont) return 0;
    // Second bytes narrowed by their lead: no overlong forms, no surrogates,
    // nothing past U+10FFFF. Those leads are rare: look for any first.
    const auto is = [v](unsigned char c) {
        return _mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(c)));
    };
    const __m128i e0 = is(0xE0), ed = is(0xED), f0 = is(0xF0), f4 = is(0xF4);
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(e0, ed), _mm_or_si128(f0, f4))) != 0) {
        const unsigned below_a0 = below(0xA0);
        const unsigned below_90 = below(0x90);
        const auto mask = [](__m128i m) {
            return static_cast<unsigned>(_mm_movemask_epi8(m)) << 1;
        };
        const unsigned bad = (mask(e0) & below_a0) | (mask(ed) & ~below_a0) |
                             (mask(f0) & below_90) | (mask(f4) & ~below_90);
        if ((bad & 0xFFFF) != 0) return 0;
    }
    const unsigned cut = (lead2 & 0x8000) | (lead3 & 0xC000) | (lead4 & 0xE000);
    return cut != 0 ? static_cast<unsigned>(__builtin_ctz(cut)) : 16;
}
#endif

// Past plain string bytes (printable ASCII but '"' and '\\') and well-formed
// multi-byte UTF-8 sequences. Stops at '"', '\\', a control character, a byte
// >= 0x80 that does not start a well-formed sequence with 4 bytes readable
// (the caller looks at those byte by byte), or end.
const char* skip_string(const char* p, const char* end) {
#ifdef __SSE2__
    // 16 bytes at a time. `special`: the ASCII bytes that end a run; `high`:
    // bytes >= 0x80, whose sequences are checked from the mask, without
    // leaving the block.
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control_max = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, control_max), v);
        const auto special = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control)));
        const auto high = static_cast<unsigned>(_mm_movemask_epi8(v));
        if ((special | high) == 0) {
            p += 16;
            continue;
        }
        const unsigned stop = special != 0 ? static_cast<unsigned>(__builtin_ctz(special)) : 16;
        if (stop == 16) {
            if (const unsigned done = utf8_block(v, high); done != 0) {
                p += done;
                continue;
            }
        }
        unsigned leads = high & ((1u << stop) - 1);
        unsigned next = 16;  // where the next block starts, from p
        while (leads != 0) {
            const unsigned at = static_cast<unsigned>(__builtin_ctz(leads));
            const char* q = p + at;
            if (end - q < 4) return q;
            const unsigned len = utf8_length(q);
            if (len == 0) return q;
            // Its continuation bytes are high too: clear them. A sequence is
            // all high bytes, so it ends before `stop`, or runs past the block.
            leads &= ~((1u << (at + len)) - 1);
            next = std::max(next, at + len);
        }
        if (stop < 16) return p + stop;
        p += next;
    }
#else
    // Eight bytes at a time: a high bit in `hit` marks a byte that is '"',
    // '\\', below 0x20 or above 0x7F (a borrow only starts at such a byte, so
    // there is no false alarm); the loop below then finds which.
    constexpr std::uint64_t ones = 0x0101010101010101;
    constexpr std::uint64_t highs = 0x8080808080808080;
    while (end - p >= 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        const std::uint64_t q = v ^ (ones * '"');
        const std::uint64_t b = v ^ (ones * '\\');
        const std::uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | (v - ones * 0x20) | v;
        if ((hit & highs) != 0) break;
        p += 8;
    }
#endif
    for (;;) {
        while (p != end && is_plain(static_cast<unsigned char>(*p))) ++p;
        if (p == end || static_cast<unsigned char>(*p) < 0x80 || end - p < 4) return p;
        const unsigned len = utf8_length(p);
        if (len == 0) return p;
        p += len;
    }
}

// Four hex digits at p, or -1.
std::int32_t hex4(const char* p) {
    const int a = hex_value(p[0]);
    const int b = hex_value(p[1]);
    const int c = hex_value(p[2]);
    const int d = hex_value(p[3]);
    if ((a | b | c | d) < 0) return -1;
    return a << 12 | b << 8 | c << 4 | d;
}

// Past the escapes that start at p, when whole (at least 12 bytes left) and
// valid: a \u high surrogate with its low half. Stops at anything else, for
// the state machine to take byte by byte.
const char* skip_escapes(const char* p, const char* end) {
    while (end - p >= 12 && *p == '\\') {
        switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                continue;
            case 'u':
                break;
            default:
                return p;
        }
        const std::int32_t u = hex4(p + 2);
        if (u < 0) return p;
        if (u < 0xD800 || u > 0xDFFF) {
            p += 6;
            continue;
        }
        if (u > 0xDBFF || p[6] != '\\' || p[7] != 'u') return p;
        const std::int32_t low = hex4(p + 8);
        if (low < 0xDC00 || low > 0xDFFF) return p;
        p += 12;
    }
    return p;
}

}  // namespace

void ModelScan::reset() {
    std::string keep = std::move(model_);
    keep.clear();
    std::vector<Message> keep_messages = std::move(messages_);
    keep_messages.clear();
    *this = ModelScan();
    model_ = std::move(keep);
    messages_ = std::move(keep_messages);
}

bool ModelScan::fail(const char* at, const char* base, const char* reason) {
    return fail_at(consumed_ + static_cast<std::uint64_t>(at - base), reason);
}

bool ModelScan::fail_at(std::uint64_t offset, const char* reason) {
    error_offset_ = offset;
    error_ = reason;
    state_ = State::failed;
    return false;
}

// Reported where the model's value starts, wherever the piece ended.
bool ModelScan::model_too_long() {
    return fail_at(model_begin_, "model too long");
}

bool ModelScan::push(bool object) {
    if (depth_ == kMaxDepth) return false;
    std::uint64_t& word = stack_[depth_ >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (depth_ & 63);
    word = object ? (word | bit) : (word & ~bit);
    ++depth_;
    return true;
}

// Appends to the string being kept; false when a model grows past its cap.
bool ModelScan::append(const char* p, std::size_t n) {
    if (sink_ == Sink::model) {
        if (n > kMaxModelBytes - model_.size()) return false;
        model_.append(p, n);
    } else if (sink_ == Sink::key) {
        const std::size_t have = std::min<std::size_t>(key_len_, sizeof key_);
        std::memcpy(key_ + have, p, std::min(n, sizeof key_ - have));
        key_len_ = static_cast<std::uint8_t>(std::min<std::size_t>(key_len_ + n, sizeof key_ + 1));
    }
    return true;
}

bool ModelScan::append_code_point(std::uint32_t cp) {
    char u[4];
    std::size_t n;
    if (cp < 0x80) {
        u[0] = static_cast<char>(cp);
        n = 1;
    } else if (cp < 0x800) {
        u[0] = static_cast<char>(0xC0 | (cp >> 6));
        u[1] = static_cast<char>(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = static_cast<char>(0xE0 | (cp >> 12));
        u[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        u[2] = static_cast<char>(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = static_cast<char>(0xF0 | (cp >> 18));
        u[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        u[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        u[3] = static_cast<char>(0x80 | (cp & 0x3F));
        n = 4;
    }
    return append(u, n);
}

// A value ended at `end` (one past its last byte).
void ModelScan::value_done(std::uint64_t end) {
    state_ = depth_ != 0 ? State::next : State::done;
    if (capturing_ != Next::none && depth_ == capture_depth_) [[unlikely]] {
        const Span span{capture_begin_, end};
        switch (capturing_) {
            case Next::tools:
                tools_ = span;
                break;
            case Next::prompt:
                prompt_ = span;
                break;
            case Next::role:
                messages_.back().role = span;
                break;
            case Next::content:
                messages_.back().content = span;
                break;
            default:
                break;
        }
        captured_ += end - capture_begin_;
        capturing_ = Next::none;
    }
}

void ModelScan::pop(std::uint64_t end) {
    if (messages_open_) {
        if (depth_ == 3) message_noted_ = false;
        if (depth_ == 2) messages_open_ = false;
    }
    --depth_;
    value_done(end);
}

// A value starts at `at` with `c`, and it is one the prompt is made of, or an
// element of "messages" (capture_prompt() only).
void ModelScan::start_value(unsigned char c, std::uint64_t at) {
    const Next next = next_;
    next_ = Next::none;
    if (depth_ == 2 && messages_open_) {
        message_noted_ = c == '{' && captured_ < capture_max_;
        if (message_noted_) messages_.emplace_back();
        return;
    }
    switch (next) {
        case Next::none:
        case Next::model:
            return;
        case Next::messages:
            messages_.clear();
            has_messages_ = messages_open_ = c == '[';
            return;
        default:
            capturing_ = next;
            capture_begin_ = at;
            capture_depth_ = depth_;
            return;
    }
}

// A key ended: what its value will be.
void ModelScan::key_done() {
    next_ = Next::none;
    if (sink_ != Sink::key || key_len_ > sizeof key_) return;
    const std::string_view k(key_, key_len_);
    if (depth_ == 1) {
        if (k == "model")
            next_ = Next::model;
        else if (capture_max_ == 0)
            return;
        else if (k == "messages")
            next_ = Next::messages;
        else if (k == "tools")
            next_ = Next::tools;
        else if (k == "prompt")
            next_ = Next::prompt;
    } else if (k == "role") {
        next_ = Next::role;
    } else if (k == "content") {
        next_ = Next::content;
    }
}

// A number ends at `at` (not consumed). Boost.JSON 1.81 refuses an exponent
// that, with the shift of the significant digits, leaves an int; so do we.
bool ModelScan::end_number(const char* at, const char* base) {
    if (state_ == State::num_exp) {
        const bool overflow = exp_negative_ ? bias_ < std::int64_t{INT_MIN} + exp_
                                            : bias_ > std::int64_t{INT_MAX} - exp_;
        if (overflow) return fail(at, base, "number out of range");
    }
    value_done(consumed_ + static_cast<std::uint64_t>(at - base));
    return true;
}

bool ModelScan::feed(const char* data, std::size_t n) {
    if (state_ == State::failed) return false;
    const char* p = data;
    const char* const end = data + n;
    while (p != end) {
        switch (state_) {
            case State::value:
            case State::first_value: {
                const auto c = static_cast<unsigned char>(*p);
                if (is_ws(c)) {
                    ++p;
                    break;
                }
                if (c == ']' && state_ == State::first_value) {
                    pop(consumed_ + static_cast<std::uint64_t>(p - data) + 1);
                    ++p;
                    break;
                }
                const bool model = next_ == Next::model;
                if (next_ != Next::none || (messages_open_ && depth_ == 2))
                    start_value(c, consumed_ + static_cast<std::uint64_t>(p - data));
                if (model && c != '"') model_kind_ = Model::other;
                switch (c) {
                    case '"':
                        if (model) {
                            model_kind_ = Model::string;
                            model_.clear();
                            model_begin_ = consumed_ + static_cast<std::uint64_t>(p - data);
                            sink_ = Sink::model;
                        } else {
                            sink_ = Sink::none;
                        }
                        string_is_key_ = false;
                        state_ = State::string;
                        break;
                    case '{':
                    case '[':
                        if (depth_ == 0) top_object_ = c == '{';
                        if (!push(c == '{')) return fail(p, data, "too deep");
                        state_ = c == '{' ? State::first_key : State::first_value;
                        break;
                    case 't':
                        literal_ = "rue";
                        state_ = State::literal;
                        break;
                    case 'f':
                        literal_ = "alse";
                        state_ = State::literal;
                        break;
                    case 'n':
                        literal_ = "ull";
                        state_ = State::literal;
                        break;
                    default:
                        if (c != '-' && !is_digit(c)) return fail(p, data, "unexpected character");
                        negative_ = c == '-';
                        mant_ = c == '-' ? 0 : c - '0';
                        bias_ = 0;
                        exp_ = 0;
                        exp_negative_ = int_overflowed_ = frac_overflowed_ = false;
                        state_ = c == '-'   ? State::num_minus
                                 : c == '0' ? State::num_zero
                                            : State::num_int;
                        break;
                }
                ++p;
                break;
            }

            case State::first_key:
            case State::key: {
                const auto c = static_cast<unsigned char>(*p);
                if (is_ws(c)) {
                    ++p;
                    break;
                }
                if (c == '}' && state_ == State::first_key) {
                    pop(consumed_ + static_cast<std::uint64_t>(p - data) + 1);
                    ++p;
                    break;
                }
                if (c != '"') return fail(p, data, "unexpected character");
                ++p;
                string_is_key_ = true;
                sink_ = depth_ == 1 || (depth_ == 3 && message_noted_) ? Sink::key : Sink::none;
                key_len_ = 0;
                state_ = State::string;
                break;
            }

            case State::colon: {
                const auto c = static_cast<unsigned char>(*p);
                if (is_ws(c)) {
                    ++p;
                    break;
                }
                if (c != ':') return fail(p, data, "unexpected character");
                ++p;
                state_ = State::value;
                break;
            }

            case State::next: {
                const auto c = static_cast<unsigned char>(*p);
                if (is_ws(c)) {
                    ++p;
                    break;
                }
                if (c == ',') {
                    state_ = in_object() ? State::key : State::value;
                } else if (c == (in_object() ? '}' : ']')) {
                    pop(consumed_ + static_cast<std::uint64_t>(p - data) + 1);
                } else {
                    return fail(p, data, "unexpected character");
                }
                ++p;
                break;
            }

            case State::done:
                if (!is_ws(static_cast<unsigned char>(*p)))
                    return fail(p, data, "trailing characters");
                ++p;
                break;

            case State::string: {
                const char* run = p;
                for (;;) {
                    p = skip_string(p, end);
                    if (p == end) break;
                    const auto c = static_cast<unsigned char>(*p);
                    if (c < 0x80) {
                        // Whole escapes in a string not kept are checked here,
                        // the rest byte by byte by the states below.
                        if (c != '\\' || sink_ != Sink::none) break;
                        const char* after = skip_escapes(p, end);
                        if (after == p) break;
                        p = after;
                        continue;
                    }
                    const Lead l = lead(static_cast<char>(c));
                    if (l.len == 0) return fail(p, data, "invalid UTF-8");
                    if (end - p < l.len) {
                        // Cut by the end of the piece: State::utf8 checks the rest.
                        utf8_need_ = static_cast<std::uint8_t>(l.len - 1);
                        utf8_lo_ = l.lo;
                        utf8_hi_ = l.hi;
                        state_ = State::utf8;
                        ++p;
                        break;
                    }
                    const auto c1 = static_cast<unsigned char>(p[1]);
                    if (c1 < l.lo || c1 > l.hi) return fail(p + 1, data, "invalid UTF-8");
                    for (int i = 2; i < l.len; ++i)
                        if ((static_cast<unsigned char>(p[i]) & 0xC0) != 0x80)
                            return fail(p + i, data, "invalid UTF-8");
                    p += l.len;
                }
                if (sink_ != Sink::none && p != run &&
                    !append(run, static_cast<std::size_t>(p - run)))
                    return model_too_long();
                if (p == end || state_ == State::utf8) break;
                const auto c = static_cast<unsigned char>(*p);
                if (c == '"') {
                    ++p;
                    if (string_is_key_) {
                        key_done();
                        state_ = State::colon;
                    } else {
                        const auto end_at = consumed_ + static_cast<std::uint64_t>(p - data);
                        if (sink_ == Sink::model) model_end_ = end_at;
                        value_done(end_at);
                    }
                    sink_ = Sink::none;
                } else if (c == '\\') {
                    ++p;
                    state_ = State::escape;
                } else {
                    return fail(p, data, "control character in string");
                }
                break;
            }

            case State::utf8: {
                const auto c = static_cast<unsigned char>(*p);
                if (c < utf8_lo_ || c > utf8_hi_) return fail(p, data, "invalid UTF-8");
                if (sink_ != Sink::none && !append(p, 1)) return model_too_long();
                ++p;
                utf8_lo_ = 0x80;
                utf8_hi_ = 0xBF;
                if (--utf8_need_ == 0) state_ = State::string;
                break;
            }

            case State::escape: {
                char decoded;
                switch (*p) {
                    case '"':
                        decoded = '"';
                        break;
                    case '\\':
                        decoded = '\\';
                        break;
                    case '/':
                        decoded = '/';
                        break;
                    case 'b':
                        decoded = '\b';
                        break;
                    case 'f':
                        decoded = '\f';
                        break;
                    case 'n':
                        decoded = '\n';
                        break;
                    case 'r':
                        decoded = '\r';
                        break;
                    case 't':
                        decoded = '\t';
                        break;
                    case 'u':
                        ++p;
                        hex_digits_ = 0;
                        hex_ = 0;
                        state_ = State::hex;
                        continue;
                    default:
                        return fail(p, data, "invalid escape");
                }
                if (sink_ != Sink::none && !append(&decoded, 1)) return model_too_long();
                ++p;
                state_ = State::string;
                break;
            }

            case State::hex: {
                const int d = hex_value(*p);
                if (d < 0) return fail(p, data, "invalid \\u escape");
                ++p;
                hex_ = hex_ << 4 | static_cast<std::uint32_t>(d);
                if (++hex_digits_ < 4) break;
                std::uint32_t cp = hex_;
                if (high_surrogate_ != 0) {
                    if (cp < 0xDC00 || cp > 0xDFFF) return fail(p, data, "invalid surrogate");
                    cp = 0x10000 + ((high_surrogate_ - 0xD800) << 10) + (cp - 0xDC00);
                    high_surrogate_ = 0;
                } else if (cp >= 0xD800 && cp <= 0xDBFF) {
                    high_surrogate_ = cp;
                    state_ = State::low_backslash;
                    break;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return fail(p, data, "invalid surrogate");
                }
                if (!append_code_point(cp)) return model_too_long();
                state_ = State::string;
                break;
            }

            case State::low_backslash:
            case State::low_u: {
                const char want = state_ == State::low_backslash ? '\\' : 'u';
                if (*p != want) return fail(p, data, "invalid surrogate");
                ++p;
                if (want == 'u') {
                    hex_digits_ = 0;
                    hex_ = 0;
                    state_ = State::hex;
                } else {
                    state_ = State::low_u;
                }
                break;
            }

            case State::literal:
                if (*p != *literal_) return fail(p, data, "unexpected character");
                ++p;
                if (*++literal_ == '\0') value_done(consumed_ + static_cast<std::uint64_t>(p - data));
                break;

            case State::num_minus:
                if (!is_digit(static_cast<unsigned char>(*p)))
                    return fail(p, data, "unexpected character");
                mant_ = static_cast<std::uint64_t>(*p - '0');
                state_ = *p == '0' ? State::num_zero : State::num_int;
                ++p;
                break;

            case State::num_int:
                // Digits past what fits in 64 bits only shift the value (Boost.JSON's bias).
                while (p != end && is_digit(static_cast<unsigned char>(*p))) {
                    const unsigned d = static_cast<unsigned>(*p - '0');
                    if (int_overflowed_) {
                        ++bias_;
                    } else if (negative_ ? (mant_ > 922337203685477580u ||
                                            (mant_ == 922337203685477580u && d > 8))
                                         : (mant_ > 1844674407370955161u ||
                                            (mant_ == 1844674407370955161u && d > 5))) {
                        int_overflowed_ = true;
                        ++bias_;
                    } else {
                        mant_ = mant_ * 10 + d;
                    }
                    ++p;
                }
                if (p == end) break;
                [[fallthrough]];
            case State::num_zero:
                if (*p == '.') {
                    ++p;
                    state_ = State::num_frac_first;
                } else if ((*p | 0x20) == 'e') {
                    ++p;
                    state_ = State::num_exp_sign;
                } else if (!end_number(p, data)) {
                    return false;
                }
                break;

            case State::num_frac_first:
                if (!is_digit(static_cast<unsigned char>(*p)))
                    return fail(p, data, "unexpected character");
                state_ = State::num_frac;
                [[fallthrough]];
            case State::num_frac:
                // Significant while they fit in 53 bits (Boost.JSON's bias again).
                while (p != end && is_digit(static_cast<unsigned char>(*p))) {
                    if (!int_overflowed_ && !frac_overflowed_) {
                        if (mant_ <= 9007199254740991u) {
                            --bias_;
                            mant_ = mant_ * 10 + static_cast<unsigned>(*p - '0');
                        } else {
                            frac_overflowed_ = true;
                        }
                    }
                    ++p;
                }
                if (p == end) break;
                if ((*p | 0x20) == 'e') {
                    ++p;
                    state_ = State::num_exp_sign;
                } else if (!end_number(p, data)) {
                    return false;
                }
                break;

            case State::num_exp_sign:
                state_ = State::num_exp_first;
                if (*p == '+' || *p == '-') {
                    exp_negative_ = *p == '-';
                    ++p;
                    break;
                }
                [[fallthrough]];
            case State::num_exp_first:
                if (!is_digit(static_cast<unsigned char>(*p)))
                    return fail(p, data, "unexpected character");
                state_ = State::num_exp;
                [[fallthrough]];
            case State::num_exp:
                while (p != end && is_digit(static_cast<unsigned char>(*p))) {
                    const int d = *p - '0';
                    if (exp_ > 214748364 || (exp_ == 214748364 && d > 7))
                        return fail(p, data, "number out of range");
                    exp_ = exp_ * 10 + d;
                    ++p;
                }
                if (p != end && !end_number(p, data)) return false;
                break;

            case State::failed:
                return false;
        }
    }
    consumed_ += n;
    return true;
}

bool ModelScan::finish() {
    if (state_ == State::failed) return false;
    switch (state_) {
        case State::num_zero:
        case State::num_int:
        case State::num_frac:
        case State::num_exp:
            if (!end_number(nullptr, nullptr)) return false;
            break;
        default:
            break;
    }
    if (state_ != State::done) {
        error_offset_ = consumed_;
        error_ = "incomplete";
        state_ = State::failed;
        return false;
    }
    return true;
}

}  // namespace dsgw::llm
