#pragma once
// How a fuzz target reports a broken invariant: "FINDING: <condition>" (and
// the bytes under test, where the target set them), then a trap, which
// libFuzzer records as a crash with its input.

#include <cstdio>
#include <string_view>

namespace dsgw::fuzz {

// The bytes of the connection under test, printed with a finding (the
// targets that build them from their input set it).
inline std::string_view& current_wire() {
    static std::string_view wire;
    return wire;
}

// A broken invariant: say which, then stop the way libFuzzer records a crash.
[[noreturn]] inline void finding(const char* what) {
    std::fprintf(stderr, "FINDING: %s\nwire: \"", what);
    for (unsigned char c : current_wire().substr(0, 4096)) {
        if (c == '\r')
            std::fputs("\\r", stderr);
        else if (c == '\n')
            std::fputs("\\n", stderr);
        else if (c == '"' || c == '\\')
            std::fprintf(stderr, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            std::fprintf(stderr, "\\x%02x", c);
        else
            std::fputc(c, stderr);
    }
    std::fputs("\"\n", stderr);
    __builtin_trap();
}
#define DSGW_FUZZ_CHECK(cond)                      \
    do {                                           \
        if (!(cond)) ::dsgw::fuzz::finding(#cond); \
    } while (0)

}  // namespace dsgw::fuzz
