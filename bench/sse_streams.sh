#!/usr/bin/env bash
# Streaming figures for docs/performance.md, measured on this machine, loopback only:
#   1. resident memory the gateway spends per concurrent SSE stream
#      (STREAMS concurrent streams held open; VmRSS with them open minus VmRSS before);
#   2. delivery lag the gateway adds: LAG_STREAMS concurrent 20-event streams
#      (50 ms apart) straight to the mock server, then through the gateway; the
#      lag of each event is its arrival time minus the time the mock wrote it.
# Usage: bench/sse_streams.sh        (env: STREAMS=1000 LAG_STREAMS=200 WORKERS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD_DIR="${BUILD_DIR:-build-release}" BUILD_TYPE=Release
scripts/build.sh >/dev/null
bin="$BUILD_DIR"
streams="${STREAMS:-1000}"
lag_streams="${LAG_STREAMS:-200}"
workers="${WORKERS:-1}"
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

wait_line() {  # file pattern
  for _ in $(seq 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

"$bin/tools/mock_server/deepseek-mock-server" --listen 127.0.0.1:0 --quiet >"$tmp/mock.out" 2>&1 &
pids+=($!)
wait_line "$tmp/mock.out" 'listening on'
mock_port=$(grep -oE '[0-9]+$' "$tmp/mock.out" | head -1)

cat >"$tmp/gw.yaml" <<YAML
workers: $workers
admin: {address: 127.0.0.1:0}
listeners:
  - name: bench
    address: 127.0.0.1:0
    access: {allow: [127.0.0.0/8]}
    upstream: mock
upstreams:
  - name: mock
    balancer: least_conn
    servers: [{address: 127.0.0.1:$mock_port}]
    keepalive: 64
limits: {max_connections: 100000}
logging: {access_log: "off", format: text, level: warn}
YAML
"$bin/deepseek-gateway" --config "$tmp/gw.yaml" >"$tmp/gw.out" 2>"$tmp/gw.err" &
gw_pid=$!
pids+=($gw_pid)
sleep 0.3
gw_port=$(ss -ltnp 2>/dev/null | grep "pid=$gw_pid," | grep -oE '127\.0\.0\.1:[0-9]+' | head -1 | cut -d: -f2)
[ -n "$gw_port" ] || { echo "gateway did not start" >&2; cat "$tmp/gw.err" >&2; exit 1; }

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
load="$bin/tools/sse_load"

# Warm up (allocator arenas, upstream pool), then the baseline.
"$load" --target "127.0.0.1:$gw_port" --streams 100 --tokens 2 --delay-ms 1 >/dev/null
sleep 0.5
before=$(rss_kib "$gw_pid")
"$load" --target "127.0.0.1:$gw_port" --streams "$streams" --tokens 30 --delay-ms 200 \
  --ramp-ms 1000 --hold-file "$tmp/open" >"$tmp/hold.json" &
load_pid=$!
for _ in $(seq 300); do [ -f "$tmp/open" ] && break; sleep 0.05; done
sleep 0.5
during=$(rss_kib "$gw_pid")
wait "$load_pid" || { echo "some streams failed:" >&2; cat "$tmp/hold.json" >&2; exit 1; }
per_stream=$(( (during - before) * 1024 / streams ))

direct=$("$load" --target "127.0.0.1:$mock_port" --streams "$lag_streams" --tokens 20 --delay-ms 50 --ramp-ms 200)
via=$("$load" --target "127.0.0.1:$gw_port" --streams "$lag_streams" --tokens 20 --delay-ms 50 --ramp-ms 200)

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "memory: $streams concurrent streams, workers=$workers: RSS before ${before} KiB, with streams open ${during} KiB => $per_stream bytes per stream"
echo "hold run: $(cat "$tmp/hold.json")"
echo "lag direct      ($lag_streams streams): $direct"
echo "lag via gateway ($lag_streams streams): $via"
