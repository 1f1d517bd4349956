#!/usr/bin/env bash
# Serving throughput of `skiff serve` and llama.cpp's `llama-server` on the same GGUF file,
# same threads, same number of parallel slots, under the same load: `skiff loadgen` drives
# each server in turn with N concurrent streaming chat clients (the customer-service prompt
# set, greedy, --ignore-eos so every answer is --max-tokens long), then this prints output
# tokens/s and TTFT p50/p99 of both and their ratios.
#
#   bench/serve_side_by_side.sh MODEL.gguf [CONCURRENCY] [DURATION] [THREADS] [MAX_TOKENS]
#   bench/serve_side_by_side.sh ~/models/SmolLM2-135M-Instruct.Q4_1.gguf 32 60s 2 64
#
# llama-server comes from LLAMA_BIN_DIR (default: the build of bench/build_llama_cpp.sh, which
# builds it when BUILD_SERVER=1); skiff from target/release/skiff. The servers listen on
# 127.0.0.1:8091 (llama.cpp) and :8092 (skiff) and are stopped afterwards. ROUNDS=2 runs
# llama.cpp, skiff, llama.cpp, skiff and reports the mean of each. KEEP=DIR keeps the loadgen
# JSON and both server logs in DIR.
set -euo pipefail

MODEL="${1:?usage: serve_side_by_side.sh MODEL.gguf [CONCURRENCY] [DURATION] [THREADS] [MAX_TOKENS]}"
CONC="${2:-32}"
DURATION="${3:-60s}"
THREADS="${4:-2}"
MAX_TOKENS="${5:-64}"
ROUNDS="${ROUNDS:-1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SKIFF="${SKIFF:-$ROOT/target/release/skiff}"
LLAMA_BIN_DIR="${LLAMA_BIN_DIR:-$(BUILD_SERVER=1 "$ROOT/bench/build_llama_cpp.sh" | tail -1)}"
CTX_PER_SLOT="${CTX_PER_SLOT:-1024}"
OUT="$(mktemp -d)"
trap 'kill "${PID:-}" 2>/dev/null || true; if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$OUT"/* "$KEEP"/; fi; rm -rf "$OUT"' EXIT

log() { echo "[serve_side_by_side] $*" >&2; }

wait_ready() { # URL
  for _ in $(seq 1 600); do
    if curl -sf "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "server at $1 did not become ready"; return 1
}

run_llama() { # round
  log "llama-server: -np $CONC -t $THREADS -c $((CONC * CTX_PER_SLOT))"
  "$LLAMA_BIN_DIR/llama-server" -m "$MODEL" --host 127.0.0.1 --port 8091 -np "$CONC" \
    -c "$((CONC * CTX_PER_SLOT))" -t "$THREADS" -tb "$THREADS" -cb >"$OUT/llama-server.log" 2>&1 &
  PID=$!
  wait_ready http://127.0.0.1:8091/health
  "$SKIFF" loadgen --url http://127.0.0.1:8091/v1 -c "$CONC" --duration "$DURATION" \
    --max-tokens "$MAX_TOKENS" --ignore-eos --json >"$OUT/llama-$1.json"
  kill "$PID"; wait "$PID" 2>/dev/null || true
}

run_skiff() { # round
  log "skiff serve: --max-running $CONC --threads $THREADS"
  "$SKIFF" serve "$MODEL" --host 127.0.0.1 --port 8092 --max-running "$CONC" \
    --threads "$THREADS" >"$OUT/skiff-serve.log" 2>&1 &
  PID=$!
  wait_ready http://127.0.0.1:8092/health
  # /health answers while the model loads; wait until it reports ready.
  for _ in $(seq 1 600); do
    curl -s http://127.0.0.1:8092/health | grep -q '"ready"' && break
    sleep 0.5
  done
  "$SKIFF" loadgen --url http://127.0.0.1:8092/v1 -c "$CONC" --duration "$DURATION" \
    --max-tokens "$MAX_TOKENS" --ignore-eos --json >"$OUT/skiff-$1.json"
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
}

for r in $(seq 1 "$ROUNDS"); do
  run_llama "$r"
  run_skiff "$r"
done

python3 - "$OUT" "$ROUNDS" "$MODEL" "$CONC" "$THREADS" "$MAX_TOKENS" "$DURATION" <<'EOF'
import json, sys, statistics
out, rounds, model, conc, threads, max_tokens, duration = sys.argv[1:]
def load(tool):
    return [json.load(open(f"{out}/{tool}-{r}.json")) for r in range(1, int(rounds) + 1)]
def mean(rows, *path):
    vals = []
    for row in rows:
        v = row
        for p in path:
            v = v[p]
        vals.append(float(v))
    return statistics.mean(vals)
llama, skiff = load("llama"), load("skiff")
print(f"model {model}, {conc} streams, {threads} threads, max_tokens {max_tokens}, {duration} x {rounds} round(s)")
print(f"{'':24}{'llama-server':>14}{'skiff serve':>14}{'ratio':>9}")
for label, path, better in [
    ("output tokens/s", ("output_tokens_per_s",), "higher"),
    ("requests/s", ("requests_per_s",), "higher"),
    ("TTFT p50 ms", ("ttft_p50_ms",), "lower"),
    ("TTFT p99 ms", ("ttft_p99_ms",), "lower"),
    ("ITL p50 ms", ("itl_p50_ms",), "lower"),
    ("ITL p99 ms", ("itl_p99_ms",), "lower"),
    ("errors", ("errors",), "lower"),
]:
    a, b = mean(llama, *path), mean(skiff, *path)
    ratio = f"{b / a:.2f}x" if a else "-"
    print(f"{label:24}{a:>14.1f}{b:>14.1f}{ratio:>9}  ({better} is better)")
for tool, rows in [("llama-server", llama), ("skiff serve", skiff)]:
    for i, row in enumerate(rows, 1):
        for kind, count in row.get("error_kinds", []):
            print(f"errors of {tool} (round {i}): {count} x {kind}")
EOF
