#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz (README.md there).
#
#   scripts/fuzz.sh [seconds]   build build-fuzz if needed, then run every
#                               target for `seconds` each (default 60)
#   scripts/fuzz.sh --replay    only replay the committed corpora through
#                               every target (seconds; what CI runs)
#
# New inputs go to build-fuzz/fuzz-corpus/<target>, crash inputs to
# build-fuzz/fuzz-artifacts/<target>; nothing is written into the committed
# corpus (copy a crash input there by hand, with its fix). Exits non-zero on
# a build failure or on any crash. FUZZ_BUILD_DIR, JOBS and FUZZ_TARGETS
# (space-separated names) change the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=run
seconds=60
case "${1:-}" in
  --replay) mode=replay ;;
  "") ;;
  *[!0-9]*) echo "usage: $0 [seconds | --replay]" >&2; exit 2 ;;
  *) seconds=$1 ;;
esac

"$PWD/scripts/install-deps.sh"
build_dir="${FUZZ_BUILD_DIR:-build-fuzz}"
# ccache: paths relative to the checkout, so any clone (CI's fresh one too)
# shares the cache.
export CCACHE_NOHASHDIR=true CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-14 \
    -DDSGW_FUZZ=ON -DDSGW_BUILD_TESTS=OFF >/dev/null
fi
ninja -C "$build_dir" -j "${JOBS:-2}" fuzz >"$build_dir/fuzz-build.log" 2>&1 || {
  tail -n 40 "$build_dir/fuzz-build.log" >&2
  echo "fuzz: build failed (log: $build_dir/fuzz-build.log)" >&2
  exit 1
}

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

# A sanitizer report is a crash; stack traces name lines.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

failed=0
# Options of a target: its dictionary, when it has one.
target_options() {
  local dict="tests/fuzz/$1.dict"
  case "$1" in
    fuzz_request_parser|fuzz_response_parser|fuzz_beast_diff|fuzz_chunked) dict=tests/fuzz/http.dict ;;
  esac
  [ -f "$dict" ] && echo "-dict=$dict"
  # Smaller than the default 2 GiB: libFuzzer's report of an out-of-memory
  # input walks the whole heap first.
  [ "$1" = fuzz_config ] && echo "-rss_limit_mb=1024 -malloc_limit_mb=512"
  return 0
}

if [ "$mode" = replay ]; then
  passed=0
  for t in "${targets[@]}"; do
    seeds="tests/fuzz/corpus/$t"
    files=("$seeds"/*)
    if [ ! -e "${files[0]}" ]; then
      echo "fuzz: $t: no corpus in $seeds" >&2
      failed=1
      continue
    fi
    log="$build_dir/fuzz-replay-$t.log"
    if timeout -k 10 600 "$build_dir/tests/fuzz/$t" -timeout=10 "${files[@]}" >"$log" 2>&1; then
      printf '%-22s %4d inputs replayed, ok\n' "$t" "${#files[@]}"
      passed=$((passed + 1))
    else
      printf '%-22s FAILED (log: %s)\n' "$t" "$log"
      grep -E 'FINDING|ERROR|Running:' "$log" | tail -n 5 >&2 || true
      failed=1
    fi
  done
  # The closing line CI reads: targets whose corpus replayed clean.
  echo "fuzz-replay: $passed passed, $((${#targets[@]} - passed)) failed"
  exit "$failed"
fi

printf '%-22s %12s %8s %7s %7s %12s %7s\n' target executions exec/s cov ft corpus crashes
for t in "${targets[@]}"; do
  scratch="$build_dir/fuzz-corpus/$t"
  artifacts="$build_dir/fuzz-artifacts/$t/"
  mkdir -p "$scratch" "$artifacts"
  log="$build_dir/fuzz-run-$t.log"
  stamp="$build_dir/fuzz-start-$t"  # tells this run's crash inputs from older ones
  touch "$stamp"
  rc=0
  # The outer timeout: libFuzzer's out-of-memory report walks the heap while
  # the input goes on growing it, and can take longer than the run itself.
  # shellcheck disable=SC2046
  timeout -k 10 $((seconds + 120)) \
    "$build_dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts" $(target_options "$t") \
    "$scratch" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(sed -n 's/.* corp: \([0-9]*\/[^ ]*\).*/\1/p' <<<"$last")
  crashes=$(find "$artifacts" -type f -newer "$stamp" | wc -l)
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="rc=$rc"; fi
  printf '%-22s %12s %8s %7s %7s %12s %7s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" \
    "${ft:-?}" "$corpus" "$crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    grep -E 'FINDING|ERROR|SUMMARY' "$log" | head -n 5 >&2 || true
    echo "  log: $log; inputs: $artifacts" >&2
  fi
done
exit "$failed"
