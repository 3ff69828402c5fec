#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit and
# integration tests: the real gateway binary against real mock servers on
# loopback) twice: once as built for production (build/ or $BUILD_DIR), once
# built with ASan and UBSan (build-asan/ or $ASAN_BUILD_DIR, -DDSGW_SANITIZE=ON),
# where the integration tests start the sanitized gateway and mock servers of
# that build; in between, the committed fuzz corpora are replayed through every
# libFuzzer target (scripts/fuzz.sh --replay, build-fuzz/). This is what CI
# runs (.ci/run). It stops at the first stage that fails and says which.
#
#   JOBS        parallel compile jobs (default 2: Beast is heavy on 2 cores)
#   CTEST_JOBS  tests run at once (default 4: most of them wait on sockets)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${BUILD_DIR:-build}"
asan_dir="${ASAN_BUILD_DIR:-build-asan}"
ctest_jobs="${CTEST_JOBS:-4}"

stage_name=
stage_start=0
summary=()
stage() {
    finish_stage
    stage_name="$1"
    stage_start=$SECONDS
    printf '\n==== test.sh: %s ====\n' "$stage_name"
}
finish_stage() {
    if [ -n "$stage_name" ]; then
        summary+=("$(printf '%-46s %5ds' "$stage_name" $((SECONDS - stage_start)))")
    fi
    stage_name=
}
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "$stage_name" ]; then
        printf '\n==== test.sh: FAILED in stage "%s" (exit %d) ====\n' "$stage_name" "$rc" >&2
    fi
}
trap on_exit EXIT

run_ctest() {
    (cd "$1" && ctest --output-on-failure -j "$ctest_jobs" --timeout 300)
}

stage "1/5 normal build ($build_dir)"
scripts/build.sh

stage "2/5 normal tests ($build_dir)"
run_ctest "$build_dir"

stage "3/5 fuzz corpus replay (build-fuzz, clang, libFuzzer)"
scripts/fuzz.sh --replay

stage "4/5 sanitizer build ($asan_dir, ASan+UBSan)"
BUILD_DIR="$asan_dir" scripts/build.sh -DDSGW_SANITIZE=ON

stage "5/5 sanitizer tests ($asan_dir)"
# The tests and every process they start (gateway, mock servers) inherit
# these. abort_on_error turns every finding into a SIGABRT, which ctest reports
# as a crash; UBSan stops at the first one (the build also has
# -fno-sanitize-recover=undefined) and prints its stack. The integration
# harness fails the running test when a gateway or mock server it started
# printed a sanitizer report, which it would otherwise keep to itself.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
run_ctest "$asan_dir"
finish_stage

printf '\n==== test.sh: all stages passed ====\n'
printf '%s\n' "${summary[@]}"
