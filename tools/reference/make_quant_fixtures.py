#!/usr/bin/env python3
"""Writes the quantization fixtures under testdata/quant/ from the `gguf` Python package.

Run from the repository root:

    /root/sk/venv-ref/bin/python tools/reference/make_quant_fixtures.py

(any Python with `gguf` 0.19 and numpy 2.x works). Deterministic: a fixed seed, so rerunning
rewrites identical files.

Output, all little-endian raw arrays plus one JSON index (`testdata/quant/index.json`):
- `deq_<type>.bin` / `deq_<type>.f32`: random blocks of `<type>` (random bytes, with every f16
  scale field overwritten by a finite value of sane magnitude so outputs are comparable) and
  `gguf.quants.dequantize` of them. Checked bit-exactly by skiff-tensor.
- `q_<type>.in.f32` / `q_<type>.bin`: random f32 inputs (Gaussian blocks of many magnitudes,
  zeros, constants, outliers, exact ties) and `gguf.quants.quantize` of them, for the types
  gguf can quantize. Checked byte-exactly.
- `f16_all.f32`-style exhaustive data would be 256 KiB, so instead `index.json` records the
  SHA-256 of the f32 bit patterns of all 65536 f16 values as numpy widens them.
"""

import hashlib
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

OUT = pathlib.Path("testdata/quant")
RNG = np.random.default_rng(20260601)

# Byte offsets of f16 scale fields inside one block (ggml-common.h), and of Q8_K's f32 `d`.
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.Q8_1: [0, 2],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
DEQUANT_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
                 T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
QUANT_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]


def sane_f16(n):
    """Finite f16 scales: signed, magnitudes 1e-6 (subnormal) .. 10."""
    mag = 10.0 ** RNG.uniform(-6, 1, n)
    sign = RNG.choice([-1.0, 1.0], n)
    return (mag * sign).astype(np.float16)


def special_f16():
    """Zeros, infinities, NaNs (quiet and signalling, with payloads), subnormals, extremes."""
    bits = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE01, 0x7D55, 0x0001, 0x03FF,
            0x8001, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0x3555]
    return np.array(bits, dtype=np.uint16)


def dequant_input(qtype):
    block_len, block_bytes = GGML_QUANT_SIZES[qtype]
    n_values = 2048
    n_blocks = n_values // block_len
    if qtype == T.F32:
        raw = RNG.integers(0, 2**32, n_values, dtype=np.uint64).astype(np.uint32)
        return raw.view(np.uint8)
    if qtype in (T.F16, T.BF16):
        raw = RNG.integers(0, 2**16, n_values, dtype=np.uint32).astype(np.uint16)
        if qtype == T.F16:
            raw[:16] = special_f16()
        return raw.view(np.uint8)
    blocks = RNG.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint16).astype(np.uint8)
    for off in F16_FIELDS[qtype]:
        blocks[:, off:off + 2] = sane_f16(n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(-1)


def quant_input():
    """64 blocks of 32 f32 values covering the interesting cases."""
    blocks = []
    for scale in [1e-6, 1e-4, 1e-3, 0.02, 0.1, 1.0, 3.0, 100.0, 1e4]:
        for _ in range(4):
            blocks.append(RNG.normal(0.0, scale, 32))
    blocks.append(np.zeros(32))
    blocks.append(np.full(32, 0.75))
    blocks.append(np.full(32, -2.5))
    blocks.append(np.concatenate([[50.0], RNG.normal(0.0, 0.01, 31)]))
    blocks.append(np.concatenate([RNG.normal(0.0, 0.01, 31), [-50.0]]))
    # Exact ties: multiples of max/16 and max/254 land on x*id + 0.5 boundaries.
    blocks.append(np.arange(-16, 16) / 16.0 * 8.0)
    blocks.append(np.arange(-16, 16) * (127.0 / 254.0) / 31.0)
    blocks.append(np.linspace(-1.0, 1.0, 32))
    blocks.append(np.linspace(3.0, 4.0, 32))
    blocks.append(RNG.uniform(-1, 1, 32) ** 7)
    while len(blocks) < 64:
        blocks.append(RNG.standard_t(2.0, 32))
    return np.concatenate(blocks).astype(np.float32)


def quant_input_float(qtype):
    x = quant_input()
    specials = np.array([np.inf, -np.inf, np.nan, -0.0, 65504.0, 65520.0, 1e6, 6e-8, 3e-8,
                         1e-40, 3.0e38, -1e-45], dtype=np.float32)
    x[:len(specials)] = specials
    if qtype == T.BF16:
        bits = np.array([0x7F800001, 0x7FC00001, 0xFFA00000, 0x3F808000, 0x3F818000], np.uint32)
        x[len(specials):len(specials) + len(bits)] = bits.view(np.float32)
    return x


def write(name, array):
    path = OUT / name
    path.write_bytes(np.ascontiguousarray(array).tobytes())
    return name


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    index = {"generator": "tools/reference/make_quant_fixtures.py", "dequantize": [], "quantize": []}
    for qtype in DEQUANT_TYPES:
        name = qtype.name.lower()
        src = dequant_input(qtype)
        out = quants.dequantize(src, qtype).astype(np.float32, copy=False)
        index["dequantize"].append({
            "dtype": name, "n_values": int(out.size),
            "input": write(f"deq_{name}.bin", src), "expected": write(f"deq_{name}.f32", out),
        })
    for qtype in QUANT_TYPES:
        name = qtype.name.lower()
        x = quant_input_float(qtype) if qtype in (T.F32, T.F16, T.BF16) else quant_input()
        if qtype == T.BF16:
            out = quants.quantize(x.reshape(-1, 32), qtype).reshape(-1)
        else:
            out = quants.quantize(x, qtype)
        index["quantize"].append({
            "dtype": name, "n_values": int(x.size),
            "input": write(f"q_{name}.in.f32", x), "expected": write(f"q_{name}.bin", out.view(np.uint8)),
        })
    all_f16 = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    widened = quants.dequantize(all_f16.view(np.uint8), T.F16).astype(np.float32, copy=False)
    index["f16_all_sha256"] = hashlib.sha256(widened.tobytes()).hexdigest()
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
