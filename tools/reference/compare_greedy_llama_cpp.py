#!/usr/bin/env python3
"""Greedy continuations of skiff and llama.cpp on the same GGUF files, token by token.

For each model and prompt: llama.cpp (through llama-cpp-python) decodes N tokens greedily
from the raw prompt (BOS added as the model says); `skiff run --raw --temperature 0` does the
same. Where the texts differ, the script re-tokenizes skiff's text, replays it through
llama.cpp, and prints the first step where llama.cpp's argmax differs from skiff's token
together with llama.cpp's own log-probability gap between the two: a near-tie (a gap of a
few hundredths of a nat) is numerical noise, a large gap is a bug.

skiff keeps its KV cache in f32; llama.cpp's default is f16, which alone moves logits by
about 0.1 nat on these models. `--kv-f32` runs llama.cpp with an f32 KV cache too, so the
comparison isolates everything else.

Run with:
    /root/sk/venv-llama/bin/python tools/reference/compare_greedy_llama_cpp.py [--kv-f32] \
        target/release/skiff $SKIFF_TEST_MODEL_DIR/*.gguf
"""
import json
import subprocess
import sys

import numpy as np
from llama_cpp import Llama

PROMPTS = [
    "The history of the Roman Empire",
    "def fibonacci(n):",
    "Customer: My order arrived damaged. What should I do?\nAgent:",
    "To reset your password, first",
]
N_TOKENS = 32


def log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max()
    return logits - (top + np.log(np.exp(logits - top).sum()))


def llama_greedy(m: Llama, prompt: str) -> list[int]:
    m.reset()
    m.eval(m.tokenize(prompt.encode(), add_bos=True, special=False))
    out = []
    for _ in range(N_TOKENS):
        tok = int(np.argmax(np.array(m.scores[m.n_tokens - 1])))
        out.append(tok)
        if tok == m.token_eos():
            break
        m.eval([tok])
    return out


def first_divergence(m: Llama, prompt: str, text: str):
    m.reset()
    m.eval(m.tokenize(prompt.encode(), add_bos=True, special=False))
    ours = m.tokenize(text.encode(), add_bos=False, special=False)
    for step, tok in enumerate(ours):
        lp = log_softmax(np.array(m.scores[m.n_tokens - 1]))
        best = int(np.argmax(lp))
        if best != tok:
            return {
                "step": step,
                "llama_cpp": m.detokenize([best]).decode("utf-8", "replace"),
                "skiff": m.detokenize([tok]).decode("utf-8", "replace"),
                "gap_nats": round(float(lp[best] - lp[tok]), 4),
            }
        m.eval([tok])
    return None


def main() -> None:
    args = sys.argv[1:]
    kv = {}
    if args and args[0] == "--kv-f32":
        kv = {"type_k": 0, "type_v": 0}  # GGML_TYPE_F32
        args = args[1:]
    skiff, models = args[0], args[1:]
    for path in models:
        m = Llama(model_path=path, n_ctx=512, n_threads=2, verbose=False, logits_all=True, **kv)
        for prompt in PROMPTS:
            ref_ids = llama_greedy(m, prompt)
            ref = m.detokenize(ref_ids).decode("utf-8", "replace")
            run = subprocess.run(
                [skiff, "run", "--raw", "--temperature", "0", "-n", str(len(ref_ids)), path, prompt],
                capture_output=True,
                check=True,
            )
            got = run.stdout.decode("utf-8", "replace").rstrip("\n")
            row = {"model": path.rsplit("/", 1)[-1], "prompt": prompt[:32], "tokens": len(ref_ids)}
            if got == ref.rstrip("\n"):
                row["identical"] = True
            else:
                row["identical"] = False
                row["divergence"] = first_divergence(m, prompt, got)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
