#!/usr/bin/env bash
# deepseek-gateway against nginx and HAProxy on this machine, loopback only.
#
#   bench/run.sh                         # ROUNDS=5 DURATION=4, every scenario
#   ROUNDS=1 DURATION=5 bench/run.sh     # a quick check
#   SCENARIOS=a,d bench/run.sh           # only some scenarios
#
# It installs what is missing (nginx, haproxy, wrk, nghttp2-client, openssl;
# Debian packages, apt-get only when one is missing), builds the gateway in
# Release (build-release/), starts the mock inference server as the upstream,
# then the gateway, nginx and HAProxy with equivalent configurations
# (bench/conf/*.in), and runs the same load against each in turn, the order
# rotating every round. It prints a Markdown table of the medians over the
# rounds with the gateway's ratio to each peer, and saves it (and the raw
# figures) under bench/results/ (DATE.md, DATE.tsv, latest.md).
#
# Scenarios (docs/performance.md describes each):
#   a  plain HTTP keep-alive, small JSON completion, CONNS connections (wrk)
#   b  TLS keep-alive, same request
#   c  TLS, a new connection (and TLS 1.3 handshake: wrk resumes with its last ticket) per request
#   d  SSE_STREAMS concurrent SSE streams of 20 events (tools/sse_load):
#      delivery lag over direct, resident memory per stream (fresh proxies)
#   e  1 MiB request bodies, BODY_CONNS connections
#   f  scaling: the gateway with workers: 1 and workers: 2 (load of a, unpinned)
#   g  metrics on vs off: the gateway with admin.metrics true and false (load of a, pinned)
#   h  routing by model (gateway only, bench/routes.sh): CPU per request with routes vs
#      without at 4 KiB and 256 KiB bodies, model first and last; last body byte → upstream
#
# CPU pinning (2 cores): the proxy under test runs on PROXY_CPU (1), wrk,
# sse_load and the mock on LOAD_CPU (0), so every proxy gets one whole core.
#
# Environment: ROUNDS=5 DURATION=4 (s per run; G_DURATION=2 for g) WARMUP=1 (s before each run)
#   (a, b and c run each proxy twice per round, in mirrored order: see
#   "paired ratios" in docs/performance.md)
#   CONNS=64 BODY_CONNS=16 BODY_BYTES=1048576 SSE_STREAMS=1000 SSE_TOKENS=20
#   SSE_DELAY_MS=200 MOCK_THREADS=1 BASE_PORT=18080 (uses BASE_PORT..+9)
#   PROXY_CPU=1 LOAD_CPU=0 CERT_KEY=ec|rsa SCENARIOS=a,b,c,d,e,f,g,h
#   SKIP_INSTALL=1 SKIP_BUILD=1 (use what is there) KEEP_TMP=1 (keep logs/configs)
#   NICE=-10 (renice the measured processes: on a machine shared with builds,
#   gives them priority; off by default)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-4}
G_DURATION=${G_DURATION:-2}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-64}
BODY_CONNS=${BODY_CONNS:-16}
BODY_BYTES=${BODY_BYTES:-1048576}
SSE_STREAMS=${SSE_STREAMS:-1000}
SSE_TOKENS=${SSE_TOKENS:-20}
SSE_DELAY_MS=${SSE_DELAY_MS:-200}
MOCK_THREADS=${MOCK_THREADS:-1}
BASE_PORT=${BASE_PORT:-18080}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
CERT_KEY=${CERT_KEY:-ec}
SCENARIOS=${SCENARIOS:-a,b,c,d,e,f,g,h}
export BUILD_DIR=build-release BUILD_TYPE=Release
bin="$root/$BUILD_DIR"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
want() { [[ ",$SCENARIOS," == *",$1,"* ]]; }

# ---------------------------------------------------------------- install
need_pkgs=()
for p in nginx haproxy wrk nghttp2-client openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ] && [ -z "${SKIP_INSTALL:-}" ]; then
  [ "$(id -u)" -eq 0 ] || die "missing packages (${need_pkgs[*]}); run as root or install them"
  log "installing ${need_pkgs[*]}"
  # The packages' postinst would start system nginx/haproxy services on :80;
  # a temporary policy-rc.d forbids that (only if none exists already).
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
for c in nginx haproxy wrk h2load openssl taskset ss; do
  command -v "$c" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
  command -v "$c" >/dev/null || die "$c not found"
done

# ---------------------------------------------------------------- build
if [ -z "${SKIP_BUILD:-}" ]; then
  log "building $BUILD_DIR (Release)"
  scripts/build.sh >/dev/null
fi
gw_bin="$bin/deepseek-gateway"
mock_bin="$bin/tools/mock_server/deepseek-mock-server"
sse_bin="$bin/tools/sse_load"
for f in "$gw_bin" "$mock_bin" "$sse_bin"; do [ -x "$f" ] || die "$f not built"; done

# ---------------------------------------------------------------- setup
if [ -n "${NICE:-}" ]; then renice -n "$NICE" -p $$ >/dev/null; fi  # inherited by all we start
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 8192 ] || log "warning: open-file limit $(ulimit -n) may be too low for $SSE_STREAMS streams"
ncpu=$(nproc)
if [ "$ncpu" -lt 2 ]; then
  log "warning: 1 CPU, no pinning"
  pin_proxy=(); pin_load=()
