#!/usr/bin/env bash
# Starts a real `skiff serve` on loopback over MODEL_FILE, then:
#   1. runs the openai-client conformance suite (test_openai_client.py) with PYTHON;
#   2. runs `skiff loadgen` with 32 concurrent streams for LOAD_SECONDS and requires zero
#      errors;
#   3. checks the server's RSS after the load is back within 10% (+16 MiB) of its RSS after
#      a warm-up round, and that /metrics shows no KV block held;
#   4. sends SIGTERM and requires exit status 0.
#
# PROMPTS is a loadgen prompt set (default: loadgen's built-in customer-service set).
#
#   tools/conformance/run.sh SKIFF_BIN MODEL_FILE PYTHON [LOAD_SECONDS] [PROMPTS]
set -euo pipefail
skiff=$1 model=$2 python=$3 load_seconds=${4:-20}
prompts=()
[ -n "${5:-}" ] && prompts=(--prompts "$5")
here=$(cd "$(dirname "$0")" && pwd)
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port/v1"
log=$(mktemp)
# GET a URL (no curl needed): prints the body, fails on an HTTP error.
get() { "$python" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"; }

"$skiff" serve "$model" --port "$port" --max-running 32 --ctx 1024 >"$log" 2>&1 &
pid=$!
cleanup() { kill -9 "$pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT

for _ in $(seq 1 300); do
  if get "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$log"; echo "conformance: server died" >&2; exit 1; fi
  sleep 0.1
done
get "http://127.0.0.1:$port/health" >/dev/null 2>&1 || { cat "$log"; echo "conformance: server not ready" >&2; exit 1; }
model_id=$(get "$base/models" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')

echo "-- openai client conformance ($model_id)"
SKIFF_BASE_URL=$base SKIFF_MODEL=$model_id "$python" "$here/test_openai_client.py"

rss() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$pid/status"; }
blocks_used() { get "http://127.0.0.1:$port/metrics" | awk '/^skiff_kv_blocks_used/ {print $2}'; }

echo "-- warm-up, then 32 concurrent streams for ${load_seconds}s"
"$skiff" loadgen --url "$base" -c 32 --requests 32 --max-tokens 16 "${prompts[@]}" --json >/dev/null
baseline=$(rss)
out=$("$skiff" loadgen --url "$base" -c 32 --duration "${load_seconds}s" --max-tokens 32 "${prompts[@]}" --json)
echo "$out"
"$python" - "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["errors"] == 0, f"loadgen saw {r['errors']} errors: {r['error_kinds']}"
assert r["requests"] > 0 and r["output_tokens"] > 0, r
PY
sleep 0.5
after=$(rss)
used=$(blocks_used)
echo "server RSS after warm-up: $baseline bytes; after load: $after bytes; KV blocks used: $used"
[ "$used" = "0" ] || { echo "conformance: KV blocks still held after the load" >&2; exit 1; }
limit=$((baseline + baseline / 10 + (16 << 20)))
[ "$after" -le "$limit" ] || { echo "conformance: RSS grew beyond $limit bytes" >&2; exit 1; }

echo "-- SIGTERM"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
trap - EXIT
rm -f "$log"
[ "$status" = "0" ] || { echo "conformance: skiff serve exited with $status after SIGTERM" >&2; exit 1; }
echo "conformance: all checks passed"
