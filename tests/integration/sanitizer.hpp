// Whether this test binary, and so the gateway and mock servers of its build
// (tests run the binaries of their own build directory), is built with ASan:
// scripts/test.sh runs the suite in build-asan too (DSGW_SANITIZE=ON).
#pragma once

// gcc says so with __SANITIZE_ADDRESS__, clang with __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define DSGW_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DSGW_TEST_UNDER_ASAN 1
#endif
#endif
#ifndef DSGW_TEST_UNDER_ASAN
#define DSGW_TEST_UNDER_ASAN 0
#endif
