#!/usr/bin/env python3
"""Dump tokenizer reference vectors for skiff-tokenizer's parity tests.

Ground truth is llama.cpp itself (through llama-cpp-python, vocab-only load), because
skiff's GGUF tokenizers promise llama.cpp's token ids:

    /root/sk/venv-llama/bin/python tools/reference/dump_tokenizer_vectors.py \
        --models /root/sk/models --out testdata/tokenizer

(venv: `python3 -m venv venv && venv/bin/pip install llama-cpp-python`; it builds
llama.cpp from source.) For each model it writes `<name>.vectors.json` with:
  - `cases`: text -> ids from `tokenize(text, add_bos=False, special=False)` (user text:
    special-token text is NOT parsed), plus llama.cpp's detokenization of those ids;
  - `special_cases`: text -> ids from `tokenize(text, add_bos=False, special=True)`
    (rendered chat templates: special-token text IS parsed);
  - `bos`, `eos`, `add_bos`, and `eog_ids` (every id llama.cpp's `llama_vocab_is_eog` accepts).
"""
import argparse
import json
import os

import llama_cpp
from llama_cpp import Llama

MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}

# Hard strings: whitespace runs, tabs/newlines, digits, CJK, emoji with ZWJ, combining
# marks, code, special-token text, leading spaces, the empty string, byte-fallback bait.
CORPUS = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "Hello world",
    " Hello world",
    "   leading spaces",
    "trailing spaces   ",
    "Hello  there,   multiple    spaces",
    "line one\nline two\n\nline four\r\nwindows\rold mac",
    "\t\ttabs\tand  \t mixed \n\t whitespace",
    "1234567",
    "3.14159 2,718 1e-10 -42 007 1000000",
    "Phone: +1 (555) 123-4567, year 2024",
    "你好，世界！这是一个测试。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 텍스트입니다",
    "Ñandú café naïve résumé façade",
    "e\u0301 a\u0300 o\u0308 combining marks: Z\u0351\u036b\u0343\u036a\u0302\u036b",
    "Ελληνικά και Кириллица и العربية و עברית",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧\u200d👦 flag 🇺🇸 rainbow 🏳\ufe0f\u200d🌈",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() { println!(\"{}\", x[0] >> 2 != y && z); }",
    "<html><body><table><tr><td>cell</td></tr></table></body></html>",
    "<|im_start|>system\nYou are evil<|im_end|>",
    "<start_of_turn>user\nhi<end_of_turn>",
    "<bos><eos><pad><unk> <|endoftext|>",
    "I'm sure they'll say it's the users' fault, isn't it? We've seen YOU'RE",
    "https://example.com/path?query=1&b=2#frag user@example.org",
    "Mixed: αβγ 123 abc 😀 \u00a0nbsp \u2003emspace \u3000ideographic",
    "zero\u200bwidth\u200cjoiner\u200dtest\ufeffbom",
    "Control chars: \x01\x02\x7f end",
    "Private use \ue000 and rare \U0001f9ec \U00020000 \U0002a6d6",
    "a" * 300,
    "The quick brown fox jumps over the lazy dog. " * 8,
    "!!!???...---___***///\\\\|||",
    "   \n   \n\n\t  ",
]

SPECIAL_CASES = {
    "smollm2": [
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\n<|im_start|> literal? <|endoftext|><|im_end|>",
        "no special tokens here",
    ],
    "gemma3": [
        "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
        "<start_of_turn>user\n<table> and <mask> and <unused5><end_of_turn>",
        "no special tokens here",
    ],
}


def dump(name, path, out_dir):
    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    cases = []
    for text in CORPUS:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        detok = llm.detokenize(ids, special=True)
        cases.append({"text": text, "ids": ids, "llama_cpp_detok": detok.decode("utf-8", errors="replace")})
    special = []
    for text in SPECIAL_CASES[name]:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        special.append({"text": text, "ids": ids})
    eog = [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    doc = {
        "generator": "tools/reference/dump_tokenizer_vectors.py",
        "reference": f"llama-cpp-python {llama_cpp.__version__} (llama.cpp tokenize, vocab_only)",
        "model_file": os.path.basename(path),
        "n_vocab": n_vocab,
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "eog_ids": eog,
        "cases": cases,
        "special_cases": special,
    }
    out = os.path.join(out_dir, f"{name}.vectors.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{out}: {len(cases)} cases, {len(special)} special cases, eog={eog}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.environ.get("SKIFF_TEST_MODEL_DIR", "/root/sk/models"))
    ap.add_argument("--out", default="testdata/tokenizer")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, file in MODELS.items():
        dump(name, os.path.join(args.models, file), args.out)


if __name__ == "__main__":
    main()
