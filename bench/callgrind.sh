#!/usr/bin/env bash
# User-space instructions per request of a gateway binary under scenario a's
# load (plain keep-alive, small JSON completion), counted by callgrind: a
# count, not a time, so it repeats whatever else the machine does. Loopback only.
#
#   bench/callgrind.sh build-release/deepseek-gateway [other-binary...]
#
# Environment: CONNS=16 DURATION=5 (s counted) WARMUP=2 (s, not counted)
#   PORT=18190 (and +1 for the mock) MOCK=build-release/tools/mock_server/deepseek-mock-server
#   KEEP=1 keeps the callgrind output (callgrind_annotate it) and prints where.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
CONNS=${CONNS:-16} DURATION=${DURATION:-5} WARMUP=${WARMUP:-2} PORT=${PORT:-18190}
MOCK=${MOCK:-build-release/tools/mock_server/deepseek-mock-server}
for c in valgrind callgrind_control wrk; do
  command -v "$c" >/dev/null || { echo "$c missing (apt-get install valgrind wrk)" >&2; exit 1; }
done

. bench/lib.sh

mock_port=$((PORT + 1))
"$MOCK" --listen "127.0.0.1:$mock_port" --quiet >/dev/null 2>&1 &
pids+=($!)
wait_port "$mock_port"
sed -e "s|@WORKERS@|1|" -e "s|@PLAIN_PORT@|$PORT|" -e "s|@MOCK_PORT@|$mock_port|" \
  -e "/^@TLS_LISTENER@\$/d" bench/conf/gateway.yaml.in >"$tmp/gateway.yaml"
url="http://127.0.0.1:$PORT/v1/chat/completions"

i=0
for bin in "$@"; do
  i=$((i + 1))
  out="$tmp/callgrind.$i.out"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$bin" --config "$tmp/gateway.yaml" >"$tmp/gateway.log" 2>&1 &
  vpid=$!
  pids+=($vpid)
  wait_port "$PORT"
  wrk -t1 -c "$CONNS" -d "${WARMUP}s" -s bench/wrk/completion.lua "$url" >/dev/null 2>&1 || true
  callgrind_control -i on "$vpid" >/dev/null
  requests=$(wrk -t1 -c "$CONNS" -d "${DURATION}s" -s bench/wrk/completion.lua "$url" 2>&1 |
    grep -oE '^WRK requests=[0-9]+' | cut -d= -f2)
  callgrind_control -i off "$vpid" >/dev/null
  kill "$vpid"
  wait "$vpid" 2>/dev/null || true
  total=$(awk '/^totals:/ { print $2 }' "$out")
  awk -v t="$total" -v r="$requests" -v b="$bin" \
    'BEGIN { printf "%s: %d instructions per request (%d requests)\n", b, t / r, r }'
  [ -z "${KEEP:-}" ] || echo "  output: $out"
done
