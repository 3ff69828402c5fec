#!/usr/bin/env bash
# Two builds of the gateway, side by side on this machine (loopback only): the
# CPU each spends per request, plain and TLS, measured in alternating order
# (A B B A ...) so that a machine that drifts during the run favours neither.
# This is how a change shows it stays within its CPU budget; bench/run.sh
# compares the gateway with nginx and HAProxy.
#
#   git worktree add ../before <commit>; (cd ../before && BUILD_DIR=build-release \
#     BUILD_TYPE=Release scripts/build.sh)
#   BUILD_DIR=build-release BUILD_TYPE=Release scripts/build.sh
#   bench/ab.sh ../before/build-release/deepseek-gateway build-release/deepseek-gateway
#
# Environment: ROUNDS=6 DURATION=4 (s per run) WARMUP=1 CONNS=64 BASE_PORT=18180
#   (uses BASE_PORT..+4) PROXY_CPU=1 LOAD_CPU=0
#   MOCK=build-release/tools/mock_server/deepseek-mock-server
# The load (wrk, the mock server) runs on LOAD_CPU, both gateways on PROXY_CPU;
# only one is loaded at a time. Needs wrk and openssl (bench/run.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2")
ROUNDS=${ROUNDS:-6} DURATION=${DURATION:-4} WARMUP=${WARMUP:-1} CONNS=${CONNS:-64}
BASE_PORT=${BASE_PORT:-18180} PROXY_CPU=${PROXY_CPU:-1} LOAD_CPU=${LOAD_CPU:-0}
MOCK=${MOCK:-build-release/tools/mock_server/deepseek-mock-server}
for c in wrk openssl taskset; do command -v "$c" >/dev/null || { echo "$c missing" >&2; exit 1; }; done

. bench/lib.sh

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
mock_port=$BASE_PORT
taskset -c "$LOAD_CPU" "$MOCK" --listen "127.0.0.1:$mock_port" --quiet >/dev/null 2>&1 &
pids+=($!)
wait_port "$mock_port"

declare -A PID PORT
start() {  # name binary plain_port
  local name=$1 bin=$2 plain=$3 tls=$(($3 + 1))
  sed -e "s|@WORKERS@|1|" -e "s|@PLAIN_PORT@|$plain|" -e "s|@MOCK_PORT@|$mock_port|" \
    -e "s|^@TLS_LISTENER@\$|  - name: tls\n    address: 127.0.0.1:$tls\n    tls: {certificate: $tmp/cert.pem, private_key: $tmp/key.pem}\n    access: {allow: [127.0.0.0/8]}\n    upstream: mock|" \
    bench/conf/gateway.yaml.in >"$tmp/$name.yaml"
  taskset -c "$PROXY_CPU" "$bin" --config "$tmp/$name.yaml" >"$tmp/$name.log" 2>&1 &
  PID[$name]=$!
  pids+=($!)
  PORT[$name-plain]=$plain
  PORT[$name-tls]=$tls
  wait_port "$plain"
  wait_port "$tls"
}
start A "$A" $((BASE_PORT + 1))
start B "$B" $((BASE_PORT + 3))

run() {  # name kind -> CPU µs per request
  local name=$1 kind=$2 scheme=http
  [ "$kind" = tls ] && scheme=https
  local url="$scheme://127.0.0.1:${PORT[$name-$kind]}/v1/chat/completions"
  taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d "${WARMUP}s" -s bench/wrk/completion.lua "$url" \
    >/dev/null 2>&1 || true
  local c0 c1 out req
  c0=$(ticks "${PID[$name]}")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d "${DURATION}s" -s bench/wrk/completion.lua "$url" 2>&1)
  c1=$(ticks "${PID[$name]}")
  req=$(grep -oE '^WRK requests=[0-9]+' <<<"$out" | cut -d= -f2)
  grep -qE 'errors_connect=0 errors_read=0 errors_write=0 errors_status=0 errors_timeout=0' <<<"$out" ||
    echo "warning: $name $kind had errors: $(grep '^WRK' <<<"$out")" >&2
  awk -v c=$((c1 - c0)) -v r="$req" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", c * 1e6 / hz / r }'
}

echo "| round | kind | A µs/req | B µs/req |"
echo "| --- | --- | --- | --- |"
for r in $(seq "$ROUNDS"); do
  for kind in plain tls; do
    if [ $((r % 2)) -eq 1 ]; then first=A second=B; else first=B second=A; fi
    declare -A v
    v[$first]=$(run "$first" "$kind")
    v[$second]=$(run "$second" "$kind")
    echo "| $r | $kind | ${v[A]} | ${v[B]} |"
    echo "$kind ${v[A]} ${v[B]}" >>"$tmp/all"
  done
done
# A VM's speed can drift by a third within a run: B / A of each round (its two
# runs are adjacent) is the figure to read, not the ratio of the medians.
echo
echo "| kind | A median | B median | B / A, median of the rounds' ratios |"
echo "| --- | --- | --- | --- |"
for kind in plain tls; do
  ma=$(awk -v k="$kind" '$1 == k { print $2 }' "$tmp/all" | median)
  mb=$(awk -v k="$kind" '$1 == k { print $3 }' "$tmp/all" | median)
  mr=$(awk -v k="$kind" '$1 == k { print $3 / $2 }' "$tmp/all" | median)
  awk -v k="$kind" -v a="$ma" -v b="$mb" -v r="$mr" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.3f |\n", k, a, b, r }'
done
echo
echo "A: $A ($("$A" --version | head -1))"
echo "B: $B ($("$B" --version | head -1))"
