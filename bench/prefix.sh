#!/usr/bin/env bash
# Cache-aware balancing (SPEC §9, issue 18) over 4 simulated inference servers,
# loopback only. The mock servers (tools/mock_server) keep a prefix cache that
# holds about a third of all the workload's prefixes each, charge a prefill
# time per KiB of prompt they do not hold, and run at most MAX_BATCH
# completions at once (the rest wait in a queue). tools/prefix_load sends
# streaming chat completions through the gateway, once per balancer
# (round_robin, least_conn, ip_hash, prefix_affinity), then straight to the
# servers with each group pinned to one (the oracle), and with prefix_load
# routing by itself as SPEC §9 describes prefix_affinity (client_affinity and
# client_affinity_wW: references for the gateway's balancer, what such an
# algorithm can reach here, with a bound on requests in flight or on the
# share of recent picks).
# Every run starts cold: fresh mock servers and a fresh gateway.
#
#   BUILD_DIR=build-release BUILD_TYPE=Release scripts/build.sh   # it builds nothing itself
#   bench/prefix.sh            # about 4 minutes on 2 cores
#   bench/prefix.sh --quick    # a smoke run of about 30 s: one round, smaller workloads, no references
#
# Workloads (tools/prefix_load/main.cpp describes them):
#   shared     GROUP_COUNT x PROMPTS_PER_GROUP prompts, each a group's SYSTEM-byte system message
#              and a unique QUESTION-byte question (SGLang's generated-shared-prefix:
#              64 x 16 with 2048 tokens over 8 servers; here 32 x 16 over 4)
#   multiturn  CONVERSATIONS chats of TURNS turns, each turn resending the history
#   hot        as shared, group 0 has 60% of the requests
# Then "two gateways agree": two fresh gateways with the same prefix_affinity
# configuration get the same AGREE_PREFIXES first-time prefixes (in different
# orders); the share sent to the same server.
#
# Prints a Markdown table and the targets of issue 18 (PASS/FAIL; the script's
# status does not depend on them), also written to bench/results/prefix-latest.md
# (RESULT=path to change, RESULT= for none).
#
# Environment (defaults; --quick makes the workloads smaller):
#   BUILD_DIR=build-release  GW MOCK LOAD (the binaries; default under BUILD_DIR)
#   ROUNDS=3 (the table shows medians; round r uses seed SEED+r-1)
#   BASE_PORT=18380 (uses BASE_PORT..+5)  WORKERS=2  CONCURRENCY=16  SEED=1
#   RAMP_MS=200 (the clients start one by one over this time)
#   WORKLOADS="shared multiturn hot"  BALANCERS="round_robin least_conn ip_hash prefix_affinity"
#   GROUP_COUNT=32 PROMPTS_PER_GROUP=16 SYSTEM=8192 QUESTION=256
#   CONVERSATIONS=48 TURNS=12 MT_SYSTEM=4096 MT_QUESTION=256
#   TOKENS=16 TOKEN_DELAY_MS=4 PREFILL_US_PER_KIB=4000 MAX_BATCH=8 CACHE_BLOCK=64
#   CACHE_SHARE=3 (each server's cache holds 1/CACHE_SHARE of all prefix blocks)
#   BLOCK_BYTES=512 MAX_LOAD_RATIO=1.25 TABLE_ENTRIES=100000 (prefix_affinity)
#   LOAD_METRICS= (an interval such as 250ms: prefix_affinity reads the mocks' /metrics)
#   AGREE_PREFIXES=256 AGREE_SYSTEM=2048 AGREE_CONCURRENCY=1
#   REFERENCE="0 64" (--quick: none): client_affinity rows, one per bound window
#     (0: the bound on requests in flight; W: on the share of the last W picks)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2 ;;
  esac
done

BUILD_DIR=${BUILD_DIR:-build-release}
GW=${GW:-$BUILD_DIR/deepseek-gateway}
MOCK=${MOCK:-$BUILD_DIR/tools/mock_server/deepseek-mock-server}
LOAD=${LOAD:-$BUILD_DIR/tools/prefix_load}
BASE_PORT=${BASE_PORT:-18380} WORKERS=${WORKERS:-2} CONCURRENCY=${CONCURRENCY:-16} SEED=${SEED:-1}
RAMP_MS=${RAMP_MS:-200}
WORKLOADS=${WORKLOADS:-"shared multiturn hot"}
BALANCERS=${BALANCERS:-"round_robin least_conn ip_hash prefix_affinity"}
if [ "$quick" = 1 ]; then
  ROUNDS=${ROUNDS:-1} REFERENCE=${REFERENCE-} GROUP_COUNT=${GROUP_COUNT:-16} PROMPTS_PER_GROUP=${PROMPTS_PER_GROUP:-8}
  CONVERSATIONS=${CONVERSATIONS:-24} TURNS=${TURNS:-6} AGREE_PREFIXES=${AGREE_PREFIXES:-64}
