"""Dump llama.cpp's logits as references for skiff-models' tests.

Two jobs, both run with llama-cpp-python (the llama.cpp build of the /root/sk/venv-llama venv):

  fixtures  For every tiny fixture under testdata/models/<family>/ (made by
            make_model_fixtures.py), evaluate each reference sequence on `q8_0.gguf` with
            llama.cpp and add the logits as variant "llamacpp_q8_0" to reference.json
            (file reference_llamacpp_q8_0.f32, same layout as the other variants). llama.cpp
            quantizes activations to Q8_0 exactly as skiff's CPU backend does, so this is the
            tight check of the quantized path; transformers' float32 logits are the loose one.

  real      For the real models in --model-dir, evaluate a fixed token prompt and write
            testdata/models/real/<model>.json: per position the top-k token ids and logits,
            and the greedy continuation llama.cpp produces (with the top-k at each step).

Run:
    /root/sk/venv-llama/bin/python tools/reference/dump_llamacpp_logits.py fixtures
    /root/sk/venv-llama/bin/python tools/reference/dump_llamacpp_logits.py real --model-dir /root/sk/models

The KV cache is kept in f32 (llama.cpp defaults to f16) so only the matmul arithmetic differs.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import llama_cpp
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parents[2] / "testdata" / "models"
GGML_TYPE_F32 = 0
TOP_K = 10
N_GREEDY = 8

# Fixed prompts, as token ids, so the tests need no tokenizer. Each starts with the model's
# BOS token and encodes "The capital of France is" with the model's own vocabulary (checked
# against llama.cpp's tokenizer when the file is written).
REAL_MODELS = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": "The capital of France is",
    "gemma-3-270m-q4_k_m.gguf": "The capital of France is",
}


def open_model(path, n_ctx=256):
    return Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_threads=2,
        logits_all=True,
        type_k=GGML_TYPE_F32,
        type_v=GGML_TYPE_F32,
        verbose=False,
    )


def eval_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype="<f4")


def one_line_token_lists(text, index):
    """json.dumps(indent=1) with every token list on one line (as make_model_fixtures.py)."""
    lists = [seq["tokens"] for seq in index["sequences"]]
    for runs in index.get("greedy", {}).values():
        lists += [r["prompt"] for r in runs] + [r["tokens"] for r in runs]
    for depth in range(2, 7):
        pad = " " * depth
        for tokens in lists:
            text = text.replace(json.dumps(tokens, indent=1).replace("\n", "\n" + pad), json.dumps(tokens))
    return text


def fixtures():
    for fam_dir in sorted(p for p in ROOT.iterdir() if (p / "reference.json").is_file()):
        index = json.loads((fam_dir / "reference.json").read_text())
        llm = open_model(fam_dir / "q8_0.gguf")
        rows = [eval_logits(llm, seq["tokens"]) for seq in index["sequences"]]
        logits = np.concatenate(rows, axis=0)
        assert logits.shape[1] == index["n_vocab"], (fam_dir.name, logits.shape)
        fname = "reference_llamacpp_q8_0.f32"
        logits.tofile(fam_dir / fname)
        index["variants"]["llamacpp_q8_0"] = {
            "file": fname,
            "max_abs_logit": float(np.abs(logits).max()),
            "llama_cpp_python": llama_cpp.__version__,
        }
        text = one_line_token_lists(json.dumps(index, indent=1), index)
        (fam_dir / "reference.json").write_text(text + "\n")
        print(fam_dir.name, logits.shape)


def real(model_dir):
    out_dir = ROOT / "real"
    out_dir.mkdir(exist_ok=True)
    for fname, text in REAL_MODELS.items():
        llm = open_model(model_dir / fname)
        prompt = llm.tokenize(text.encode(), add_bos=True, special=False)
        logits = eval_logits(llm, prompt)
        positions = []
        for row in logits:
            top = np.argsort(-row, kind="stable")[:TOP_K]
            positions.append({"top_ids": [int(i) for i in top], "top_logits": [float(row[i]) for i in top]})
        # Greedy continuation, one token at a time on top of the prompt's cache; each step
        # records llama.cpp's top-k there, so a test can tell a real mismatch from a near-tie.
        greedy = []
        last = logits[-1]
        for _ in range(N_GREEDY):
            top = np.argsort(-last, kind="stable")[:TOP_K]
            tok = int(top[0])
            greedy.append({"token": tok, "top_ids": [int(i) for i in top], "top_logits": [float(last[i]) for i in top]})
            llm.eval([tok])
            last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        tokens = [g["token"] for g in greedy]
        record = {
            "model": fname,
            "text": text,
            "llama_cpp_python": llama_cpp.__version__,
            "n_vocab": int(logits.shape[1]),
            "prompt": [int(t) for t in prompt],
            "top_k": TOP_K,
            "positions": positions,
            "greedy": greedy,
            "greedy_text": llm.detokenize(tokens).decode("utf-8", "replace"),
        }
        stem = fname.removesuffix(".gguf")
        (out_dir / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(fname, prompt, tokens, repr(record["greedy_text"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="job", required=True)
    sub.add_parser("fixtures")
    real_p = sub.add_parser("real")
    real_p.add_argument("--model-dir", type=Path, required=True)
    args = parser.parse_args()
    if args.job == "fixtures":
        fixtures()
    else:
        real(args.model_dir)


if __name__ == "__main__":
    main()
