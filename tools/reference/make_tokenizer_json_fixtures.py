#!/usr/bin/env python3
"""Make small `tokenizer.json` fixtures, and their reference vectors, for skiff-tokenizer's
HfJson path (models shipped as safetensors + tokenizer.json).

    /root/sk/venv-tok/bin/python tools/reference/make_tokenizer_json_fixtures.py --out testdata/tokenizer/hf

(venv: see dump_template_goldens.py; needs `tokenizers` only.) Each fixture is a tiny
vocabulary trained here on a fixed corpus, wired exactly like a real model family's file:

  - qwen2: byte-level BPE, Qwen2 split regex, ChatML control tokens, `<tool_call>` as a
    non-special added token, no bos;
  - llama3: byte-level BPE with `ignore_merges`, Llama 3 split regex, bos added by a
    `TemplateProcessing` post-processor (the file has no `add_bos_token` flag);
  - llama2: SentencePiece-style BPE with byte fallback (`<0xXX>` in the vocabulary),
    `Prepend("▁")`+`Replace(" ", "▁")` normalizer, `Replace/ByteFallback/Fuse/Strip` decoder;
  - gemma: as llama2 without the prefix space or `Strip`, Gemma's special ids, HTML tags as
    non-special added tokens, an `lstrip` special token;
  - metaspace: `Metaspace` pre-tokenizer and decoder (`prepend_scheme: first`). The
    library's `Metaspace` decoder prints byte-fallback tokens as `<0xXX>` text and drops
    every `▁` of the first token; skiff decodes bytes and drops one leading space, like
    SentencePiece and llama.cpp. So for this fixture the expected decodes come from the same
    file with its decoder swapped for `Replace/ByteFallback/Fuse/Strip` (Llama 2's), which
    is what skiff implements for both.

Reference (`<name>.vectors.json`): the `tokenizers` library itself, on the hard corpus of
dump_tokenizer_vectors.py — ids with special-token text NOT parsed
(`encode_special_tokens = True`, as skiff's `encode`), ids with `add_special_tokens=True`,
decoded text with and without special tokens, and ids WITH special-token parsing for
rendered-template-like texts (as skiff's `encode_with_special_tokens`).
"""
import argparse
import ast
import json
import os

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))

QWEN2_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog. It's the users' fault, isn't it? We'll see.",
    "Tokenizers split text into pieces; the model sees only their ids. Numbers like 1234567 and 3.14159 appear too.",
    "def main():\n    for i in range(10):\n        print(f\"value {i}\")\n    return 0\n",
    "fn main() { let x = vec![1, 2, 3]; println!(\"{:?}\", x); }",
    "Hello world! Hello there, how are you doing today? I am fine, thank you very much.",
    "Café, naïve, résumé, façade — accents matter. Ελληνικά, Кириллица, 你好世界, こんにちは.",
    "<html><body><p>paragraph</p></body></html> https://example.com/path?query=1",
] * 4


def corpus():
    """The hard corpus of dump_tokenizer_vectors.py (read, not imported: that script needs llama_cpp)."""
    with open(os.path.join(HERE, "dump_tokenizer_vectors.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CORPUS" for t in node.targets):
            # A list of string literals, some repeated with `*`: evaluate it with no builtins.
            return eval(compile(ast.Expression(node.value), "CORPUS", "eval"), {"__builtins__": {}})
    raise RuntimeError("CORPUS not found in dump_tokenizer_vectors.py")


def byte_level(split_regex, specials, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_regex), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    return tok


def with_byte_tokens(tok, n_specials):
    """Rebuilds a trained SentencePiece-style BPE with `<0x00>`..`<0xFF>` right after the
    specials, as Llama 2 and Gemma files have them."""
    doc = json.loads(tok.to_str())
    vocab = sorted(doc["model"]["vocab"].items(), key=lambda kv: kv[1])
    specials, rest = vocab[:n_specials], vocab[n_specials:]
    new = [t for t, _ in specials] + [f"<0x{b:02X}>" for b in range(256)] + [t for t, _ in rest if not t.startswith("<0x")]
    doc["model"]["vocab"] = {t: i for i, t in enumerate(new)}
    for added in doc["added_tokens"]:
        added["id"] = doc["model"]["vocab"][added["content"]]
    return Tokenizer.from_str(json.dumps(doc))


def sentencepiece_like(specials, prefix_space, strip_decoder):
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    steps = [normalizers.Prepend("▁")] if prefix_space else []
    tok.normalizer = normalizers.Sequence(steps + [normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    tok = with_byte_tokens(tok, len(specials))
    steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if strip_decoder:
        steps.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(steps)
    return tok


def bos_template(bos, bos_id):
    return processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)])


