#!/usr/bin/env bash
# What routing by model costs (SPEC §8, docs/performance.md): one gateway with
# two listeners on the same upstream, one with routes (the request's model
# matches its third route) and one without; chat bodies of 4 KiB and 256 KiB,
# "model" first and last. The two listeners are loaded in turn (A B B A ...)
# and the CPU the gateway spends per request is read from /proc; the figure
# to read is the median of the rounds' ratios (routes / none). Then
# bench/route_probe.cpp times, from the client's last body byte, the first
# and the last byte of the request at its server (median of PROBE_ROUNDS).
#
#   BUILD_DIR=build-release BUILD_TYPE=Release scripts/build.sh
#   bench/routes.sh [build-release/deepseek-gateway]
#
# Environment: ROUNDS=4 DURATION=3 (s per run) WARMUP=1 CONNS=16 BASE_PORT=18280
#   (uses BASE_PORT..+5) PROXY_CPU=1 LOAD_CPU=0 PROBE_ROUNDS=200 SIZES="4096 262144"
#   MOCK=build-release/tools/mock_server/deepseek-mock-server
# Needs wrk and g++ (bench/run.sh installs wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
GW=$(realpath "${1:-build-release/deepseek-gateway}")
ROUNDS=${ROUNDS:-4} DURATION=${DURATION:-3} WARMUP=${WARMUP:-1} CONNS=${CONNS:-16}
BASE_PORT=${BASE_PORT:-18280} PROXY_CPU=${PROXY_CPU:-1} LOAD_CPU=${LOAD_CPU:-0}
PROBE_ROUNDS=${PROBE_ROUNDS:-200} SIZES=${SIZES:-"4096 262144"}
MOCK=${MOCK:-build-release/tools/mock_server/deepseek-mock-server}
for c in wrk g++ taskset; do command -v "$c" >/dev/null || { echo "$c missing" >&2; exit 1; }; done

. bench/lib.sh

mock_port=$BASE_PORT none_port=$((BASE_PORT + 1)) routes_port=$((BASE_PORT + 2))
probe_none=$((BASE_PORT + 3)) probe_routes=$((BASE_PORT + 4)) probe_up=$((BASE_PORT + 5))
taskset -c "$LOAD_CPU" "$MOCK" --listen "127.0.0.1:$mock_port" --quiet >/dev/null 2>&1 &
pids+=($!)
wait_port "$mock_port"

routes='    routes:
      - {name: r1, match: {model: "deepseek-r1*"}, upstream: mock}
      - {name: v3, match: {model: [deepseek-v3, deepseek-chat]}, upstream: mock}
      - {name: bench, match: {model: "deepseek-mock*"}, upstream: mock}'
probe_routes_yaml=${routes//upstream: mock/upstream: probe}
cat >"$tmp/gw.yaml" <<YAML
workers: 1
admin: {address: 127.0.0.1:0}
listeners:
  - {name: none, address: "127.0.0.1:$none_port", access: {allow: [127.0.0.0/8]}, upstream: mock}
  - name: routes
    address: "127.0.0.1:$routes_port"
    access: {allow: [127.0.0.0/8]}
$routes
  - {name: probe-none, address: "127.0.0.1:$probe_none", access: {allow: [127.0.0.0/8]}, upstream: probe}
  - name: probe-routes
    address: "127.0.0.1:$probe_routes"
    access: {allow: [127.0.0.0/8]}
$probe_routes_yaml
upstreams:
  - {name: mock, servers: [{address: "127.0.0.1:$mock_port"}], keepalive: 64}
  - {name: probe, servers: [{address: "127.0.0.1:$probe_up"}], keepalive: 4}
limits: {max_request_body: 32MiB, client_idle: 60s, max_connections: 100000}
logging: {access_log: "off", level: warn, format: text}
shutdown_timeout: 1s
YAML
taskset -c "$PROXY_CPU" "$GW" --config "$tmp/gw.yaml" >"$tmp/gw.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
wait_port "$none_port"
wait_port "$routes_port"

run() {  # port size last -> CPU µs per request
  local url="http://127.0.0.1:$1/v1/chat/completions"
  local env=(BENCH_BODY_BYTES="$2" BENCH_MODEL_LAST="$3")
  env "${env[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d "${WARMUP}s" \
    -s bench/wrk/completion.lua "$url" >/dev/null 2>&1 || true
  local c0 c1 out req
  c0=$(ticks "$gw_pid")
  out=$(env "${env[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d "${DURATION}s" \
    -s bench/wrk/completion.lua "$url" 2>&1)
  c1=$(ticks "$gw_pid")
  req=$(grep -oE '^WRK requests=[0-9]+' <<<"$out" | cut -d= -f2)
  grep -qE 'errors_connect=0 errors_read=0 errors_write=0 errors_status=0 errors_timeout=0' <<<"$out" ||
    echo "warning: port $1 size $2 had errors: $(grep '^WRK' <<<"$out")" >&2
  awk -v c=$((c1 - c0)) -v r="$req" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", c * 1e6 / hz / r }'
}

echo "| body | model | round | no routes µs/req | routes µs/req |"
echo "| --- | --- | --- | --- | --- |"
for size in $SIZES; do
  for last in 0 1; do
    where=first
    [ "$last" = 1 ] && where=last
    for r in $(seq "$ROUNDS"); do
      if [ $((r % 2)) -eq 1 ]; then
        a=$(run "$none_port" "$size" "$last")
        b=$(run "$routes_port" "$size" "$last")
      else
        b=$(run "$routes_port" "$size" "$last")
        a=$(run "$none_port" "$size" "$last")
      fi
      echo "| $size | $where | $r | $a | $b |"
      echo "$size $where $a $b" >>"$tmp/all"
    done
  done
done

g++ -std=c++20 -O2 -o "$tmp/route_probe" bench/route_probe.cpp
probe() {  # gateway_port size last -> "first_median whole_median" (µs)
  taskset -c "$LOAD_CPU" "$tmp/route_probe" "$1" "$probe_up" "$2" "$3" "$PROBE_ROUNDS" >"$tmp/probe"
  local f w
  f=$(sed -n 's/^first_us=\([0-9.]*\) .*/\1/p' "$tmp/probe" | median)
  w=$(sed -n 's/.* whole_us=\([0-9.]*\)$/\1/p' "$tmp/probe" | median)
  echo "$f $w"
}

echo
echo "| body | model | CPU/req, routes ÷ none (median of the rounds' ratios) | last body byte → first byte at the server, routes (median µs) | → whole request at the server, routes | → whole request, no routes |"
echo "| --- | --- | --- | --- | --- | --- |"
for size in $SIZES; do
  for where in first last; do
    last=0
    [ "$where" = last ] && last=1
    ratio=$(awk -v s="$size" -v w="$where" '$1 == s && $2 == w { print $4 / $3 }' "$tmp/all" | median)
    read -r rf rw < <(probe "$probe_routes" "$size" "$last")
    read -r _ nw < <(probe "$probe_none" "$size" "$last")
    printf '| %s | %s | %.3f | %s | %s | %s |\n' "$size" "$where" "$ratio" "$rf" "$rw" "$nw"
  done
done
echo
echo "gateway: $GW ($("$GW" --version | head -1))"
