-- wrk script for bench/run.sh: a non-streaming chat completion POST.
--
-- Environment (read by every wrk thread):
--   BENCH_BODY_BYTES  0 (default): a small JSON request (115 bytes);
--                     N > 0: a valid JSON request of exactly N bytes whose
--                     user message is padded (a long prompt).
--   BENCH_MODEL_LAST  1: with BENCH_BODY_BYTES, "model" is the body's last
--                     member (a router must read the whole body either way;
--                     a scanner that stops early would not).
--   BENCH_CLOSE       1: send "Connection: close", so every request opens a
--                     new connection (and, over https, a new TLS handshake; wrk
--                     offers the ticket of its previous connection).
--
-- At the end it prints one machine-readable line that bench/run.sh parses:
--   WRK requests=N duration_us=N p50_us=N p99_us=N errors_connect=N ...

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"

local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "0") or 0
if size > 0 then
  local head = '{"model":"deepseek-mock","max_tokens":16,"messages":[{"role":"user","content":"'
  local tail = '"}]}'
  if os.getenv("BENCH_MODEL_LAST") == "1" then
    head = '{"max_tokens":16,"messages":[{"role":"user","content":"'
    tail = '"}],"model":"deepseek-mock"}'
  end
  local pad = size - #head - #tail
  if pad < 0 then pad = 0 end
  wrk.body = head .. string.rep("a", pad) .. tail
else
  wrk.body = '{"model":"deepseek-mock","max_tokens":16,'
    .. '"messages":[{"role":"user","content":"Say hello in one short sentence."}]}'
end

if os.getenv("BENCH_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d p50_us=%d p99_us=%d errors_connect=%d errors_read=%d "
      .. "errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