def make_qwen2():
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = byte_level(QWEN2_REGEX, specials)
    tok.add_tokens([AddedToken("<tool_call>", special=False, normalized=False)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    special = {"bos": None, "eos": tok.token_to_id("<|im_end|>"), "add_bos": None}
    texts = ["<|im_start|>user\nHi <tool_call> there<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|><|im_end|>x"]
    return tok, special, texts


def make_llama3():
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = byte_level(LLAMA3_REGEX, specials, ignore_merges=True)
    tok.post_processor = bos_template("<|begin_of_text|>", 0)
    special = {"bos": 0, "eos": tok.token_to_id("<|eot_id|>"), "add_bos": None}
    texts = ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"]
    return tok, special, texts


def make_llama2():
    tok = sentencepiece_like(["<unk>", "<s>", "</s>"], prefix_space=True, strip_decoder=True)
    tok.post_processor = bos_template("<s>", 1)
    special = {"bos": 1, "eos": 2, "add_bos": True}
    texts = ["<s>[INST] Hello there [/INST] Hi!</s>", "a</s> <s>b"]
    return tok, special, texts


def make_gemma():
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    tok = sentencepiece_like(specials, prefix_space=False, strip_decoder=False)
    tok.add_tokens([AddedToken("<table>", special=False, normalized=False), AddedToken("</table>", special=False, normalized=False)])
    tok.add_special_tokens([AddedToken("<mask>", special=True, normalized=False, lstrip=True)])
    tok.post_processor = bos_template("<bos>", 2)
    special = {"bos": 2, "eos": 1, "add_bos": True}
    texts = [
        "<bos><start_of_turn>user\nA <table> here</table><end_of_turn>\n<start_of_turn>model\n",
        "fill   <mask> in, and <mask>",
    ]
    return tok, special, texts


def make_metaspace():
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    tok = with_byte_tokens(tok, 3)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.post_processor = bos_template("<s>", 1)
    special = {"bos": 1, "eos": 2, "add_bos": True}
    return tok, special, ["<s>Hello</s> world<s>"]


FIXTURES = {"qwen2": make_qwen2, "llama3": make_llama3, "llama2": make_llama2, "gemma": make_gemma, "metaspace": make_metaspace}


def sentencepiece_decoder_twin(tok):
    """The same tokenizer with Llama 2's decoder (see the docstring on `metaspace`)."""
    twin = Tokenizer.from_str(tok.to_str())
    twin.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return twin


def vectors(tok, special, special_texts, swap_decoder):
    decoder = sentencepiece_decoder_twin(tok) if swap_decoder else tok
    cases = []
    for text in corpus():
        tok.encode_special_tokens = True
        ids = tok.encode(text, add_special_tokens=False).ids
        with_special = tok.encode(text, add_special_tokens=True).ids
        decoded = decoder.decode(ids, skip_special_tokens=False)
        cases.append({"text": text, "ids": ids, "ids_add_special": with_special, "decoded": decoded})
    tok.encode_special_tokens = False
    parsed = []
    for text in special_texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        parsed.append(
            {
                "text": text,
                "ids": ids,
                "decoded": decoder.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": decoder.decode(ids, skip_special_tokens=True),
            }
        )
    return {
        "generator": "tools/reference/make_tokenizer_json_fixtures.py",
        "reference": f"tokenizers {tokenizers.__version__}",
        "n_vocab": tok.get_vocab_size(with_added_tokens=True),
        "special": special,
        "decode_reference": "tokenizers decode" + (" with Llama 2's decoder (see the generator)" if swap_decoder else ""),
        "cases": cases,
        "special_cases": parsed,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="testdata/tokenizer/hf")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, make in FIXTURES.items():
        tok, special, special_texts = make()
        path = os.path.join(args.out, f"{name}.tokenizer.json")
        tok.save(path)
        doc = vectors(tok, special, special_texts, swap_decoder=name == "metaspace")
        with open(os.path.join(args.out, f"{name}.vectors.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"{path}: {doc['n_vocab']} tokens, {os.path.getsize(path)} bytes, {len(doc['cases'])} cases")


if __name__ == "__main__":
    main()
