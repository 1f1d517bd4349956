#!/usr/bin/env python3
"""Per-tensor digests of the real test models, dequantized by the `gguf` Python package.

A full f32 reference of a model is hundreds of MB, so instead each tensor gets a digest:
the SHA-256 of its f32 values' little-endian bit patterns (compared exactly by skiff's
`crates/cli/tests/real_model_dequant.rs`), plus sum and sum of squares in f64 (shown on a
mismatch to tell a near miss from garbage).

Run from the repository root:

    /root/sk/venv-ref/bin/python tools/reference/make_quant_digest.py /root/sk/models

writes testdata/quant/smollm2_dequant_digest.json (SmolLM2-135M-Instruct.Q4_1.gguf) and
testdata/quant/gemma3_dequant_digest.json (gemma-3-270m-q4_k_m.gguf).
"""

import hashlib
import json
import pathlib
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

MODELS = {
    "smollm2_dequant_digest.json": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3_dequant_digest.json": "gemma-3-270m-q4_k_m.gguf",
}


def digest(path):
    reader = GGUFReader(path)
    tensors = []
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        values = np.ascontiguousarray(values).reshape(-1)
        tensors.append({
            "name": t.name,
            "dtype": t.tensor_type.name.lower(),
            "n_values": int(values.size),
            "sha256_f32": hashlib.sha256(values.tobytes()).hexdigest(),
            "sum": float(np.sum(values, dtype=np.float64)),
            "sum_sq": float(np.sum(np.square(values, dtype=np.float64))),
        })
    return {"generator": "tools/reference/make_quant_digest.py", "model": path.name, "tensors": tensors}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    models = pathlib.Path(sys.argv[1])
    for out, name in MODELS.items():
        result = digest(models / name)
        pathlib.Path("testdata/quant", out).write_text(json.dumps(result, indent=0) + "\n")
        print(f"{out}: {len(result['tensors'])} tensors")


if __name__ == "__main__":
    main()
