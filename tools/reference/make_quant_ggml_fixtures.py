#!/usr/bin/env python3
"""Writes fixtures of ggml's C reference quantizers for the types `gguf` cannot quantize.

`gguf.quants` has no quantizer for the K-quants, Q8_1 or Q8_K, so skiff's ports of
`quantize_row_{q2,q3,q4,q5,q6,q8}_K_ref` and `quantize_row_q8_1_ref` are checked against the
C originals instead: this script compiles llama.cpp's `ggml/src/ggml-quants.c` with the small
driver `quant_ggml_harness.c`, runs it on deterministic inputs, and writes

    testdata/quant/ggml_in.f32            the f32 input (16 super-blocks of 256 values)
    testdata/quant/ggml_<type>.bin        ggml's output for each type
    testdata/quant/ggml_index.json        the list, with the llama.cpp commit used

Run from the repository root, with a llama.cpp source tree (any checkout; the
llama-cpp-python sdist's `vendor/llama.cpp` works too) and a C compiler:

    /root/sk/venv-ref/bin/python tools/reference/make_quant_ggml_fixtures.py /path/to/llama.cpp [LABEL]

LABEL (default: the checkout's git commit) records which llama.cpp produced the fixtures.

The C is built with `-ffp-contract=off` (no fused multiply-add), the arithmetic skiff's
port reproduces; a `-march=native` build of llama.cpp may contract `a*b+c` and differ in
rare last-bit ties.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

OUT = pathlib.Path("testdata/quant")
HARNESS = pathlib.Path("tools/reference/quant_ggml_harness.c")
# type name -> (block bytes, block length), ggml-common.h
TYPES = {
    "q8_1": (36, 32), "q2_k": (84, 256), "q3_k": (110, 256), "q4_k": (144, 256),
    "q5_k": (176, 256), "q6_k": (210, 256), "q8_k": (292, 256),
    # Also covered by the gguf fixtures; checked against C too as a cross-check.
    "q4_0": (18, 32), "q4_1": (20, 32), "q5_0": (22, 32), "q5_1": (24, 32), "q8_0": (34, 32),
}


def inputs():
    rng = np.random.default_rng(20260602)
    blocks = []
    for scale in [1e-4, 1e-2, 0.05, 1.0, 30.0, 1e3]:
        blocks.append(rng.normal(0.0, scale, 256))
    blocks.append(rng.uniform(-1.0, 1.0, 256))
    blocks.append(rng.laplace(0.0, 0.1, 256))
    blocks.append(rng.standard_t(2.0, 256) * 0.02)
    blocks.append(np.zeros(256))
    blocks.append(np.full(256, 0.375))
    blocks.append(np.full(256, -1.25))
    spike = rng.normal(0.0, 0.01, 256)
    spike[77] = 4.0
    blocks.append(spike)
    blocks.append(np.abs(rng.normal(0.0, 1.0, 256)))
    blocks.append(-np.abs(rng.normal(0.0, 1.0, 256)))
    half_zero = rng.normal(0.0, 1.0, 256)
    half_zero[:128] = 0.0
    blocks.append(half_zero)
    return np.concatenate(blocks).astype(np.float32)


def git_commit(root):
    """HEAD of `root` if it is itself a git checkout (not merely inside one)."""
    top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"],
                         capture_output=True, text=True).stdout.split()
    if len(top) == 2 and pathlib.Path(top[0]).resolve() == root.resolve():
        return top[1]
    return "unknown (not a git checkout; pass a label as the second argument)"


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    ggml = pathlib.Path(sys.argv[1]) / "ggml"
    OUT.mkdir(parents=True, exist_ok=True)
    x = inputs()
    (OUT / "ggml_in.f32").write_bytes(x.tobytes())
    with tempfile.TemporaryDirectory() as tmp:
        exe = pathlib.Path(tmp) / "harness"
        obj = pathlib.Path(tmp) / "quants.o"
        flags = ["-O2", "-ffp-contract=off", "-DNDEBUG", f"-I{ggml}/include", f"-I{ggml}/src",
                 f"-I{ggml}/src/ggml-cpu"]
        subprocess.run(["cc", *flags, "-c", str(ggml / "src/ggml-quants.c"), "-o", str(obj)], check=True)
        # Only the row quantizers are called; the harness stubs the rest of ggml.
        subprocess.run(["cc", "-O2", str(HARNESS), str(obj), "-o", str(exe), "-lm"], check=True)
        entries = []
        for name, (block_bytes, block_len) in TYPES.items():
            out = OUT / f"ggml_{name}.bin"
            subprocess.run([str(exe), name, str(OUT / "ggml_in.f32"), str(out), str(block_bytes),
                            str(block_len)], check=True)
            entries.append({"dtype": name, "input": "ggml_in.f32", "expected": out.name})
    commit = sys.argv[2] if len(sys.argv) == 3 else git_commit(ggml.parent)
    index = {"generator": "tools/reference/make_quant_ggml_fixtures.py", "llama_cpp": commit,
             "n_values": int(x.size), "quantize": entries}
    (OUT / "ggml_index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
