#!/usr/bin/env python3
"""Generates the skiff-formats fixtures under testdata/formats/ with the reference `gguf`
Python package (gguf-py, the llama.cpp project's reader/writer).

Run from the repository root:

    /root/sk/venv-ref/bin/python tools/reference/formats_fixtures.py [MODEL_DIR]

Writes:
  testdata/formats/tiny.gguf          a tiny llama model written by gguf.GGUFWriter, with one
                                      metadata key of every GGUF value type (nested arrays too)
  testdata/formats/tiny.json          gguf.GGUFReader's view of tiny.gguf
  testdata/formats/smollm2.json       GGUFReader's view of SmolLM2-135M-Instruct.Q4_1.gguf
  testdata/formats/gemma3.json        GGUFReader's view of gemma-3-270m-q4_k_m.gguf
The last two need MODEL_DIR (default: $SKIFF_TEST_MODEL_DIR) holding the real models; they
are skipped with a message when it is not given.
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as T

OUT = "testdata/formats"


def write_tiny(path):
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(path, "llama")
    d_model, n_vocab, ffn = 64, 8, 96
    w.add_name("tiny test model")
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_embedding_length(d_model)
    w.add_feed_forward_length(ffn)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("llama")
    tokens = ["<unk>", "<s>", "</s>", "<0x41>", "▁a", "▁b", "ab", "▁ab"]
    w.add_token_list(tokens)
    w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0])
    w.add_token_types([2, 3, 3, 6, 1, 1, 1, 1])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    # One key per value type, plus nested arrays.
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 1.5)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo ✓")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", -2.25)
    w.add_key_value("test.array_i16", [1, -2, 3], T.ARRAY, sub_type=T.INT16)
    w.add_array("test.array_str", ["x", "yz", ""])
    w.add_array("test.array_nested", [[1, 2], [3]])
    w.add_array("test.array_nested_str", [["a"], ["b", "c"]])
    w.add_key_value("test.array_f64", [0.5, -1.0], T.ARRAY, sub_type=T.FLOAT64)
    w.add_key_value("test.array_bool", [True, False], T.ARRAY, sub_type=T.BOOL)

    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    w.add_tensor("token_embd.weight", f32(n_vocab, d_model).astype(np.float16))
    w.add_tensor("blk.0.attn_norm.weight", f32(d_model))
    q8 = gguf.quants.quantize(f32(d_model, d_model), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("blk.0.attn_q.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", f32(d_model))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def plain(v):
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (np.generic,)):
        return v.item()
    return v


def dump(path, out, tensors_only_meta=False):
    r = gguf.GGUFReader(path)
    meta = {}
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        types = [T(t).name for t in field.types]
        if tensors_only_meta and types[0] == "ARRAY":
            meta[key] = {"types": types, "len": len(field.data)}
            continue
        value = field.contents()
        if tensors_only_meta and isinstance(value, str) and len(value) > 200:
            value = {"str_len": len(value.encode("utf-8"))}
        meta[key] = {"types": types, "value": plain(value)}
    tensors = [
        {
            "name": t.name,
            "dims": [int(d) for d in t.shape],
            "type": t.tensor_type.name,
            "offset": int(t.data_offset),
            "n_bytes": int(t.n_bytes),
        }
        for t in r.tensors
    ]
    doc = {"version": int(r.fields["GGUF.version"].contents()), "metadata": meta, "tensors": tensors}
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", out)


def main():
    os.makedirs(OUT, exist_ok=True)
    tiny = os.path.join(OUT, "tiny.gguf")
    write_tiny(tiny)
    print("wrote", tiny, os.path.getsize(tiny), "bytes")
    dump(tiny, os.path.join(OUT, "tiny.json"))
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKIFF_TEST_MODEL_DIR")
    if not model_dir:
        print("no MODEL_DIR: real-model dumps skipped")
        return
    for fname, out in [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2.json"),
        ("gemma-3-270m-q4_k_m.gguf", "gemma3.json"),
    ]:
        dump(os.path.join(model_dir, fname), os.path.join(OUT, out), tensors_only_meta=True)


if __name__ == "__main__":
    main()
