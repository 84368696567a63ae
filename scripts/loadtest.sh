#!/usr/bin/env bash
# Load test for `unmask serve`: a bounded wrk run on loopback against POST /embed with mixed-length
# inputs, once with dynamic batching on and once with it off (--no-batching). Prints requests/s,
# tokens/s (from the server's te_request_input_length_sum), p50/p99 latency, failures and the
# server's peak RSS (VmHWM).
#
#   scripts/loadtest.sh                      # smollm2 if installed, else a tiny fixture model
#   MODEL=path DURATION=20s CONNECTIONS=32 scripts/loadtest.sh
#
# Needs wrk (Debian: apt-get install wrk) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-25s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-18080}
MODES=${MODES:-"on off"}
if [[ -z "${MODEL:-}" ]]; then
  if ls "${HOME}/.cache/unmask/models/smollm2/"* >/dev/null 2>&1; then MODEL=smollm2; else MODEL=Tests/Fixtures/models/llama2-bf16; fi
fi
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }

swift build -c release --product unmask >&2
BIN=$(swift build -c release --show-bin-path)/unmask
URL="http://127.0.0.1:${PORT}"
SERVER_PID=""
cleanup() { [[ -n "$SERVER_PID" ]] && kill -TERM "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

metric() { curl -s "$URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

echo "machine: $(uname -m), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "model: $MODEL; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; inputs: mixed 4-350 words"
printf '| batching | requests/s | tokens/s | p50 ms | p99 ms | failures | peak RSS MiB |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for mode in $MODES; do
  flags=()
  [[ "$mode" == off ]] && flags+=(--no-batching)
  "$BIN" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" --log-level error "${flags[@]}" >/tmp/unmask-loadtest-server.log 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 240); do
    curl -sf "$URL/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat /tmp/unmask-loadtest-server.log >&2; exit 1; }
    sleep 0.5
  done
  # Warm-up, not measured.
  curl -sf -H 'Content-Type: application/json' "$URL/embed" -d '{"inputs":["warm up","the server"]}' >/dev/null
  tokens_before=$(metric te_request_input_length_sum)
  result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 60s -s scripts/loadtest.lua "$URL/embed" | grep '^RESULT')
  tokens_after=$(metric te_request_input_length_sum)
  failures_metric=$(curl -s "$URL/metrics" | awk '/^te_request_failure/ { s += $2 } END { print s + 0 }')
  rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$SERVER_PID/status")
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
  get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$result"; }
  requests=$(get requests); duration=$(get duration_s); errors=$(get errors)
  awk -v mode="$mode" -v r="$requests" -v d="$duration" -v t0="$tokens_before" -v t1="$tokens_after" \
      -v p50="$(get p50_ms)" -v p99="$(get p99_ms)" -v e="$errors" -v fm="$failures_metric" -v rss="$rss_kib" \
      'BEGIN { printf "| %s | %.1f | %.0f | %.1f | %.1f | %d (server: %d) | %.0f |\n", mode, r / d, (t1 - t0) / d, p50, p99, e, fm, rss / 1024 }'
done
