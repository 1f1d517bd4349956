"""Generate the tiny random-weight model fixtures under testdata/models/ and their golden logits.

For each family (llama, mistral, qwen2, qwen3, gemma3) this script:
  1. builds a tiny model with Hugging Face transformers from a fixed seed, with every parameter
     (norm weights and biases included) randomized so that no term of the forward pass is trivial;
  2. saves it as a safetensors folder `testdata/models/<family>/hf/` with a tiny byte-level BPE
     tokenizer (llama.cpp's converter insists on one; the tests feed token ids directly);
  3. computes float32 reference logits with transformers (eager attention) for two fixed token
     sequences, one longer than every sliding window, written to `reference.f32` (little-endian
     f32, sequences concatenated, each `[n_tokens, n_vocab]`) with the index `reference.json`;
  4. converts the folder to `f32.gguf` and `q8_0.gguf` with llama.cpp's own
     `convert_hf_to_gguf.py`, so the GGUF path (Q/K permutation, norm shifts, tensor names) is
     exactly what users' files look like.

Run (about a minute; needs torch, transformers, tokenizers, safetensors):

    /root/sk/venv-torch/bin/python tools/reference/make_model_fixtures.py \
        --llama-cpp /tmp/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp

where the llama.cpp tree comes from the llama-cpp-python sdist:
    pip download --no-deps --no-binary :all: llama-cpp-python -d /tmp/lcp && tar xzf ...

The converter is run unmodified except for one patch: its BPE pre-tokenizer detection hashes the
tokenizer's output on a probe text and refuses tokenizers it does not know. Our tokenizer is
made up, so the wrapper reports the plain "gpt-2" pre-tokenizer. This touches only vocabulary
metadata, never tensors.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
from transformers import PreTrainedTokenizerFast

N_VOCAB = 320
SEED = 1234
# Two sequences: "long" is longer than every sliding window below (8), "short" is not.
SEQ_LENS = {"long": 20, "short": 7}
WINDOW = 8
# Greedy decoding checks: prompts of 4..11 random tokens, 48 new tokens each.
N_GREEDY_PROMPTS = 8
N_GREEDY_TOKENS = 48

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a tiny model for testing an inference engine",
    "sliding windows, rotary embeddings and grouped query attention",
    "hello world, hello skiff; the cat sat on the mat",
] * 20


def common(**extra):
    base = dict(
        vocab_size=N_VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    base.update(extra)
    return base


def family_configs():
    """(family, config) pairs; each exercises the features its family adds."""
    llama = transformers.LlamaConfig(
        **common(
            tie_word_embeddings=False,
            # Llama 3.1 scaling: the converter turns it into rope_freqs.weight in GGUF.
            rope_parameters=dict(
                rope_type="llama3",
                rope_theta=10000.0,
                factor=4.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=32,
            ),
        )
    )
    mistral = transformers.MistralConfig(
        **common(tie_word_embeddings=False, sliding_window=WINDOW, head_dim=16, rope_theta=10000.0)
    )
    qwen2 = transformers.Qwen2Config(**common(tie_word_embeddings=True, rope_theta=1000000.0))
    # head_dim 32 != hidden_size / num_attention_heads: q and o are not square.
    qwen3 = transformers.Qwen3Config(**common(tie_word_embeddings=False, head_dim=32, rope_theta=1000000.0))
    gemma3 = transformers.Gemma3TextConfig(
        **common(
            intermediate_size=96,
            num_hidden_layers=6,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            query_pre_attn_scalar=32,
            sliding_window=WINDOW,
            # Layers 0-4 local (theta 10000), layer 5 global (theta 1e6, linear x8):
            # llama.cpp's fixed pattern of 6.
            layer_types=["sliding_attention"] * 5 + ["full_attention"],
            rope_parameters={
                "sliding_attention": dict(rope_type="default", rope_theta=10000.0),
                "full_attention": dict(rope_type="linear", rope_theta=1000000.0, factor=8.0),
            },
            final_logit_softcapping=20.0,
            hidden_activation="gelu_pytorch_tanh",
            tie_word_embeddings=True,
        )
    )
    return [
        ("llama", llama, transformers.LlamaForCausalLM),
        ("mistral", mistral, transformers.MistralForCausalLM),
        ("qwen2", qwen2, transformers.Qwen2ForCausalLM),
        ("qwen3", qwen3, transformers.Qwen3ForCausalLM),
        ("gemma3", gemma3, transformers.Gemma3ForCausalLM),
    ]


def randomize(model, family):
    """Every parameter random: matrices N(0, 0.15); norms 1 + N(0, 0.2) (Gemma stores w with
    the 1 implied, so N(0, 0.2)); biases N(0, 0.2)."""
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if "norm" in name:
                p.copy_((0.0 if family == "gemma3" else 1.0) + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.2 * noise)
            else:
                p.copy_(0.15 * noise)


def make_tokenizer(out_dir):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=N_VOCAB,
        # Qwen2's tokenizer class appends <|endoftext|> unless the vocabulary has it.
        special_tokens=["<pad>", "<s>", "</s>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    assert tok.get_vocab_size() <= N_VOCAB, tok.get_vocab_size()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.save_pretrained(out_dir)


def classic_rope_keys(hf_dir):
    """Rewrites transformers 5's nested `rope_parameters` in config.json as the top-level
    `rope_theta` / `rope_scaling` / `rope_local_base_freq` keys that checkpoints on the Hub
    use, so the fixtures look like the files users download."""
    path = hf_dir / "config.json"
    cfg = json.loads(path.read_text())
    params = cfg.pop("rope_parameters", None)
    if params is None:
        return
    if "full_attention" in params:  # Gemma 3: per layer type
        local = params.get("sliding_attention", {})
        if "rope_theta" in local:
            cfg["rope_local_base_freq"] = local["rope_theta"]
        params = params["full_attention"]
    params = dict(params)
    cfg["rope_theta"] = params.pop("rope_theta")
    cfg["rope_scaling"] = None if params.get("rope_type", "default") == "default" else params
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def sequences():
    rng = np.random.default_rng(SEED)
    return {name: [int(t) for t in rng.integers(3, N_VOCAB, size=n)] for name, n in SEQ_LENS.items()}


def greedy_runs(model):
    """transformers' greedy continuations (full recompute per step) of N_GREEDY_PROMPTS
    random prompts of 4..11 tokens. A prompt whose path meets a near-tie (top-1/top-2 logit
    margin below 1e-3, where token equality would be a coin flip) is replaced by the next
    candidate; the smallest margin kept is recorded."""
    rng = np.random.default_rng(SEED + 1)
    runs = []
    with torch.no_grad():
        for _ in range(8 * N_GREEDY_PROMPTS):
            if len(runs) == N_GREEDY_PROMPTS:
                break
            prompt = [int(t) for t in rng.integers(3, N_VOCAB, size=4 + len(runs))]
            ids = list(prompt)
            min_margin = float("inf")
            for _ in range(N_GREEDY_TOKENS):
                logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1]
                top2 = torch.topk(logits, 2).values
                min_margin = min(min_margin, float(top2[0] - top2[1]))
                ids.append(int(torch.argmax(logits)))
            if min_margin > 1e-3:
                runs.append({"prompt": prompt, "tokens": ids[len(prompt):], "min_margin": min_margin})
    assert len(runs) == N_GREEDY_PROMPTS, "too many near-ties"
    return runs


def reference_logits(model, seqs):
    rows = []
    with torch.no_grad():
        for tokens in seqs.values():
            out = model(input_ids=torch.tensor([tokens]), use_cache=False)
            rows.append(out.logits[0].to(torch.float32).numpy())
    return np.concatenate(rows, axis=0).astype("<f4")


def convert(llama_cpp, hf_dir, out_path, outtype):
    wrapper = (
        "import sys\n"
        "import conversion.base as base\n"
        "base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'gpt-2'\n"
        "import convert_hf_to_gguf as c\n"
        "c.main()\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{llama_cpp / 'gguf-py'}{os.pathsep}{llama_cpp}")
    cmd = [sys.executable, "-c", wrapper, str(hf_dir), "--outfile", str(out_path), "--outtype", outtype]
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"convert_hf_to_gguf failed for {hf_dir} ({outtype}):\n{done.stderr[-3000:]}")


def one_line_token_lists(text, index):
    """json.dumps(indent=1) with every token list on one line."""
    lists = [seq["tokens"] for seq in index["sequences"]]
    for runs in index.get("greedy", {}).values():
        lists += [r["prompt"] for r in runs] + [r["tokens"] for r in runs]
    for depth in range(2, 7):
        pad = " " * depth
        for tokens in lists:
            text = text.replace(json.dumps(tokens, indent=1).replace("\n", "\n" + pad), json.dumps(tokens))
    return text


def write_family(root, llama_cpp, family, config, cls):
    fam_dir = root / family
    hf_dir = fam_dir / "hf"
    if fam_dir.exists():
        shutil.rmtree(fam_dir)
    hf_dir.mkdir(parents=True)
    torch.manual_seed(SEED)
    config._attn_implementation = "eager"
    model = cls(config).to(torch.float32).eval()
    randomize(model, family)
    model.save_pretrained(hf_dir, safe_serialization=True)
    classic_rope_keys(hf_dir)
    make_tokenizer(hf_dir)

    seqs = sequences()
    variants = {"hf": reference_logits(model, seqs)}
    # The folder as written (classic keys) must load back into the very same model.
    reloaded = cls.from_pretrained(hf_dir, attn_implementation="eager", dtype=torch.float32).eval()
    np.testing.assert_array_equal(reference_logits(reloaded, seqs), variants["hf"])
    greedy = {"hf": greedy_runs(model)}
    if family == "mistral":
        # GGUF's `llama` architecture carries no sliding window (llama.cpp ignores Mistral's),
        # so the GGUF files are checked against the same weights without the window.
        model.config.sliding_window = None
        for layer in model.model.layers:
            layer.self_attn.sliding_window = None
        variants["hf_no_window"] = reference_logits(model, seqs)
        greedy["hf_no_window"] = greedy_runs(model)
        assert not np.allclose(variants["hf"], variants["hf_no_window"]), "window must matter"

    index = {
        "family": family,
        "n_vocab": N_VOCAB,
        "seed": SEED,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "sequences": [{"name": n, "tokens": t} for n, t in seqs.items()],
        "layout": "little-endian f32; per variant, sequences concatenated in order, each [n_tokens, n_vocab]",
        "variants": {},
        "greedy": greedy,
    }
    for name, logits in variants.items():
        fname = f"reference_{name}.f32"
        logits.tofile(fam_dir / fname)
        index["variants"][name] = {"file": fname, "max_abs_logit": float(np.abs(logits).max())}
    text = json.dumps(index, indent=1)
    text = one_line_token_lists(text, index)
    (fam_dir / "reference.json").write_text(text + "\n")

    for outtype in ["f32", "q8_0"]:
        convert(llama_cpp, hf_dir, fam_dir / f"{outtype}.gguf", outtype)
    sizes = {p.name: p.stat().st_size for p in sorted(fam_dir.rglob("*")) if p.is_file()}
    print(family, {k: v for k, v in sizes.items() if v > 100_000})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama-cpp", type=Path, required=True, help="llama.cpp source tree (has convert_hf_to_gguf.py)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "testdata" / "models")
    parser.add_argument("--only", nargs="*", help="families to (re)generate")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for family, config, cls in family_configs():
        if args.only and family not in args.only:
            continue
        write_family(args.out, args.llama_cpp.resolve(), family, config, cls)


if __name__ == "__main__":
    main()
