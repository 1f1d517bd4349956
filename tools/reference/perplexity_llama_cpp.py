#!/usr/bin/env python3
"""llama.cpp's perplexity of a GGUF model over a text file, through llama-cpp-python.

Replicates `llama-perplexity` (tools/perplexity/perplexity.cpp, function `perplexity`) for
when the vendored binary is not built: the text is tokenized once (BOS added if the model
says so), cut into non-overlapping windows of CTX tokens, each window evaluated from an
empty KV cache with its first token replaced by BOS when the model adds BOS, and only the
second half of each window scored. Prints one running estimate per window and, last,
`PPL = <ppl> +/- <error>` in the same format as `skiff perplexity`, for comparison.

Run with:
    /root/sk/venv-llama/bin/python tools/reference/perplexity_llama_cpp.py \
        $SKIFF_TEST_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf testdata/text/sample.txt --ctx 128
"""
import argparse
import math

import numpy as np
from llama_cpp import Llama


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("file")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    n_ctx = args.ctx
    llm = Llama(model_path=args.model, n_ctx=n_ctx, n_batch=n_ctx, logits_all=True,
                n_threads=args.threads, verbose=False)
    with open(args.file, encoding="utf-8") as f:
        text = f.read()
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    # add_bos=True means "add special tokens if the vocabulary asks for them".
    add_bos = len(llm.tokenize(b"a", add_bos=True)) > len(llm.tokenize(b"a", add_bos=False))
    if len(tokens) < 2 * n_ctx:
        raise SystemExit(f"need at least {2 * n_ctx} tokens, the text has {len(tokens)}")

    n_chunks = len(tokens) // n_ctx
    first = n_ctx // 2
    nll = nll2 = 0.0
    count = 0
    print(f"perplexity: {len(tokens)} tokens, {n_chunks} windows of {n_ctx} tokens, add_bos={add_bos}")
    for i in range(n_chunks):
        window = tokens[i * n_ctx:(i + 1) * n_ctx]
        inp = list(window)
        if add_bos:
            inp[0] = llm.token_bos()
        llm.reset()
        llm.eval(inp)
        logits = np.asarray(llm.scores[:n_ctx], dtype=np.float32)
        for j in range(first, n_ctx - 1):
            row = logits[j]
            m = row.max()
            log_z = m + math.log(np.exp((row - m).astype(np.float64)).sum())
            v = log_z - float(row[window[j + 1]])
            nll += v
            nll2 += v * v
            count += 1
        print(f"[{i + 1}/{n_chunks}] {math.exp(nll / count):.4f}")
    nll /= count
    nll2 /= count
    ppl = math.exp(nll)
    err = math.sqrt((nll2 - nll * nll) / (count - 1)) * ppl
    print(f"PPL = {ppl:.4f} +/- {err:.5f}")


if __name__ == "__main__":
    main()
