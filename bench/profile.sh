#!/usr/bin/env bash
# Profiles the gateway under the load of bench/run.sh scenario a (plain HTTP
# keep-alive, small JSON completion, CONNS connections), loopback only:
#   1. perf record (cpu-clock sampling; works without hardware counters) ->
#      the top functions, self and with children;
#   2. syscalls: perf stat on the syscall tracepoints -> syscalls per request,
#      and the reads that found nothing (EAGAIN);
#   3. allocs: malloc calls per request, counted with a uprobe on libc's malloc
#      (perf probe; removed again at exit; slow too, only the count matters).
# The gateway runs on PROXY_CPU (1), wrk and the mock on LOAD_CPU (0), as in run.sh.
#
# Usage: bench/profile.sh            (env: DURATION=8 CONNS=64 WORKERS=1 SKIP_BUILD=1 PORT=18090
#                                      OUT=bench/results/profile-DATE; TOOLS="perf syscalls allocs")
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
CONNS=${CONNS:-64}
WORKERS=${WORKERS:-1}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
TOOLS=${TOOLS:-perf syscalls allocs}
export BUILD_DIR=build-release BUILD_TYPE=Release
[ -n "${SKIP_BUILD:-}" ] || scripts/build.sh >/dev/null
bin="$PWD/$BUILD_DIR"
out=${OUT:-bench/results/profile-$(date -u +%Y-%m-%dT%H%MZ)}
mkdir -p "$out"
for c in perf wrk taskset; do command -v "$c" >/dev/null || { echo "$c missing (apt-get install linux-perf wrk)" >&2; exit 1; }; done

tmp=$(mktemp -d)
pids=()
probe=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$probe" ] || perf probe -q -d "$probe" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

taskset -c "$LOAD_CPU" "$bin/tools/mock_server/deepseek-mock-server" --listen 127.0.0.1:0 --quiet >"$tmp/mock.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$tmp/mock.out" 2>/dev/null && break; sleep 0.05; done
mock_port=$(grep -oE '[0-9]+$' "$tmp/mock.out" | head -1)
port=${PORT:-18090}  # fixed, as in run.sh: with port 0 the admin listener could be taken for it
if ss -Hltn "sport = :$port" | grep -q .; then echo "port $port is in use; set PORT" >&2; exit 1; fi
sed -e "s|@WORKERS@|$WORKERS|; s|@PLAIN_PORT@|$port|; s|@MOCK_PORT@|$mock_port|; /@TLS_LISTENER@/d" \
  bench/conf/gateway.yaml.in >"$tmp/gw.yaml"
taskset -c "$PROXY_CPU" "$bin/deepseek-gateway" --config "$tmp/gw.yaml" >"$tmp/gw.out" 2>"$tmp/gw.err" &
gw=$!
pids+=("$gw")
for _ in $(seq 100); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.05; done
ss -Hltn "sport = :$port" | grep -q . || { cat "$tmp/gw.err" >&2; exit 1; }
url="http://127.0.0.1:$port/"
load() { taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d "$1" -s bench/wrk/completion.lua "$url" | grep '^WRK'; }
load 2s >/dev/null  # warm-up

if [[ " $TOOLS " == *" perf "* ]]; then
  echo "== perf: $DURATION s of scenario a" >&2
  perf record -q -e cpu-clock -F 1999 --call-graph dwarf,16384 -p "$gw" -o "$out/perf.data" \
    -- sleep "$DURATION" 2>"$tmp/perf.err" &
  pp=$!
  load "${DURATION}s" | tee "$out/perf-wrk.txt"
  wait "$pp" || { cat "$tmp/perf.err" >&2; }
  report() { perf report -i "$out/perf.data" --stdio -g none "$@" 2>/dev/null |
    grep -E '^ +[0-9]' | sed 's/ \{3,\}/ /g; s/ - - *$//' | cut -c1-220 || true; }
  report --no-children --sort symbol | head -40 >"$out/perf-self.txt"
  report --children --sort symbol | head -60 >"$out/perf-children.txt"
  report --no-children --sort dso | head -15 >"$out/perf-dso.txt"
  echo "-- by object" && cat "$out/perf-dso.txt"
  echo "-- top functions (self)" && head -30 "$out/perf-self.txt"
  echo "-- top functions (with children)" && head -40 "$out/perf-children.txt"
fi

if [[ " $TOOLS " == *" syscalls "* ]]; then
  # Counted with perf's syscall tracepoints, which barely slow the gateway.
  # strace -c did, so much that reads which find nothing (EAGAIN) vanished
  # from its counts: the peers had answered by the time the slowed gateway
  # read. The EAGAIN line counts failed reads.
  echo "== syscalls: 3 s of scenario a" >&2
  names=(recvfrom recvmsg sendmsg sendto writev epoll_wait epoll_ctl timerfd_settime setsockopt getsockopt ioctl)
  events=()
  for n in "${names[@]}"; do events+=(-e "syscalls:sys_enter_$n"); done
  events+=(-e syscalls:sys_exit_recvfrom --filter 'ret == -11' -e syscalls:sys_exit_recvmsg --filter 'ret == -11')
  perf stat -x, "${events[@]}" -p "$gw" -o "$out/syscalls.txt" -- sleep 3.5 2>"$tmp/syscalls.err" &
  sp=$!
  sleep 0.2
  line=$(load 3s)
  wait "$sp" || cat "$tmp/syscalls.err" >&2
  reqs=$(grep -oE 'requests=[0-9]+' <<<"$line" | cut -d= -f2)
  echo "-- syscalls per request ($reqs requests)"
  awk -F, -v r="$reqs" '$3 ~ /^syscalls:/ && $1 ~ /^[0-9]+$/ && $1 > 0 {
      n = $3; sub(/^syscalls:sys_enter_/, "", n); sub(/^syscalls:sys_exit_/, "EAGAIN from ", n)
      printf "%-22s %8.2f per request\n", n, $1 / r }' "$out/syscalls.txt" | sort -k2 -nr |
    tee "$out/syscalls-per-request.txt"
fi
if [[ " $TOOLS " == *" allocs "* ]]; then
  echo "== allocs: malloc calls during 3 s of scenario a (8 connections)" >&2
  libc=$(ldd "$bin/deepseek-gateway" | awk '/libc\.so\.6/ {print $3}')
  if perf probe -q -x "$libc" -a dsgw_bench_malloc=malloc 2>"$tmp/probe.err"; then
    probe=probe_libc:dsgw_bench_malloc
    perf stat -x, -e "$probe" -p "$gw" -o "$tmp/allocs.txt" -- sleep 3.5 &
    sp=$!
    sleep 0.2
    line=$(taskset -c "$LOAD_CPU" wrk -t1 -c 8 -d 3s -s bench/wrk/completion.lua "$url" | grep '^WRK')
    wait "$sp" || true
    reqs=$(grep -oE 'requests=[0-9]+' <<<"$line" | cut -d= -f2)
    n=$(grep "$probe" "$tmp/allocs.txt" | cut -d, -f1)
    awk -v n="$n" -v r="$reqs" 'BEGIN { printf "-- malloc calls per request: %.1f (%d calls, %d requests)\n", n / r, n, r }' |
      tee "$out/allocs.txt"
  else
    echo "perf probe failed (uprobes unavailable?): $(cat "$tmp/probe.err")" >&2
  fi
fi
echo "saved in $out" >&2