fi
ROUNDS=${ROUNDS:-3}
GROUP_COUNT=${GROUP_COUNT:-32} PROMPTS_PER_GROUP=${PROMPTS_PER_GROUP:-16} SYSTEM=${SYSTEM:-8192} QUESTION=${QUESTION:-256}
CONVERSATIONS=${CONVERSATIONS:-48} TURNS=${TURNS:-12} MT_SYSTEM=${MT_SYSTEM:-4096}
MT_QUESTION=${MT_QUESTION:-256}
TOKENS=${TOKENS:-16} TOKEN_DELAY_MS=${TOKEN_DELAY_MS:-4} PREFILL_US_PER_KIB=${PREFILL_US_PER_KIB:-4000}
MAX_BATCH=${MAX_BATCH:-8} CACHE_BLOCK=${CACHE_BLOCK:-64} CACHE_SHARE=${CACHE_SHARE:-3}
BLOCK_BYTES=${BLOCK_BYTES:-512} MAX_LOAD_RATIO=${MAX_LOAD_RATIO:-1.25}
TABLE_ENTRIES=${TABLE_ENTRIES:-100000} LOAD_METRICS=${LOAD_METRICS:-}
AGREE_PREFIXES=${AGREE_PREFIXES:-256} AGREE_SYSTEM=${AGREE_SYSTEM:-2048}
AGREE_CONCURRENCY=${AGREE_CONCURRENCY:-1} REFERENCE=${REFERENCE-"0 64"}
RESULT=${RESULT-bench/results/prefix-latest.md}
SERVERS=4

for b in "$GW" "$MOCK" "$LOAD"; do
  [ -x "$b" ] || { echo "$b missing: BUILD_DIR=$BUILD_DIR BUILD_TYPE=Release scripts/build.sh" >&2; exit 1; }
done
"$MOCK" --help 2>&1 | grep -q -- --prefix-cache-blocks ||
  { echo "$MOCK has no --prefix-cache-blocks (an older mock server)" >&2; exit 1; }

. bench/lib.sh
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# The answer the mock streams: "tok0 tok1 ... ", TOKENS tokens.
answer_bytes=0
for ((i = 0; i < TOKENS; i++)); do answer_bytes=$((answer_bytes + 4 + ${#i})); done

# Cache blocks per server: 1/CACHE_SHARE of the blocks of every distinct
# prefix of the workload. shared and hot: the groups' system messages (the
# role "system" then the text); multiturn: each conversation's last prompt.
cache_blocks() {  # workload
  local bytes
  case $1 in
    multiturn)
      bytes=$((CONVERSATIONS * (6 + MT_SYSTEM + TURNS * (4 + MT_QUESTION) + (TURNS - 1) * (9 + answer_bytes))))
      ;;
    *) bytes=$((GROUP_COUNT * ((6 + SYSTEM) / CACHE_BLOCK * CACHE_BLOCK))) ;;
  esac
  echo $(((bytes / CACHE_BLOCK + CACHE_SHARE - 1) / CACHE_SHARE))
}

load_args() {  # workload
  case $1 in
    multiturn)
      echo --workload multiturn --conversations "$CONVERSATIONS" --turns "$TURNS" \
        --system-bytes "$MT_SYSTEM" --question-bytes "$MT_QUESTION"
      ;;
    *)
      echo --workload "$1" --groups "$GROUP_COUNT" --prompts-per-group "$PROMPTS_PER_GROUP" \
        --system-bytes "$SYSTEM" --question-bytes "$QUESTION"
      ;;
  esac
}

mock_ports=() mock_pids=()
for ((i = 0; i < SERVERS; i++)); do mock_ports+=($((BASE_PORT + i))); done
gw_port=$((BASE_PORT + SERVERS)) gw2_port=$((BASE_PORT + SERVERS + 1))

start_mocks() {  # cache_blocks
  local i
  for ((i = 0; i < SERVERS; i++)); do
    "$MOCK" --listen "127.0.0.1:${mock_ports[i]}" --id "s$i" --quiet --tokens "$TOKENS" \
      --token-delay-ms "$TOKEN_DELAY_MS" --prefix-cache-blocks "$1" \
      --cache-block-bytes "$CACHE_BLOCK" --prefill-us-per-kib "$PREFILL_US_PER_KIB" \
      --max-batch "$MAX_BATCH" >/dev/null 2>>"$tmp/mock.err" &
    mock_pids+=($!)
    pids+=($!)
  done
  for p in "${mock_ports[@]}"; do wait_port "$p"; done
}

