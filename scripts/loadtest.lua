-- wrk script for scripts/loadtest.sh: POST /embed with mixed-length inputs.
-- Lengths (words): 45% short (4-12), 30% medium (20-60), 20% long (80-160), 5% very long (250-350).
local words = {"the", "embedding", "server", "batches", "requests", "from", "many", "clients", "into",
  "one", "forward", "pass", "decoder", "models", "become", "text", "encoders", "with", "bidirectional",
  "attention", "and", "mean", "pooling", "over", "tokens", "quick", "brown", "fox", "jumps", "lazy", "dog",
  "retrieval", "search", "query", "passage", "vector", "similarity", "cosine", "latency", "throughput"}

local bodies = {}

local function sentence(n)
  local out = {}
  for i = 1, n do out[i] = words[math.random(#words)] end
  return table.concat(out, " ")
end

local function length()
  local r = math.random()
  if r < 0.45 then return math.random(4, 12)
  elseif r < 0.75 then return math.random(20, 60)
  elseif r < 0.95 then return math.random(80, 160)
  else return math.random(250, 350) end
end

function init(args)
  math.randomseed(tonumber(args[1] or "1") + (id or 0))
  for i = 1, 512 do bodies[i] = '{"inputs":"' .. sentence(length()) .. '"}' end
end

local counter = 0
function request()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[(counter % #bodies) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format("RESULT requests=%d duration_s=%.3f p50_ms=%.1f p99_ms=%.1f errors=%d status_errors=%d timeouts=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors, e.status, e.timeout))
end
