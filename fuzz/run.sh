#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS seconds each (default 60) on a copy of the
# committed corpus, and exits non-zero if any target finds a crash, a timeout (> 1 s per
# input) or an out-of-memory (> 256 MiB). Crash inputs are left in fuzz/artifacts/<target>/;
# minimize each into a regression test.
#
#   fuzz/run.sh 60
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the sanitizer flags
# are unlocked with RUSTC_BOOTSTRAP=1.
set -euo pipefail
seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
export RUSTC_BOOTSTRAP=1
targets=(gguf safetensors)
status=0
for target in "${targets[@]}"; do
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    echo "== fuzz $target for ${seconds}s"
    if ! cargo fuzz run --fuzz-dir fuzz "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=1 -rss_limit_mb=256 -malloc_limit_mb=256 -max_len=65536 \
        -print_final_stats=1; then
        echo "!! fuzz target $target failed; see fuzz/artifacts/$target/" >&2
        status=1
    fi
    rm -rf "$work"
done
exit "$status"
