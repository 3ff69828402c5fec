#!/usr/bin/env bash
# Instructions per body byte of each parser in bench_json_scan, counted by
# callgrind: a count, the same from one run to the next whatever else the
# machine does (the table of ns/byte is not).
#
#   bench/json_scan/callgrind.sh [build-dir]    (default: build)
#
# Each figure is (Ir of N+K runs - Ir of N runs) / (K * bytes), so building
# the bodies and setting up the parser are not counted.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
cmake --build "$build" --target bench_json_scan >/dev/null
bin="$build/bench/json_scan/bench_json_scan"
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }

ir() {  # parser body iterations
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --only "$1" "$2" "$3" 2>&1 |
    sed -n 's/.*Collected : //p'
}
bodies=(4k-en-first 4k-en-last 4k-zh-last 4k-zh-esc-last 256k-en-first 256k-en-last 256k-zh-last
        256k-zh-esc-last)
parsers=(scan sax dom)
printf '%-18s' "instr/byte"
printf ' %8s' "${parsers[@]}"
printf '\n'
for b in "${bodies[@]}"; do
  bytes=$("$bin" --only scan "$b" 0 | sed -n 's/.*: \([0-9]*\) bytes.*/\1/p')
  case $b in 4k*) n=2 k=20 ;; *) n=1 k=2 ;; esac
  printf '%-18s' "$b"
  for p in "${parsers[@]}"; do
    a=$(ir "$p" "$b" "$n")
    c=$(ir "$p" "$b" $((n + k)))
    printf ' %8s' "$(awk -v a="$a" -v c="$c" -v k="$k" -v n="$bytes" 'BEGIN { printf "%.2f", (c - a) / (k * n) }')"
  done
  printf '\n'
done
