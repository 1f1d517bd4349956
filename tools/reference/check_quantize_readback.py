#!/usr/bin/env python3
"""Checks a `skiff quantize` output with the reference `gguf` Python package.

    /root/sk/venv-ref/bin/python tools/reference/check_quantize_readback.py IN.gguf OUT.gguf

Reads both files with `gguf.GGUFReader` (so OUT must be a GGUF that the reference reader
accepts) and checks that:
- OUT has the same tensors as IN, in the same order, with the same shapes;
- every metadata key of IN is in OUT with the same value, except `general.file_type` and
  `general.quantization_version`, which OUT sets (the latter to 2);
- tensors whose type did not change are byte-identical;
- every converted tensor, dequantized by `gguf.quants`, is close to IN's dequantized values:
  relative RMS error (RMS of the difference / RMS of IN's values) below a per-type ceiling
  that is about twice what those formats give on model weights.
Prints one line per tensor and a summary; exits 1 on any failure.
"""

import sys

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType as T
from gguf.quants import dequantize

MAX_REL_RMSE = {
    T.F32: 0.0, T.F16: 1e-3, T.BF16: 8e-3, T.Q8_0: 0.01, T.Q6_K: 0.03, T.Q5_0: 0.06, T.Q5_1: 0.06,
    T.Q5_K: 0.06, T.Q4_0: 0.15, T.Q4_1: 0.15, T.Q4_K: 0.15, T.Q3_K: 0.3, T.Q2_K: 0.5,
}
SET_BY_QUANTIZE = {"general.file_type", "general.quantization_version"}


def field_value(field):
    """A metadata field's value as plain Python (arrays as lists)."""
    parts = [field.parts[i] for i in field.data]
    values = []
    for p in parts:
        values.append(bytes(p).decode("utf-8") if p.dtype == np.uint8 else p.tolist())
    return values


def check_metadata(inp, out, failures):
    fields_out = out.fields
    for key, field in inp.fields.items():
        if key.startswith("GGUF.") or key in SET_BY_QUANTIZE:
            continue
        if key not in fields_out:
            failures.append(f"metadata {key} missing")
        elif field_value(field) != field_value(fields_out[key]):
            failures.append(f"metadata {key} differs")
    qv = fields_out.get("general.quantization_version")
    if qv is None or field_value(qv) not in ([[2]], [2]):
        failures.append("general.quantization_version is not 2")
    if "general.file_type" not in fields_out:
        failures.append("general.file_type missing")


def check_tensor(a, b, failures):
    if a.name != b.name or list(a.shape) != list(b.shape):
        failures.append(f"{a.name} {list(a.shape)} vs {b.name} {list(b.shape)}: order or shape differs")
        return None
    if a.tensor_type == b.tensor_type:
        if not np.array_equal(np.asarray(a.data).view(np.uint8), np.asarray(b.data).view(np.uint8)):
            failures.append(f"{a.name}: same type {a.tensor_type.name} but different bytes")
        return 0.0
    x = dequantize(a.data, a.tensor_type).astype(np.float64).reshape(-1)
    y = dequantize(b.data, b.tensor_type).astype(np.float64).reshape(-1)
    rms = np.sqrt(np.mean(x * x))
    rel = float(np.sqrt(np.mean((y - x) ** 2)) / rms) if rms > 0 else float(np.max(np.abs(y)))
    limit = MAX_REL_RMSE.get(b.tensor_type)
    if limit is None:
        failures.append(f"{b.name}: unexpected output type {b.tensor_type.name}")
    elif not rel <= limit:
        failures.append(f"{b.name}: relative RMS error {rel:.4f} above {limit} for {b.tensor_type.name}")
    return rel


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    inp, out = GGUFReader(sys.argv[1]), GGUFReader(sys.argv[2])
    failures = []
    check_metadata(inp, out, failures)
    if len(inp.tensors) != len(out.tensors):
        failures.append(f"{len(inp.tensors)} tensors in, {len(out.tensors)} out")
    counts = {}
    for a, b in zip(inp.tensors, out.tensors):
        rel = check_tensor(a, b, failures)
        counts[b.tensor_type.name] = counts.get(b.tensor_type.name, 0) + 1
        if rel is not None:
            print(f"{b.name:40s} {a.tensor_type.name:>5} -> {b.tensor_type.name:<5} rel RMS err {rel:.5f}")
    print("output types:", ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
    for f in failures:
        print("FAIL:", f)
    print("OK" if not failures else f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