# Stops processes this script started, and forgets them (lib.sh's cleanup
# must not signal a recycled pid).
stop() {  # pid...
  kill "$@" 2>/dev/null || true
  local p q keep=()
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
  for q in "${pids[@]}"; do
    [[ " $* " == *" $q "* ]] || keep+=("$q")
  done
  pids=("${keep[@]}")
}

stop_mocks() {
  stop "${mock_pids[@]}"
  mock_pids=()
}

start_gateway() {  # name port balancer -> $gw_pid
  local servers="" p
  for p in "${mock_ports[@]}"; do servers+="{address: \"127.0.0.1:$p\"}, "; done
  {
    echo "workers: $WORKERS"
    echo "admin: {address: 127.0.0.1:0}"
    echo "listeners:"
    echo "  - {name: bench, address: \"127.0.0.1:$2\", access: {allow: [127.0.0.0/8]}, upstream: pool}"
    echo "upstreams:"
    echo "  - name: pool"
    echo "    balancer: $3"
    echo "    servers: [${servers%, }]"
    echo "    keepalive: 64"
    if [ "$3" = prefix_affinity ]; then
      echo "    prefix_affinity: {block_bytes: $BLOCK_BYTES, max_load_ratio: $MAX_LOAD_RATIO, table_entries: $TABLE_ENTRIES}"
      [ -z "$LOAD_METRICS" ] || echo "    load_metrics: {path: /metrics, interval: $LOAD_METRICS}"
    fi
    echo "limits: {max_request_body: 32MiB, client_idle: 60s, max_connections: 100000}"
    echo "logging: {access_log: \"off\", level: warn, format: text}"
    echo "shutdown_timeout: 1s"
  } >"$tmp/$1.yaml"
  "$GW" --config "$tmp/$1.yaml" >"$tmp/$1.log" 2>&1 &
  gw_pid=$!
  pids+=($gw_pid)
  wait_port "$2"
}

