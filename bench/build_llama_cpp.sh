#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` and `llama-batched-bench` (and with BUILD_SERVER=1
# `llama-server`), CPU only, from the llama-cpp-python sdist,
# which vendors llama.cpp's source with its CMake build. Everything is cached under
# ${SKIFF_BENCH_CACHE:-~/.cache/skiff-bench}: the venv holding cmake (from PyPI), the sdist, the build tree.
#
#   bench/build_llama_cpp.sh            # prints the directory holding the two binaries on its last line
#
# Environment:
#   LLAMA_CPP_PYTHON_VERSION   sdist version (default 0.3.36)
#   LLAMA_CPP_SRC              use this unpacked llama.cpp source tree instead of downloading the sdist
#   BUILD_JOBS                 parallel compile jobs (default 2)
#   PYTHON                     python used to create the venv (default python3)
#   BUILD_SERVER               1: also build `llama-server` (for bench/serve_side_by_side.sh)
#   LLAMA_BUILD_DIR            build tree (default $CACHE/llama.cpp-$VERSION-build)
#   LLAMA_CMAKE_ARGS           extra CMake arguments, after the defaults, e.g. to build on one machine for
#                              another: "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
#                              -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON"
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE="${SKIFF_BENCH_CACHE:-$HOME/.cache/skiff-bench}"
JOBS="${BUILD_JOBS:-2}"
PY="${PYTHON:-python3}"
VENV="$CACHE/venv"
BUILD="${LLAMA_BUILD_DIR:-$CACHE/llama.cpp-$VERSION-build}"
mkdir -p "$CACHE"

log() { echo "[build_llama_cpp] $*" >&2; }

if [ ! -x "$VENV/bin/cmake" ]; then
  log "creating $VENV with cmake from PyPI"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet cmake
fi

SERVER="${BUILD_SERVER:-0}"
if [ ! -x "$BUILD/bin/llama-bench" ] || [ ! -x "$BUILD/bin/llama-batched-bench" ] \
  || { [ "$SERVER" = 1 ] && [ ! -x "$BUILD/bin/llama-server" ]; }; then
  if [ -n "${LLAMA_CPP_SRC:-}" ]; then
    SRC="$LLAMA_CPP_SRC"
  else
    SRC="$CACHE/llama_cpp_python-$VERSION/vendor/llama.cpp"
    if [ ! -f "$SRC/CMakeLists.txt" ]; then
      log "downloading the llama-cpp-python $VERSION sdist"
      "$VENV/bin/pip" download --quiet --no-deps --no-binary llama-cpp-python -d "$CACHE/sdist" "llama-cpp-python==$VERSION"
      tar -xzf "$CACHE/sdist/llama_cpp_python-$VERSION.tar.gz" -C "$CACHE"
    fi
  fi
  [ -f "$SRC/CMakeLists.txt" ] || { log "no llama.cpp CMakeLists.txt under $SRC"; exit 1; }
  SERVER_FLAG=OFF TARGETS="llama-bench llama-batched-bench"
  if [ "$SERVER" = 1 ]; then SERVER_FLAG=ON TARGETS="$TARGETS llama-server"; fi
  log "configuring $SRC -> $BUILD (CPU only, GGML_NATIVE=ON ${LLAMA_CMAKE_ARGS:-})"
  "$VENV/bin/cmake" -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER="$SERVER_FLAG" \
    -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DBUILD_SHARED_LIBS=OFF ${LLAMA_CMAKE_ARGS:-} >&2
  log "building $TARGETS with -j$JOBS"
  nice -n 10 "$VENV/bin/cmake" --build "$BUILD" --config Release -j "$JOBS" \
    --target $TARGETS >&2
fi
echo "$BUILD/bin"
