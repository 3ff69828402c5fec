#!/usr/bin/env bash
# Installs what is missing, builds, and runs a demo: three mock inference
# servers on 127.0.0.1:9001-9003 behind the gateway on 127.0.0.1:8080, routed
# by model (config/demo.yaml). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir="${BUILD_DIR:-build}"
gateway="$build_dir/deepseek-gateway"
mock="$build_dir/tools/mock_server/deepseek-mock-server"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

models=(deepseek-ai/DeepSeek-R1 deepseek-chat,deepseek-v3 deepseek-chat,deepseek-v3)
for i in 1 2 3; do
  # A simulated prefix cache: 1 ms of prefill per KiB of prompt not cached.
  "$mock" --listen "127.0.0.1:900$i" --id "mock-$i" --models "${models[$((i - 1))]}" \
    --tokens 12 --token-delay-ms 150 --first-token-delay-ms 300 \
    --prefix-cache-blocks 65536 --prefill-us-per-kib 1000 >/dev/null &
  pids+=($!)
done

"$gateway" --check-config --config config/demo.yaml
"$gateway" --config config/demo.yaml &
pids+=($!)

for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:8080/v1/models && break
  sleep 0.1
done

cat <<'MSG'

DeepSeek Gateway demo is running: gateway on http://127.0.0.1:8080, three mock
inference servers behind it, routed by model: deepseek-r1 goes to mock-1 (as
deepseek-ai/DeepSeek-R1), deepseek-chat to mock-2 or mock-3, whichever holds
the conversation's prefix in its (simulated) KV cache. Try, in another
terminal:

  # the models clients may ask for
  curl -s http://127.0.0.1:8080/v1/models

  # a plain completion on each model (X-Mock-Server shows who answered; run
  # the second a few times: the same prompt stays on one server, and
  # usage.prompt_tokens_details.cached_tokens shows its prefix was cached)
  curl -si http://127.0.0.1:8080/v1/chat/completions \
    -H 'Content-Type: application/json' \
    -d '{"model":"deepseek-r1","messages":[{"role":"user","content":"Hello"}]}'
  curl -si http://127.0.0.1:8080/v1/chat/completions \
    -H 'Content-Type: application/json' \
    -d '{"model":"deepseek-chat","messages":[{"role":"user","content":"Hello"}]}'

  # a model no route serves: OpenAI's 404 model_not_found
  curl -si http://127.0.0.1:8080/v1/chat/completions \
    -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}'

  # a streaming completion: tokens arrive one by one, as they are generated
  curl -sN http://127.0.0.1:8080/v1/chat/completions \
    -H 'Content-Type: application/json' \
    -d '{"model":"deepseek-chat","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

  # Prometheus metrics and readiness on the admin listener (loopback only)
  curl -s http://127.0.0.1:9100/metrics | grep 'deepseek_gateway_requests_total.*code="200"'
  curl -si http://127.0.0.1:9100/readyz

Access-log lines (JSON) appear below. Press Ctrl-C to stop.

MSG
wait
