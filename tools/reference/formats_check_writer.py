#!/usr/bin/env python3
"""Checks that a GGUF written by skiff's GgufWriter reads back identically with the
reference `gguf` package: same metadata (types and values) and same tensors (name, shape,
type, bytes) as the file it was rewritten from.

Run from the repository root:

    cargo run -p skiff-formats --example gguf_rewrite -- IN.gguf /tmp/out.gguf
    /root/sk/venv-ref/bin/python tools/reference/formats_check_writer.py IN.gguf /tmp/out.gguf
"""
import sys

import numpy as np
import gguf


def view(path):
    r = gguf.GGUFReader(path)
    meta = {}
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            continue
        meta[key] = ([int(t) for t in f.types], [bytes(f.parts[i]) for i in f.data])
    tensors = [(t.name, [int(d) for d in t.shape], t.tensor_type.name, np.asarray(t.data).tobytes()) for t in r.tensors]
    return meta, tensors


def main():
    src, out = sys.argv[1], sys.argv[2]
    (m1, t1), (m2, t2) = view(src), view(out)
    assert list(m1) == list(m2), "metadata keys or their order differ"
    for key in m1:
        assert m1[key] == m2[key], f"metadata {key} differs"
    assert len(t1) == len(t2), "tensor counts differ"
    for a, b in zip(t1, t2):
        assert a == b, f"tensor {a[0]} differs"
    print(f"ok: {len(m1)} metadata keys, {len(t1)} tensors identical")


if __name__ == "__main__":
    main()
