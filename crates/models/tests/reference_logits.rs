//! Every family, from every source, against transformers' float32 logits.
//!
//! Fixtures: `testdata/models/<family>/` from `tools/reference/make_model_fixtures.py`
//! (tiny random-weight models, two sequences, one longer than the sliding windows).
//! Tolerances are relative to the largest reference logit of the variant:
//! - F32 sources (safetensors, GGUF F32): `TOL_F32`. The measured worst case is printed
//!   by each test (`cargo test -p skiff-models --test reference_logits -- --nocapture`).
//! - GGUF Q8_0 against transformers: `TOL_Q8_0`, the quantization error itself (weights and
//!   activations both round to 8 bits, as in llama.cpp; measured up to 5.4e-2 on these
//!   random-weight models, which amplify it more than trained ones).
//! - GGUF Q8_0 against llama.cpp on the same file (`llamacpp_q8_0`, from
//!   `tools/reference/dump_llamacpp_logits.py`): `TOL_Q8_0_LLAMACPP`, since both quantize
//!   activations the same way (measured 1.2e-7; the margin allows a rare rounding flip of an
//!   activation quant when another ISA sums in another order). Gemma 3 gets `TOL_Q8_0_LLAMACPP_GELU`:
//!   ggml evaluates GELU through an f16 lookup table (`GGML_GELU_FP16`), a 2e-3 difference
//!   even at F32 that flips some activation roundings at Q8_0 (measured 2.0e-2; llama.cpp
//!   and skiff are then equally far from transformers).

mod common;

use common::{Reference, argmax_rows, load, max_abs, max_abs_diff, run_prompt};
use skiff_backend_cpu::Cpu;

/// Max |ours - reference| / max |reference| for F32 weights.
const TOL_F32: f32 = 1e-4;
/// Max |ours - reference| / max |reference| for Q8_0 weights against float32 transformers.
const TOL_Q8_0: f32 = 8e-2;
/// Max |ours - llama.cpp| / max |llama.cpp| on the same Q8_0 file.
const TOL_Q8_0_LLAMACPP: f32 = 1e-3;
/// The same for a GELU model (see the module docs).
const TOL_Q8_0_LLAMACPP_GELU: f32 = 4e-2;

/// Runs every reference sequence through `family`'s `source` and compares with `variant`.
fn check(family: &str, source: &str, variant: &str, tol: f32) {
    let reference = Reference::load(family);
    let model = load(family, source);
    assert_eq!(
        model.n_vocab(),
        reference.n_vocab,
        "{family}/{source}: n_vocab"
    );
    let cpu = Cpu::new(2);
    let want_all = &reference.variants[variant];
    for ((name, tokens), want) in reference.sequences.iter().zip(want_all) {
        let got = run_prompt(&model, &cpu, tokens);
        let scale = max_abs(want);
        let rel = max_abs_diff(&got, want) / scale;
        println!(
            "{family}/{source} vs {variant} [{name}]: max rel diff {rel:.3e} (max |logit| {scale:.3})"
        );
        assert!(
            rel <= tol,
            "{family}/{source} [{name}]: max rel diff {rel:.3e} > {tol:.1e}"
        );
        if tol == TOL_F32 {
            assert_eq!(
                argmax_rows(&got, model.n_vocab()),
                argmax_rows(want, model.n_vocab()),
                "{family}/{source}"
            );
        }
    }
}

#[test]
fn llama_safetensors_f32() {
    check("llama", "hf", "hf", TOL_F32);
}

#[test]
fn llama_gguf_f32() {
    check("llama", "f32.gguf", "hf", TOL_F32);
}

#[test]
fn llama_gguf_q8_0() {
    check("llama", "q8_0.gguf", "hf", TOL_Q8_0);
    check("llama", "q8_0.gguf", "llamacpp_q8_0", TOL_Q8_0_LLAMACPP);
}

/// Safetensors keep Mistral's sliding window; the reference applies it too.
#[test]
fn mistral_safetensors_f32() {
    check("mistral", "hf", "hf", TOL_F32);
}

/// GGUF's `llama` architecture has no window (as in llama.cpp): full-context reference.
#[test]
fn mistral_gguf_f32() {
    check("mistral", "f32.gguf", "hf_no_window", TOL_F32);
}

#[test]
fn mistral_gguf_q8_0() {
    check("mistral", "q8_0.gguf", "hf_no_window", TOL_Q8_0);
    check("mistral", "q8_0.gguf", "llamacpp_q8_0", TOL_Q8_0_LLAMACPP);
}

#[test]
fn qwen2_safetensors_f32() {
    check("qwen2", "hf", "hf", TOL_F32);
}

#[test]
fn qwen2_gguf_f32() {
    check("qwen2", "f32.gguf", "hf", TOL_F32);
}

#[test]
fn qwen2_gguf_q8_0() {
    check("qwen2", "q8_0.gguf", "hf", TOL_Q8_0);
    check("qwen2", "q8_0.gguf", "llamacpp_q8_0", TOL_Q8_0_LLAMACPP);
}

#[test]
fn qwen3_safetensors_f32() {
    check("qwen3", "hf", "hf", TOL_F32);
}

#[test]
fn qwen3_gguf_f32() {
    check("qwen3", "f32.gguf", "hf", TOL_F32);
}

#[test]
fn qwen3_gguf_q8_0() {
    check("qwen3", "q8_0.gguf", "hf", TOL_Q8_0);
    check("qwen3", "q8_0.gguf", "llamacpp_q8_0", TOL_Q8_0_LLAMACPP);
}

#[test]
fn gemma3_safetensors_f32() {
    check("gemma3", "hf", "hf", TOL_F32);
}

#[test]
fn gemma3_gguf_f32() {
    check("gemma3", "f32.gguf", "hf", TOL_F32);
}

#[test]
fn gemma3_gguf_q8_0() {
    check("gemma3", "q8_0.gguf", "hf", TOL_Q8_0);
    check(
        "gemma3",
        "q8_0.gguf",
        "llamacpp_q8_0",
        TOL_Q8_0_LLAMACPP_GELU,
    );
}
