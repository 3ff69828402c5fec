// Chunked bodies built from the input: chunk sizes (hex in either case, with
// leading zeros), data, extensions (names, token and quoted values, BWS),
// the last chunk, trailer fields, then maybe a pipelined tail. Built by the
// grammar unless the input asks for raw bytes in some place.
//
// - Well formed: our parser, in reads whose sizes the input chooses, must
//   take it whole: the decoded body is the chunks' data, and the message
//   ends where the last CRLF does.
// - Always: against Beast (beast_compare.hpp), and the same outcome whether
//   read in slices or at once.

#include "beast_compare.hpp"
#include "same_outcome.hpp"

#include <fuzzer/FuzzedDataProvider.h>

namespace {

using namespace dsgw::fuzz;

constexpr std::string_view kTchar =
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

std::string token(FuzzedDataProvider& in) {
    std::string t = in.ConsumeRandomLengthString(12);
    if (t.empty()) t = "x";
    for (auto& c : t) c = kTchar[static_cast<unsigned char>(c) % kTchar.size()];
    return t;
}

// A quoted-string: qdtext (obs-text included) and quoted-pairs.
std::string quoted(FuzzedDataProvider& in) {
    std::string q = "\"";
    for (unsigned char c : in.ConsumeRandomLengthString(12)) {
        if (c == '"' || c == '\\') {
            q += '\\';
            q += static_cast<char>(c);
        } else if (c == '\t' || (c >= 0x20 && c != 0x7f)) {
            q += static_cast<char>(c);
        } else {
            q += "\\ ";  // a quoted-pair of SP
        }
    }
    return q + "\"";
}

std::string bws(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
        case 1:
            return " ";
        case 2:
            return "\t";
        case 3:
            return "  \t";
        default:
            return "";
    }
}

// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
std::string extensions(FuzzedDataProvider& in, bool& well_formed) {
    std::string out;
    const int n = in.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < n; ++i) {
        const auto op = in.ConsumeIntegral<std::uint8_t>();
        if (op & 0x80) {  // raw bytes
            out += in.ConsumeRandomLengthString(10);
            well_formed = false;
            continue;
        }
        out += bws(in) + ";" + bws(in) + token(in);
        if (op & 1) out += bws(in) + "=" + bws(in) + (op & 2 ? quoted(in) : token(in));
    }
    return out;
}

std::string hex(std::size_t n, bool upper, int zeros) {
    char buf[32];
    std::snprintf(buf, sizeof buf, upper ? "%zX" : "%zx", n);
    return std::string(static_cast<std::size_t>(zeros), '0') + buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto flags = in.ConsumeIntegral<std::uint8_t>();
    const bool request = flags & 1;
    Slices slices;
    for (int i = 0; i < (flags >> 1) % 4; ++i)
        slices.sizes.push_back(in.ConsumeIntegral<std::uint8_t>());

    std::string wire = request ? "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                               : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string body;
    bool well_formed = true;
    for (int chunks = 0; chunks < 24 && in.remaining_bytes() > 0; ++chunks) {
        const auto op = in.ConsumeIntegral<std::uint8_t>();
        if ((op & 7) == 7) break;
        if ((op & 7) == 6) {  // raw bytes between chunks
            wire += in.ConsumeRandomLengthString(12);
            well_formed = false;
            continue;
        }
        std::string d = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(1, 300));
        if (d.empty()) d = "x";
        wire += hex(d.size(), op & 0x08, (op >> 4) & 3);
        if (op & 0x40) wire += extensions(in, well_formed);
        wire += "\r\n" + d + "\r\n";
        body += d;
    }
    const auto last = in.ConsumeIntegral<std::uint8_t>();
    wire += std::string(1 + (last & 1), '0');
    if (last & 2) wire += extensions(in, well_formed);
    wire += "\r\n";
    const int trailers = (last >> 2) & 3;
    for (int i = 0; i < trailers; ++i) {
        if (last & 0x80) {
            wire += in.ConsumeRandomLengthString(16);
            well_formed = false;
        } else {
            std::string value = in.ConsumeRandomLengthString(16);
            for (auto& c : value)  // field-vchar and inner SP
                if ((static_cast<unsigned char>(c) < 0x21) || c == 0x7f) c = 'v';
            wire += token(in) + ":" + bws(in) + value + "\r\n";
        }
    }
    wire += "\r\n";
    const std::size_t message = wire.size();
    wire += in.ConsumeRemainingBytesAsString();  // what follows on the connection

    current_wire() = wire;
    const Limits l;  // 8 KiB head, no body limit
    if (request) {
        const auto sliced = run_ours<true>(wire, l, slices, false);
        const auto whole = run_ours<true>(wire, l, Slices{}, false);
        check_same_outcome(sliced, whole);
        if (well_formed) {
            DSGW_FUZZ_CHECK(whole.kind == Outcome::complete);
            DSGW_FUZZ_CHECK(whole.body == body && whole.used == message);
        }
        compare_with_beast(wire, whole, run_beast<true>(wire, l, false));
    } else {
        const auto sliced = run_ours<false>(wire, l, slices, false);
        const auto whole = run_ours<false>(wire, l, Slices{}, false);
        check_same_outcome(sliced, whole);
        if (well_formed) {
            DSGW_FUZZ_CHECK(whole.kind == Outcome::complete);
            DSGW_FUZZ_CHECK(whole.body == body && whole.used == message);
        }
        compare_with_beast(wire, whole, run_beast<false>(wire, l, false));
    }
    return 0;
}