else
  pin_proxy=(taskset -c "$PROXY_CPU"); pin_load=(taskset -c "$LOAD_CPU")
fi
all_cpus="0-$((ncpu - 1))"

MOCK_PORT=$((BASE_PORT + 1))
GW_PLAIN=$((BASE_PORT + 2)); GW_TLS=$((BASE_PORT + 3))
NGX_PLAIN=$((BASE_PORT + 4)); NGX_TLS=$((BASE_PORT + 5))
HAP_PLAIN=$((BASE_PORT + 6)); HAP_TLS=$((BASE_PORT + 7))
GW1_PORT=$((BASE_PORT + 8)); GW2_PORT=$((BASE_PORT + 9))
busy=$(ss -Hltn | awk '{print $4}' | grep -oE ':[0-9]+$' | tr -d : | sort -u)
for p in $(seq "$BASE_PORT" $((BASE_PORT + 9))); do
  if grep -qx "$p" <<<"$busy"; then die "port $p is in use; set BASE_PORT to a free range of 10"; fi
done

tmp=$(mktemp -d /tmp/dsgw-bench.XXXXXX)
chmod 755 "$tmp"
declare -A PID=()
cleanup() {
  local n
  for n in "${!PID[@]}"; do kill "${PID[$n]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_TMP:-}" ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stamp=$(date -u +%Y-%m-%dT%H%MZ)
mkdir -p bench/results
raw="bench/results/$stamp.tsv"
: >"$raw"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$round" "$4" >>"$raw"; }  # scen proxy metric value

# Throwaway self-signed certificate.
if [ "$CERT_KEY" = rsa ]; then newkey=(-newkey rsa:2048); else newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); fi
openssl req -x509 "${newkey[@]}" -nodes -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/haproxy.pem"
chmod 644 "$tmp"/*.pem

wait_port() {  # port [pid] : until something listens on 127.0.0.1:port
  for _ in $(seq 200); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}
wait_port_free() { for _ in $(seq 200); do ss -Hltn "sport = :$1" | grep -q . || return 0; sleep 0.05; done; return 1; }

# pid and its children (nginx: master + worker)
tree_pids() { echo "$1"; ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }
rss_kib() {  # sum of VmRSS over the process tree
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
cpu_ticks() {  # utime + stime over the process tree (all threads)
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
clk_tck=$(getconf CLK_TCK)
# CPU of this shell's waited-for children (wrk, sse_load), cutime + cstime
children_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$$/stat"; }

fill() {  # template out  VAR=value...
  local in=$1 out=$2; shift 2
  local sed_args=() kv
  for kv in "$@"; do sed_args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${sed_args[@]}" "$in" >"$out"
}

# ---------------------------------------------------------------- processes
start_mock() {
  "${pin_load[@]}" "$mock_bin" --listen "127.0.0.1:$MOCK_PORT" --threads "$MOCK_THREADS" --quiet \
    >"$tmp/mock.out" 2>&1 &
  PID[mock]=$!
  wait_port "$MOCK_PORT" "${PID[mock]}" || { cat "$tmp/mock.out" >&2; die "mock server did not start"; }
}

gw_tls=0
gateway_yaml() {  # out workers plain_port tls_port|""
  local tls_block=""
  if [ -n "$4" ]; then
    tls_block="  - name: tls
    address: 127.0.0.1:$4
    tls: {certificate: $tmp/cert.pem, private_key: $tmp/key.pem}
    access: {allow: [127.0.0.0/8]}
    upstream: mock"
  fi
  fill bench/conf/gateway.yaml.in "$1" WORKERS="$2" PLAIN_PORT="$3" MOCK_PORT="$MOCK_PORT"
  # multi-line value: substitute with awk
  awk -v b="$tls_block" '{ if ($0 == "@TLS_LISTENER@") { if (b != "") print b } else print }' "$1" >"$1.t"
  mv "$1.t" "$1"
}

start_proxy() {  # name
  case $1 in
    gateway)
      local tls_port=""; [ "$gw_tls" = 1 ] && tls_port=$GW_TLS
      gateway_yaml "$tmp/gateway.yaml" 1 "$GW_PLAIN" "$tls_port"
      "${pin_proxy[@]}" "$gw_bin" --config "$tmp/gateway.yaml" >>"$tmp/gateway.out" 2>>"$tmp/gateway.err" &
      PID[gateway]=$!
      wait_port "$GW_PLAIN" "${PID[gateway]}" || { cat "$tmp/gateway.err" >&2; die "gateway did not start"; }
      if [ -n "$tls_port" ]; then wait_port "$GW_TLS" "${PID[gateway]}" || die "gateway TLS listener did not start"; fi
      ;;
    nginx)
      mkdir -p "$tmp/nginx-tmp"
      fill bench/conf/nginx.conf.in "$tmp/nginx.conf" DIR="$tmp" MOCK_PORT="$MOCK_PORT" \
        PLAIN_PORT="$NGX_PLAIN" TLS_PORT="$NGX_TLS" CERT="$tmp/cert.pem" KEY="$tmp/key.pem"
      "${pin_proxy[@]}" nginx -e "$tmp/nginx-error.log" -p "$tmp" -c "$tmp/nginx.conf" \
        >>"$tmp/nginx.out" 2>&1 &
      PID[nginx]=$!
      wait_port "$NGX_PLAIN" "${PID[nginx]}" && wait_port "$NGX_TLS" "${PID[nginx]}" ||
        { cat "$tmp/nginx.out" "$tmp/nginx-error.log" >&2; die "nginx did not start"; }
      ;;
    haproxy)
      fill bench/conf/haproxy.cfg.in "$tmp/haproxy.cfg" MOCK_PORT="$MOCK_PORT" \
        PLAIN_PORT="$HAP_PLAIN" TLS_PORT="$HAP_TLS" PEM="$tmp/haproxy.pem"
      "${pin_proxy[@]}" haproxy -db -f "$tmp/haproxy.cfg" >>"$tmp/haproxy.out" 2>&1 &
      PID[haproxy]=$!
      wait_port "$HAP_PLAIN" "${PID[haproxy]}" && wait_port "$HAP_TLS" "${PID[haproxy]}" ||
        { cat "$tmp/haproxy.out" >&2; die "haproxy did not start"; }
      ;;
  esac
  # nginx: wait for its worker before anyone measures the process tree
  if [ "$1" = nginx ]; then
    for _ in $(seq 100); do [ "$(tree_pids "${PID[nginx]}" | wc -l)" -ge 2 ] && break; sleep 0.05; done
  fi
}

stop_proc() {  # name
  local p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset "PID[$1]"
}

restart_proxy() {
  stop_proc "$1"
  case $1 in
    gateway) wait_port_free "$GW_PLAIN" ;;
    nginx) wait_port_free "$NGX_PLAIN"; wait_port_free "$NGX_TLS" ;;
    haproxy) wait_port_free "$HAP_PLAIN"; wait_port_free "$HAP_TLS" ;;
  esac
  start_proxy "$1"
}

port_of() {  # proxy plain|tls
  case $1-$2 in
    gateway-plain) echo "$GW_PLAIN" ;; gateway-tls) echo "$GW_TLS" ;;
    nginx-plain) echo "$NGX_PLAIN" ;; nginx-tls) echo "$NGX_TLS" ;;
    haproxy-plain) echo "$HAP_PLAIN" ;; haproxy-tls) echo "$HAP_TLS" ;;
    direct-plain) echo "$MOCK_PORT" ;;
  esac
}

# ---------------------------------------------------------------- measurements
# wrk_run scen proxy pid url conns [env...]: warm-up, then DURATION s; records
# requests/s, p50/p99 ms, errors and (with a pid) the CPU the proxy used.
wrk_run() {
  local scen=$1 proxy=$2 pid=$3 url=$4 conns=$5; shift 5
  local pin=("${pin_load[@]}")
  [ "$scen" = f ] && pin=(taskset -c "$all_cpus")
  if [ "$WARMUP" != 0 ]; then
    env "$@" "${pin[@]}" wrk -t1 -c "$conns" -d "${WARMUP}s" --timeout 10s \
      -s bench/wrk/completion.lua "$url" >/dev/null 2>&1 || true
  fi
  local c0=0 c1=0 t0 t1 out l0 l1
  [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
  l0=$(($(cpu_ticks "${PID[mock]}") + $(children_ticks)))
  t0=$(date +%s%N)
  out=$(env "$@" "${pin[@]}" wrk -t1 -c "$conns" -d "${DURATION}s" --timeout 10s \
    -s bench/wrk/completion.lua "$url" 2>&1) || true
  t1=$(date +%s%N)
  [ -n "$pid" ] && c1=$(cpu_ticks "$pid")
  l1=$(($(cpu_ticks "${PID[mock]}") + $(children_ticks)))
  local line
  line=$(grep '^WRK ' <<<"$out" || true)
  if [ -z "$line" ]; then
    log "wrk failed for $scen/$proxy: $(tail -3 <<<"$out" | tr '\n' ' ')"
    return 0
  fi
  local req dur p50 p99 errs
  req=$(grep -oE 'requests=[0-9]+' <<<"$line" | cut -d= -f2)
  dur=$(grep -oE 'duration_us=[0-9]+' <<<"$line" | cut -d= -f2)
  p50=$(grep -oE 'p50_us=[0-9]+' <<<"$line" | cut -d= -f2)
  p99=$(grep -oE 'p99_us=[0-9]+' <<<"$line" | cut -d= -f2)
  errs=$(grep -oE 'errors_[a-z]+=[0-9]+' <<<"$line" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }')
  local rps
  rps=$(awk -v r="$req" -v d="$dur" 'BEGIN { printf "%.1f", r / (d / 1e6) }')
  record "$scen" "$proxy" rps "$rps"
  record "$scen" "$proxy" p50_ms "$(awk -v v="$p50" 'BEGIN { printf "%.3f", v / 1000 }')"
  record "$scen" "$proxy" p99_ms "$(awk -v v="$p99" 'BEGIN { printf "%.3f", v / 1000 }')"
  record "$scen" "$proxy" errors "$errs"
  if [ -n "$pid" ] && [ "$req" -gt 0 ]; then
    record "$scen" "$proxy" cpu_us_per_req \
      "$(awk -v c=$((c1 - c0)) -v h="$clk_tck" -v r="$req" 'BEGIN { printf "%.2f", c / h * 1e6 / r }')"
    record "$scen" "$proxy" per_core_rps \
      "$(awk -v c=$((c1 - c0)) -v h="$clk_tck" -v r="$req" 'BEGIN { if (c > 0) printf "%.0f", r / (c / h); }')"
    record "$scen" "$proxy" cpu_pct \
      "$(awk -v c=$((c1 - c0)) -v h="$clk_tck" -v w=$((t1 - t0)) 'BEGIN { printf "%.0f", c / h / (w / 1e9) * 100 }')"
  fi
  if [ "$req" -gt 0 ]; then
    record "$scen" "$proxy" load_cpu_us_per_req \
      "$(awk -v c=$((l1 - l0)) -v h="$clk_tck" -v r="$req" 'BEGIN { printf "%.2f", c / h * 1e6 / r }')"
  fi
  [ "${errs:-0}" -eq 0 ] || log "  $scen/$proxy: $errs errors ($line)"
  log "  $scen/$proxy: $rps req/s, p50 $((p50))us p99 $((p99))us"
}

# sse_run proxy port pid: SSE_STREAMS streams; lag, and (with a pid) memory.
sse_run() {
  local proxy=$1 port=$2 pid=$3 before=0 during=0
  if [ -n "$pid" ]; then
    # warm up (allocator arenas, upstream pool), then the baseline
    "${pin_load[@]}" "$sse_bin" --target "127.0.0.1:$port" --streams 100 --tokens 2 --delay-ms 1 >/dev/null || true
    sleep 0.5
    before=$(rss_kib "$pid")
  fi
  rm -f "$tmp/open"
  "${pin_load[@]}" "$sse_bin" --target "127.0.0.1:$port" --streams "$SSE_STREAMS" \
    --tokens "$SSE_TOKENS" --delay-ms "$SSE_DELAY_MS" --ramp-ms 1000 --hold-file "$tmp/open" \
    >"$tmp/sse.json" 2>&1 &
  local lp=$!
  for _ in $(seq 400); do [ -f "$tmp/open" ] && break; sleep 0.05; done
  sleep 0.3
  [ -n "$pid" ] && during=$(rss_kib "$pid")
  local ok=0
  wait "$lp" && ok=1
  local j
  j=$(cat "$tmp/sse.json")
  [ "$ok" = 1 ] || log "  d/$proxy: some streams failed: $j"
  local p50 p99 failed
  p50=$(grep -oE '"lag_ms_p50":[-0-9.]+' <<<"$j" | cut -d: -f2)
  p99=$(grep -oE '"lag_ms_p99":[-0-9.]+' <<<"$j" | cut -d: -f2)
  failed=$(grep -oE '"failed":[0-9]+' <<<"$j" | cut -d: -f2)
  record d "$proxy" lag_p50_ms "$p50"
  record d "$proxy" lag_p99_ms "$p99"
  record d "$proxy" errors "${failed:-$SSE_STREAMS}"
  if [ -n "$pid" ]; then
    record d "$proxy" rss_open_mib "$(awk -v v="$during" 'BEGIN { printf "%.1f", v / 1024 }')"
    record d "$proxy" kib_per_stream "$(awk -v a="$before" -v b="$during" -v n="$SSE_STREAMS" 'BEGIN { printf "%.2f", (b - a) / n }')"
    log "  d/$proxy: lag p50 $p50 ms p99 $p99 ms, RSS $before -> $during KiB"
  else
    log "  d/$proxy: lag p50 $p50 ms p99 $p99 ms"
  fi
}

# ---------------------------------------------------------------- start
log "starting the mock (CPU $LOAD_CPU), gateway, nginx, HAProxy (CPU $PROXY_CPU)"
start_mock
# Does this gateway build terminate TLS yet? (listeners[].tls)
gateway_yaml "$tmp/gw-tls-check.yaml" 1 "$GW_PLAIN" "$GW_TLS"
if "$gw_bin" --check-config --config "$tmp/gw-tls-check.yaml" >"$tmp/gw-tls-check.out" 2>&1; then
  gw_tls=1
  log "the gateway accepts listeners[].tls: TLS scenarios include it"
else
  log "the gateway does not accept listeners[].tls yet: TLS scenarios run for nginx and HAProxy only"
  log "  ($(grep -m1 tls "$tmp/gw-tls-check.out" || head -1 "$tmp/gw-tls-check.out"))"
fi
proxies=(gateway nginx haproxy)
for p in "${proxies[@]}"; do start_proxy "$p"; done

order_for_round() {  # rotate gateway/nginx/haproxy by round
  local r=$1 i
  for i in 0 1 2; do echo "${proxies[$(((i + r - 1) % 3))]}"; done
}

start_s=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  mapfile -t order < <(order_for_round "$round")
  # a, b, c: each proxy twice, mirrored (A B C C B A), so a drift of the
  # machine's speed within the round weighs on every proxy alike.
  twice=("${order[@]}" "${order[2]}" "${order[1]}" "${order[0]}")

  if want a; then
    log " a. plain keep-alive, $CONNS connections"
    wrk_run a direct "" "http://127.0.0.1:$MOCK_PORT/" "$CONNS"
    for p in "${twice[@]}"; do
      wrk_run a "$p" "${PID[$p]}" "http://127.0.0.1:$(port_of "$p" plain)/" "$CONNS"
    done
  fi
  if want b; then
    log " b. TLS keep-alive, $CONNS connections"
    for p in "${twice[@]}"; do
      [ "$p" = gateway ] && [ "$gw_tls" = 0 ] && continue
      wrk_run b "$p" "${PID[$p]}" "https://127.0.0.1:$(port_of "$p" tls)/" "$CONNS"
    done
  fi
  if want c; then
    log " c. TLS, new connection per request, $CONNS connections"
    for p in "${twice[@]}"; do
      [ "$p" = gateway ] && [ "$gw_tls" = 0 ] && continue
      wrk_run c "$p" "${PID[$p]}" "https://127.0.0.1:$(port_of "$p" tls)/" "$CONNS" BENCH_CLOSE=1
    done
  fi
  if want d; then
    log " d. $SSE_STREAMS concurrent SSE streams, $SSE_TOKENS events ${SSE_DELAY_MS} ms apart (fresh proxies)"
    sse_run direct "$MOCK_PORT" ""
    for p in "${order[@]}"; do
      restart_proxy "$p"
      sse_run "$p" "$(port_of "$p" plain)" "${PID[$p]}"
    done
  fi
  if want e; then
    log " e. $BODY_BYTES-byte request bodies, $BODY_CONNS connections"
    wrk_run e direct "" "http://127.0.0.1:$MOCK_PORT/" "$BODY_CONNS" BENCH_BODY_BYTES="$BODY_BYTES"
    for p in "${order[@]}"; do
      wrk_run e "$p" "${PID[$p]}" "http://127.0.0.1:$(port_of "$p" plain)/" "$BODY_CONNS" \
        BENCH_BODY_BYTES="$BODY_BYTES"
    done
  fi
  if want f; then
    log " f. scaling: gateway workers 1 and 2, $CONNS connections, no pinning"
    taskset -a -p -c "$all_cpus" "${PID[mock]}" >/dev/null
    for w in 1 2; do
      port=$GW1_PORT; [ "$w" = 2 ] && port=$GW2_PORT
      gateway_yaml "$tmp/gateway-w$w.yaml" "$w" "$port" ""
      taskset -c "$all_cpus" "$gw_bin" --config "$tmp/gateway-w$w.yaml" >>"$tmp/gateway-w$w.out" 2>&1 &
      PID[gw$w]=$!
      wait_port "$port" "${PID[gw$w]}" || { cat "$tmp/gateway-w$w.out" >&2; die "gateway (workers $w) did not start"; }
    done
    ws=(1 2); [ $((round % 2)) = 0 ] && ws=(2 1)
    for w in "${ws[@]}"; do
      port=$GW1_PORT; [ "$w" = 2 ] && port=$GW2_PORT
      wrk_run f "workers$w" "${PID[gw$w]}" "http://127.0.0.1:$port/" "$CONNS"
    done
    stop_proc gw1; stop_proc gw2
    taskset -a -p -c "$LOAD_CPU" "${PID[mock]}" >/dev/null
  fi
  if want g; then
    log " g. metrics on vs off: the gateway with admin.metrics true and false, $CONNS connections"
    for m in on off; do
      port=$GW1_PORT; [ "$m" = off ] && port=$GW2_PORT
      gateway_yaml "$tmp/gateway-m$m.yaml" 1 "$port" ""
      [ "$m" = off ] && sed -i 's|^admin: {address: 127.0.0.1:0}|admin: {address: 127.0.0.1:0, metrics: false}|' "$tmp/gateway-m$m.yaml"
      grep -q "metrics: false" "$tmp/gateway-m$m.yaml" || [ "$m" = on ] || die "could not switch metrics off in $tmp/gateway-m$m.yaml"
      "${pin_proxy[@]}" "$gw_bin" --config "$tmp/gateway-m$m.yaml" >>"$tmp/gateway-m$m.out" 2>&1 &
      PID[gm$m]=$!
      wait_port "$port" "${PID[gm$m]}" || { cat "$tmp/gateway-m$m.out" >&2; die "gateway (metrics $m) did not start"; }
    done
    # The difference sought (under 3%) is far smaller than this machine's
    # swings (±15% over tens of seconds), so on and off run in adjacent
    # pairs of short runs, on-off off-on on-off off-on (the mirror in even
    # rounds), and each pair gives one ratio.
    ms=(on off off on on off off on); [ $((round % 2)) = 0 ] && ms=(off on on off off on on off)
    for m in "${ms[@]}"; do
      port=$GW1_PORT; [ "$m" = off ] && port=$GW2_PORT
      DURATION=$G_DURATION wrk_run g "metrics_$m" "${PID[gm$m]}" "http://127.0.0.1:$port/" "$CONNS"
    done
    stop_proc gmon; stop_proc gmoff
  fi
done
if want h; then
  # Gateway only (nginx and HAProxy do not route by a JSON body): its own
  # rounds, routes and no routes in turn on one gateway (bench/routes.sh).
  log " h. routing by model: 4 KiB and 256 KiB chat bodies, model first and last, routes vs none"
  ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU \
    MOCK="$bin/tools/mock_server/deepseek-mock-server" BASE_PORT=$((BASE_PORT + 200)) \
    bench/routes.sh "$gw_bin" >"$tmp/routes.md" 2>"$tmp/routes.err" || {
    cat "$tmp/routes.err" >&2
    die "bench/routes.sh failed"
  }
fi
elapsed=$(($(date +%s) - start_s))

# ---------------------------------------------------------------- report
median() {  # scen proxy metric -> median over rounds, or empty
  awk -F'\t' -v s="$1" -v p="$2" -v m="$3" '$1 == s && $2 == p && $3 == m { v[n++] = $5 }
    END {
      if (n == 0) exit
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      if (n % 2) print v[int(n / 2)]; else print (v[n / 2 - 1] + v[n / 2]) / 2
    }' "$raw"
}
adjacent_ratio() {  # scen proxy_a proxy_b metric -> median over adjacent pairs of runs (a ÷ b)
  awk -F'\t' -v s="$1" -v a="$2" -v b="$3" -v m="$4" '$1 == s && $3 == m && ($2 == a || $2 == b) {
      if (!($4 in k)) k[$4] = 0
      i = k[$4]++; if (i % 2 == 0) { first[$4] = $2; fv[$4] = $5; next }
      if (first[$4] == $2) next
      va = ($2 == a) ? $5 : fv[$4]; vb = ($2 == b) ? $5 : fv[$4]
      if (vb > 0) v[n++] = va / vb }
    END {
      if (n == 0) exit
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      if (n % 2) printf "%.4f\n", v[int(n / 2)]; else printf "%.4f\n", (v[n / 2 - 1] + v[n / 2]) / 2
    }' "$raw"
}
paired_ratio() {  # scen proxy_a proxy_b metric -> median over rounds of (sum a ÷ sum b in the round)
  awk -F'\t' -v s="$1" -v a="$2" -v b="$3" -v m="$4" '$1 == s && $3 == m {
      if ($2 == a) sa[$4] += $5; else if ($2 == b) sb[$4] += $5 }
    END {
      for (r in sa) if (sb[r] > 0) v[n++] = sa[r] / sb[r]
      if (n == 0) exit
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      if (n % 2) printf "%.4f\n", v[int(n / 2)]; else printf "%.4f\n", (v[n / 2 - 1] + v[n / 2]) / 2
    }' "$raw"
}
fmt() {  # value decimals -> with thousands separators; "–" when empty
  [ -n "$1" ] || { echo "–"; return; }
  awk -v v="$1" -v d="$2" 'BEGIN {
    s = sprintf("%." d "f", v); neg = (substr(s, 1, 1) == "-"); if (neg) s = substr(s, 2)
    i = index(s, "."); ip = i ? substr(s, 1, i - 1) : s; fp = i ? substr(s, i) : ""
    out = ""; while (length(ip) > 3) { out = "," substr(ip, length(ip) - 2) out; ip = substr(ip, 1, length(ip) - 3) }
    print (neg ? "-" : "") ip out fp }'
}
pratio() {  # scen peer metric -> paired ratio gateway ÷ peer with 2 decimals, or "–"
  local r; r=$(paired_ratio "$1" gateway "$2" "$3")
  [ -n "$r" ] && awk -v r="$r" 'BEGIN { printf "%.2f", r }' || echo "–"
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a >= 0) printf "%.2f", a / b; else print "–" }' || echo "–"; }

# row scen metric label decimals [direct]
row() {
  local s=$1 m=$2 label=$3 d=$4 direct=${5:-}
  local g n h dv=""
  g=$(median "$s" gateway "$m"); n=$(median "$s" nginx "$m"); h=$(median "$s" haproxy "$m")
  [ -n "$g$n$h" ] || return 0
  [ -n "$direct" ] && dv=$(median "$s" direct "$m")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$scen_label" "$label" "$(fmt "$g" "$d")" \
    "$(fmt "$n" "$d")" "$(fmt "$h" "$d")" "$(pratio "$s" nginx "$m")" "$(pratio "$s" haproxy "$m")" "$(fmt "$dv" "$d")"
  scen_label=""
}
# added p99 lag over direct, per round, then the median
added_lag() {
  awk -F'\t' '$1 == "d" && $3 == "lag_p99_ms" { v[$4 "," $2] = $5; r[$4] = 1 }
    END { for (k in r) { d = v[k ",direct"]; if (d == "") continue
      split("gateway nginx haproxy", ps, " "); for (i in ps) if ((k "," ps[i]) in v)
        printf "d\t%s\tadded_p99_ms\t%s\t%.3f\n", ps[i], k, v[k "," ps[i]] - d } }' "$raw" >>"$raw"
}
want d && added_lag

# Targets of issue 8, checked on the medians above.
target() {  # label scen metric peer op factor   (op: ge = gateway >= factor x peer, le = <=)
  local g p r
  g=$(median "$2" gateway "$3"); p=$(median "$2" "$4" "$3"); r=$(paired_ratio "$2" gateway "$4" "$3")
  if [ -z "$g" ] || [ -z "$p" ] || [ -z "$r" ]; then echo "- $1: not measured"; return; fi
  awk -v l="$1" -v g="$g" -v p="$p" -v r="$r" -v op="$5" -v f="$6" 'BEGIN {
    ok = (op == "ge") ? (r >= f) : (r <= f)
    printf "- %s: %s (paired ratio %.3f; medians: gateway %s, peer %s)\n", l, ok ? "met" : "**missed**", r, g, p }'
}
targets() {
  echo "Targets (issue 8), on the paired ratios above:"
  echo
  if want a; then
    target "plain keep-alive requests/s ≥ 1.10 × nginx" a rps nginx ge 1.10
    target "plain keep-alive requests/s ≥ 1.00 × HAProxy" a rps haproxy ge 1.00
    target "plain keep-alive p99 latency ≤ nginx" a p99_ms nginx le 1.00
    target "plain keep-alive p99 latency ≤ HAProxy" a p99_ms haproxy le 1.00
  fi
  want b && target "TLS keep-alive requests/s ≥ 1.00 × HAProxy" b rps haproxy ge 1.00
  want c && target "new TLS handshakes/s ≥ 1.00 × nginx" c rps nginx ge 1.00
  if want d; then
    target "SSE p99 lag ≤ nginx" d lag_p99_ms nginx le 1.00
    local k; k=$(median d gateway kib_per_stream)
    if [ -n "$k" ]; then
      awk -v k="$k" 'BEGIN { printf "- SSE resident memory ≤ 16 KiB per stream: %s (%.1f KiB)\n", k <= 16 ? "met" : "**missed**", k }'
    fi
  fi
  if want g; then
    local on off pr
    on=$(median g metrics_on rps); off=$(median g metrics_off rps)
    pr=$(adjacent_ratio g metrics_on metrics_off rps)
    if [ -n "$pr" ]; then
      awk -v a="$on" -v b="$off" -v r="$pr" 'BEGIN { d = (1 - r) * 100; if (d < 0) d = -d
        printf "- metrics on vs off < 3 %% (requests/s, on ÷ off of adjacent runs, median of the pairs): %s (ratio %.3f, difference %.1f %%; medians on %.0f, off %.0f)\n", d < 3 ? "met" : "**missed**", r, d, a, b }'
    else
      echo "- metrics on vs off < 3 %: not measured"
    fi
  fi
  echo
}

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
report="bench/results/$stamp.md"
{
  echo "### deepseek-gateway vs nginx vs HAProxy, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $ncpu x $cpu_model, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), load average before the run: $load_before"
  echo "- versions: $("$gw_bin" --version | head -1) Release; nginx $(nginx -v 2>&1 | grep -oE '[0-9.]+$'); HAProxy $(haproxy -v | grep -oE 'version [0-9.]+' | cut -d' ' -f2); wrk $(dpkg-query -W -f='${Version}' wrk); $(openssl version | cut -d' ' -f1-2)"
  echo "- run: ROUNDS=$ROUNDS, DURATION=${DURATION}s per run after a ${WARMUP}s warm-up; medians over the rounds; a, b and c run each proxy twice per round in mirrored order; proxy under test on CPU $PROXY_CPU, load generator and mock (--threads $MOCK_THREADS) on CPU $LOAD_CPU; $CERT_KEY certificate;${NICE:+ nice $NICE;} measured part took ${elapsed}s"
  echo "- ratio = gateway ÷ peer, paired: within each round the gateway's runs are summed and divided by the peer's, and the median over rounds is shown (a drift of the machine's speed between rounds cancels out); above 1 is better for ↑ figures, below 1 is better for ↓ figures"
  echo
  echo "| scenario | figure | gateway | nginx | HAProxy | gw ÷ nginx | gw ÷ HAProxy | direct to mock |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  if want a; then
    scen_label="a. plain HTTP keep-alive, $CONNS conns"
    row a rps "requests/s ↑" 0 direct
    row a p50_ms "latency p50 ms ↓" 2 direct
    row a p99_ms "latency p99 ms ↓" 2 direct
    row a cpu_us_per_req "proxy CPU µs/request ↓" 1
    row a per_core_rps "requests/s per busy proxy core (1 s ÷ CPU per request) ↑" 0
    row a cpu_pct "proxy CPU % of its core" 0
    row a load_cpu_us_per_req "load side (wrk + mock) CPU µs/request" 1 direct
  fi
  if want b; then
    scen_label="b. TLS keep-alive, $CONNS conns"
    row b rps "requests/s ↑" 0
    row b p50_ms "latency p50 ms ↓" 2
    row b p99_ms "latency p99 ms ↓" 2
    row b cpu_us_per_req "proxy CPU µs/request ↓" 1
    row b per_core_rps "requests/s per busy proxy core (1 s ÷ CPU per request) ↑" 0
    row b cpu_pct "proxy CPU % of its core" 0
    row b load_cpu_us_per_req "load side (wrk + mock) CPU µs/request" 1
  fi
  if want c; then
    scen_label="c. TLS new connection per request, $CONNS conns"
    row c rps "handshakes/s ↑" 0
    row c p99_ms "latency p99 ms ↓" 2
    row c cpu_us_per_req "proxy CPU µs/handshake ↓" 1
    row c per_core_rps "handshakes/s per busy proxy core (1 s ÷ CPU per handshake) ↑" 0
    row c cpu_pct "proxy CPU % of its core" 0
    row c load_cpu_us_per_req "load side (wrk + mock) CPU µs/handshake" 1
  fi
  if want d; then
    scen_label="d. $SSE_STREAMS SSE streams × $SSE_TOKENS events"
    row d lag_p50_ms "lag p50 ms ↓" 3 direct
    row d lag_p99_ms "lag p99 ms ↓" 3 direct
    row d added_p99_ms "added p99 lag over direct ms ↓" 3
    row d kib_per_stream "RSS per open stream KiB ↓" 1
    row d rss_open_mib "RSS with streams open MiB ↓" 1
  fi
  if want e; then
    scen_label="e. $((BODY_BYTES / 1024)) KiB request bodies, $BODY_CONNS conns"
    row e rps "requests/s ↑" 0
    row e p99_ms "latency p99 ms ↓" 1
    row e cpu_us_per_req "proxy CPU µs/request ↓" 0
    row e load_cpu_us_per_req "load side (wrk + mock) CPU µs/request" 0
  fi
  if want f; then
    w1=$(median f workers1 rps); w2=$(median f workers2 rps)
    echo "| f. scaling (load of a, no pinning) | requests/s ↑, workers: 1 → 2 | $(fmt "$w1" 0) → $(fmt "$w2" 0) | | | ×$(ratio "$w2" "$w1") | | |"
    echo "| | latency p99 ms ↓, workers: 1 → 2 | $(fmt "$(median f workers1 p99_ms)" 2) → $(fmt "$(median f workers2 p99_ms)" 2) | | | | | |"
  fi
  if want g; then
    gon=$(median g metrics_on rps); goff=$(median g metrics_off rps)
    echo "| g. metrics on vs off (load of a) | requests/s ↑, metrics on → off | $(fmt "$gon" 0) → $(fmt "$goff" 0) | | | on ÷ off $(adjacent_ratio g metrics_on metrics_off rps) (median of adjacent pairs) | | |"
    echo "| | proxy CPU µs/request ↓, metrics on → off | $(fmt "$(median g metrics_on cpu_us_per_req)" 1) → $(fmt "$(median g metrics_off cpu_us_per_req)" 1) | | | | | |"
  fi
  echo
  if want h; then
    echo "h. routing by model (gateway only; bench/routes.sh): CPU per request of a listener with routes over the same listener without, and the delay from the client's last body byte"
    echo
    # The summary table (the per-round table stays in the raw output).
    sed -n '/^| body | model | CPU\/req/,/^$/p' "$tmp/routes.md"
    awk -F'|' '/^\| 4096 \|/ && NF == 8 { r = $4 + 0; if (r > worst) worst = r } END {
      if (worst) printf "- routes at 4 KiB ≤ +10 %% CPU per request: %s (worst ratio %.3f)\n", worst <= 1.10 ? "met" : "**missed**", worst }' \
      "$tmp/routes.md"
    awk -F'|' '/^\| 262144 \|/ && NF == 8 { f = $5 + 0; if (f > worst) worst = f } END {
      if (worst) printf "- last body byte → first byte at the server < 20 µs at 256 KiB: %s (worst median %.1f µs)\n", worst < 20 ? "met" : "**missed**", worst }' \
      "$tmp/routes.md"
    echo
  fi
  if [ "$gw_tls" = 0 ] && { want b || want c; }; then
    echo "The gateway does not terminate TLS yet (its --check-config rejects listeners[].tls), so b and c have no gateway figures."
  fi
  targets
  if want a; then
    gw_busy=$(median a gateway cpu_pct)
    if [ -n "$gw_busy" ] && [ "${gw_busy%.*}" -lt 80 ]; then
      echo "Caution: in a the gateway used only ${gw_busy}% of its core (median): the proxies were held back by the load side or by other processes on the machine, so requests/s and latency compare load, not proxies; the CPU-per-request figures still compare the proxies."
      echo
    fi
  fi
  errs=$(awk -F'\t' '$3 == "errors" && $5 + 0 > 0 { printf "%s/%s round %s: %s; ", $1, $2, $4, $5 }' "$raw")
  [ -z "$errs" ] || echo "Runs with errors (wrk socket/status errors, failed streams): $errs"
} | tee "$report"
cp "$report" bench/results/latest.md
log "saved $report, $raw and bench/results/latest.md; measured part took ${elapsed}s"