# A field of prefix_load's JSON line: a number, or an object as "k:v k:v".
field() {  # file name
  local v
  v=$(grep -oE "\"$2\":(\{[^}]*\}|[^,}]*)" "$1" | head -1 | cut -d: -f2-) || true
  v=${v#\{}
  v=${v%\}}
  v=${v//\"/}
  echo "${v//,/ }"
}

# Runs prefix_load for one workload through one balancer (or the oracle):
# $tmp/WORKLOAD-BALANCER-rROUND.json and .csv.
run() {  # workload balancer round
  local out="$tmp/$1-$2-r$3"
  stop_mocks
  start_mocks "$(cache_blocks "$1")"
  local target list
  list=$(printf '127.0.0.1:%s,' "${mock_ports[@]}" | sed 's/,$//')
  if [ "$2" = oracle ]; then
    target=(--oracle "$list")
  elif [[ $2 == client_affinity* ]]; then
    local window=0
    [[ $2 != client_affinity_w* ]] || window=${2#client_affinity_w}
    target=(--affinity "$list" --block-bytes "$BLOCK_BYTES" --max-load-ratio "$MAX_LOAD_RATIO"
      --bound-window "$window")
  else
    start_gateway "gw-$2" "$gw_port" "$2"
    target=(--target "127.0.0.1:$gw_port")
  fi
  # shellcheck disable=SC2046
  "$LOAD" "${target[@]}" $(load_args "$1") --seed "$((SEED + $3 - 1))" \
    --concurrency "$CONCURRENCY" --ramp-ms "$RAMP_MS" --servers "$SERVERS" --csv "$out.csv" >"$out.json" 2>"$out.err" ||
    echo "warning: $1 $2 round $3: prefix_load reported $(field "$out.json" errors) errors" >&2
  [ "${target[0]}" != --target ] || stop "$gw_pid"
  return 0
}

# The median over the rounds of a figure (a number); an object field: round 1's.
fig() {  # workload balancer name
  local r
  case $3 in
    servers | hot_servers) field "$tmp/$1-$2-r1.json" "$3"; return ;;
  esac
  for ((r = 1; r <= ROUNDS; r++)); do
    [ -s "$tmp/$1-$2-r$r.json" ] && field "$tmp/$1-$2-r$r.json" "$3"
  done | grep . | median || true
}
have() { [ -s "$tmp/$1-$2-r1.json" ]; }

exec 3>&1
if [ -n "$RESULT" ]; then
  mkdir -p "$(dirname "$RESULT")"
  exec 1> >(tee "$RESULT.tmp" >&3)
  tee_pid=$!
fi
started=$(date +%s)
echo "# bench/prefix.sh$([ "$quick" = 1 ] && echo ' --quick')"
echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "gateway: $GW ($("$GW" --version 2>/dev/null | head -1)), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "servers: $SERVERS mocks, $TOKENS tokens $TOKEN_DELAY_MS ms apart, prefill $PREFILL_US_PER_KIB µs/KiB uncached," \
  "max batch $MAX_BATCH, cache blocks of $CACHE_BLOCK B holding 1/$CACHE_SHARE of the prefixes each"
echo "load: $CONCURRENCY closed-loop clients started over $RAMP_MS ms, $ROUNDS rounds (seeds $SEED..$((SEED + ROUNDS - 1)))," \
  "gateway workers $WORKERS; prefix_affinity: block_bytes $BLOCK_BYTES, max_load_ratio $MAX_LOAD_RATIO," \
  "table_entries $TABLE_ENTRIES$([ -n "$LOAD_METRICS" ] && echo ", load_metrics every $LOAD_METRICS")"
echo "workloads: shared and hot $GROUP_COUNT groups x $PROMPTS_PER_GROUP prompts, system $SYSTEM B, question $QUESTION B" \
  "(cache $(cache_blocks shared) blocks); multiturn $CONVERSATIONS conversations x $TURNS turns," \
  "system $MT_SYSTEM B, question $MT_QUESTION B (cache $(cache_blocks multiturn) blocks)"

# Each round runs every workload through every balancer and the oracle, the
# order of the balancers rotating from round to round.
extra=(oracle)
for wdw in $REFERENCE; do
  if [ "$wdw" = 0 ]; then extra+=(client_affinity); else extra+=("client_affinity_w$wdw"); fi
done
all=($BALANCERS "${extra[@]}")
for ((r = 1; r <= ROUNDS; r++)); do
  for w in $WORKLOADS; do
    for ((i = 0; i < ${#all[@]}; i++)); do
      b=${all[(i + r - 1) % ${#all[@]}]}
      echo "round $r/$ROUNDS: $w $b" >&2
      run "$w" "$b" "$r"
    done
  done
done

echo
echo "Medians over the rounds (requests per server and the hot group's servers: round 1)."
echo
echo "| workload | balancer | requests | errors | hit rate | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | req/s | max/mean | requests per server | hot group: servers | hot TTFT p99 ms |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for w in $WORKLOADS; do
  for b in "${all[@]}"; do
    hot_servers="" hot_p99=""
    if [ "$w" = hot ]; then hot_servers=$(fig "$w" "$b" hot_servers) hot_p99=$(fig "$w" "$b" hot_ttft_p99_ms); fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$b" \
      "$(fig "$w" "$b" requests)" "$(fig "$w" "$b" errors)" "$(fig "$w" "$b" hit_rate)" \
      "$(fig "$w" "$b" ttft_p50_ms)" "$(fig "$w" "$b" ttft_p90_ms)" "$(fig "$w" "$b" ttft_p99_ms)" \
      "$(fig "$w" "$b" throughput_rps)" "$(fig "$w" "$b" max_over_mean)" "$(fig "$w" "$b" servers)" \
      "$hot_servers" "$hot_p99"
  done
done

# The targets of issue 18, on prefix_affinity's figures against least_conn's
# and the oracle's.
verdicts=0 failed=0
check() {  # description value op limit
  local ok
  ok=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN {
    if (v == "" || l == "") { print 0; exit }
    print (op == "<=" ? v + 0 <= l + 0 : v + 0 >= l + 0) }')
  verdicts=$((verdicts + 1))
  [ "$ok" = 1 ] || failed=$((failed + 1))
  printf -- '- %s %s: %s %s %s\n' "$([ "$ok" = 1 ] && echo PASS || echo FAIL)" "$1" "$2" "$3" "$4"
}
times() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print ""; else printf "%.4g", a * b }'; }

targets() {  # balancer
for w in $WORKLOADS; do
  have "$w" "$1" || continue
  pa() { fig "$w" "$b" "$1"; }
  lc() { fig "$w" least_conn "$1"; }
  echo
  echo "$w:"
  if [ "$w" != hot ]; then
    check "hit rate >= 0.9 x oracle's" "$(pa hit_rate)" ">=" "$(times 0.9 "$(fig "$w" oracle hit_rate)")"
    if have "$w" least_conn; then
      check "hit rate >= 2 x least_conn's" "$(pa hit_rate)" ">=" "$(times 2 "$(lc hit_rate)")"
      check "TTFT p50 <= 0.5 x least_conn's (ms)" "$(pa ttft_p50_ms)" "<=" "$(times 0.5 "$(lc ttft_p50_ms)")"
      check "TTFT p99 <= least_conn's (ms)" "$(pa ttft_p99_ms)" "<=" "$(lc ttft_p99_ms)"
    fi
  else
    check "hot group on several servers (servers with >= 10% of it; round 1: $(pa hot_servers))" "$(pa hot_spread)" ">=" 2
    have "$w" least_conn &&
      check "hot group's TTFT p99 <= 1.2 x least_conn's (ms)" "$(pa hot_ttft_p99_ms)" "<=" "$(times 1.2 "$(lc hot_ttft_p99_ms)")"
  fi
  check "max/mean requests per server <= 1.3" "$(pa max_over_mean)" "<=" 1.3
done
}
echo
echo "## Targets (prefix_affinity)"
b=prefix_affinity
targets "$b"

# Two gateways, the same configuration, each fresh: the same first-time
# prefixes (one prompt per group) sent to each, in two different orders (as
# replicas behind DNS see different sequences; in the same order, any
# deterministic balancer would agree).
if [[ " $BALANCERS " == *" prefix_affinity "* ]]; then
  stop_mocks
  start_mocks "$(cache_blocks shared)"
  start_gateway gw-a "$gw_port" prefix_affinity
  a_pid=$gw_pid
  start_gateway gw-b "$gw2_port" prefix_affinity
  order=0
  for p in "$gw_port" "$gw2_port"; do
    order=$((order + 1))
    "$LOAD" --target "127.0.0.1:$p" --workload shared --groups "$AGREE_PREFIXES" --prompts-per-group 1 \
      --system-bytes "$AGREE_SYSTEM" --question-bytes "$QUESTION" --seed "$((SEED + 1))" \
      --order-seed "$((SEED + 1000 * order))" --concurrency "$AGREE_CONCURRENCY" --mock-tokens 1 \
      --servers "$SERVERS" --csv "$tmp/agree-$p.csv" >"$tmp/agree-$p.json" 2>/dev/null || true
  done
  stop "$a_pid" "$gw_pid"
  # Joined on the group (the prefix): the share that went to the same server.
  share=""
  [ -s "$tmp/agree-$gw_port.csv" ] && [ -s "$tmp/agree-$gw2_port.csv" ] &&
    share=$(awk -F, 'FNR == 1 { next } NR == FNR { s[$2] = $5; next }
      ($2 in s) { n++; if (s[$2] == $5 && $5 != "") same++ }
      END { printf "%.4f", n ? same / n : 0 }' "$tmp/agree-$gw_port.csv" "$tmp/agree-$gw2_port.csv")
  echo
  echo "two gateways ($AGREE_PREFIXES first-time prefixes in two orders, concurrency $AGREE_CONCURRENCY; per server:" \
    "$(field "$tmp/agree-$gw_port.json" servers) / $(field "$tmp/agree-$gw2_port.json" servers)):"
  check "share of prefixes sent to the same server >= 0.95" "$share" ">=" 0.95
fi

echo
echo "$((verdicts - failed)) of $verdicts targets met"
for b in "${extra[@]}"; do
  [ "$b" != oracle ] || continue
  echo
  echo "## The same targets for $b (a reference, not counted above)"
  echo
  echo "prefix_load routing by itself over the same servers as SPEC §9 describes prefix_affinity"
  echo "(tools/prefix_load/main.cpp --affinity: the most leading blocks remembered among the servers under"
  echo "the bound, ties and new prefixes by rendezvous hashing of the first block; block_bytes $BLOCK_BYTES)."
  if [ "$b" = client_affinity ]; then
    echo "The bound: a server's requests in flight <= ceil($MAX_LOAD_RATIO x mean), with this request."
  else
    echo "The bound: a server's share of the last ${b#client_affinity_w} picks <= $MAX_LOAD_RATIO x a fair share,"
    echo "and its requests in flight <= 2 x mean."
  fi
  targets "$b"
done
echo
echo "$(($(date +%s) - started)) s"
if [ -n "$RESULT" ]; then
  exec 1>&3
  wait "$tee_pid"
  mv "$RESULT.tmp" "$RESULT"
  echo "written to $RESULT"
fi
