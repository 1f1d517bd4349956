#!/usr/bin/env bash
# Runs the kernel crate's tests (skiff-backend-cpu) for aarch64 under user-mode QEMU on an
# x86_64 machine, twice: on an emulated CPU with the dot-product instructions (every kernel
# table: scalar, NEON, NEON with sdot) and on a Cortex-A72 without them (scalar and NEON).
#
#   tools/test-aarch64.sh [--models]    # --models: the skiff-models tests too (real models)
#
# Needs the Rust target (rustup), a cross linker and qemu-aarch64; it installs what is missing
# when it can (rustup, and apt-get as root), and otherwise says what is missing and exits 0
# without testing, so a machine that cannot emulate ARM is not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
skip() {
  echo "aarch64 tests skipped: $*"
  exit 0
}

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  timeout 120 rustup target add "$target" >/dev/null 2>&1 || skip "the Rust target $target cannot be installed"
fi
# The cross compiler, its C library (Debian's gcc-aarch64-linux-gnu only recommends it) and
# the emulator.
have_tools() {
  command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null &&
    [ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ]
}
if ! have_tools && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  install="apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
  timeout 300 $install >/dev/null 2>&1 ||
    { timeout 120 apt-get update -qq >/dev/null 2>&1 && timeout 300 $install >/dev/null 2>&1; } ||
    true
fi
have_tools || skip "needs aarch64-linux-gnu-gcc, its libc (/usr/aarch64-linux-gnu) and qemu-aarch64" \
  "(Debian: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
packages=(-p skiff-backend-cpu)
if [ "${1:-}" = --models ]; then
  SKIFF_TEST_MODEL_DIR=$(tools/fetch-test-models.sh | tail -n1)
  export SKIFF_TEST_MODEL_DIR
  packages+=(-p skiff-models)
fi
# Each emulated CPU with the best table it must get (a test checks detection picks it, so a
# QEMU whose `max` CPU lacked the dot-product instructions fails here rather than leaving the
# sdot kernels untested).
for run in max:neondot cortex-a72:neon; do
  cpu=${run%%:*}
  echo "-- aarch64 (qemu -cpu $cpu; best kernels: ${run#*:})"
  SKIFF_TEST_EXPECT_ISA=${run#*:} \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu $cpu -L /usr/aarch64-linux-gnu" \
    cargo test --release --target "$target" "${packages[@]}"
done
