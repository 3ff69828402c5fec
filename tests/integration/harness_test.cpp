// The harness itself: what it promises the other integration tests.

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace dsgw::it {
namespace {

// scripts/test.sh runs the suite once more with the gateway and the mock
// servers built with ASan and UBSan; their reports go to the stderr the
// harness captures, so it is the harness that must turn one into a failure.
TEST(Harness, SanitizerReportOfAChildFailsTheTest) {
    const std::pair<const char*, const char*> reports[] = {
        {"asan", "==42==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020"},
        {"lsan", "==42==ERROR: LeakSanitizer: detected memory leaks"},
        {"ubsan", "src/proxy/head.cpp:12:3: runtime error: signed integer overflow"},
    };
    for (const auto& [kind, line] : reports) {
        SCOPED_TRACE(kind);
        EXPECT_NONFATAL_FAILURE(
            {
                Process p;
                ASSERT_TRUE(p.start("/bin/sh", {"-c", std::string("echo '") + line + "' >&2"}));
                ASSERT_TRUE(p.wait_exit(5s));
            },
            "reported a sanitizer finding");
    }
    // Ordinary output is no finding.
    Process quiet;
    ASSERT_TRUE(quiet.start("/bin/sh", {"-c", "echo 'runtime: 3 errors logged' >&2"}));
    ASSERT_TRUE(quiet.wait_exit(5s));
}

}  // namespace
}  // namespace dsgw::it
