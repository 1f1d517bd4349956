//! Greedy decoding is token-exact against transformers on every family and source with
//! F32 weights: 8 prompts of 4..11 tokens, 48 new tokens each (RELIABILITY.md's tiny-model
//! correctness check).
//!
//! The 8 sequences run together, as the engine runs them: one batch prefills every prompt
//! (mixed lengths, one KV slot each), then each step decodes one token for every sequence
//! in one batch. The reference (`greedy` in `reference.json`, from
//! `tools/reference/make_model_fixtures.py`) recomputes every step from scratch without a
//! cache, and keeps only prompts whose path has no near-tie (top-2 margin > 1e-3, far above
//! the ~1e-5 float differences between the two implementations).

mod common;

use common::{argmax_rows, fixture, load};
use skiff_backend_cpu::Cpu;
use skiff_models::{Batch, Model};

struct Run {
    prompt: Vec<u32>,
    tokens: Vec<u32>,
}

fn runs(family: &str, variant: &str) -> Vec<Run> {
    let text = std::fs::read_to_string(fixture(family, "reference.json")).expect("reference.json");
    let index: serde_json::Value = serde_json::from_str(&text).expect("parses");
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|t| t.as_u64().expect("id") as u32)
            .collect()
    };
    let runs = index["greedy"][variant].as_array().expect("greedy runs");
    runs.iter()
        .map(|r| Run {
            prompt: ids(&r["prompt"]),
            tokens: ids(&r["tokens"]),
        })
        .collect()
}

/// Decodes every run's continuation, all sequences batched together.
fn decode_all(model: &Model, runs: &[Run]) -> Vec<Vec<u32>> {
    let cpu = Cpu::new(2);
    let mut kv = model.new_kv_cache(runs.len(), 64);
    let mut prefill = Batch::default();
    for (slot, run) in runs.iter().enumerate() {
        for (pos, &tok) in run.prompt.iter().enumerate() {
            prefill.tokens.push(tok);
            prefill.positions.push(pos as u32);
            prefill.seq_slots.push(slot);
        }
        prefill.logit_rows.push(prefill.tokens.len() - 1);
    }
    let logits = model
        .forward(&prefill, &mut kv, &cpu)
        .expect("prefill")
        .data;
    let mut next: Vec<u32> = argmax_rows(&logits, model.n_vocab())
        .into_iter()
        .map(|t| t as u32)
        .collect();
    let mut out: Vec<Vec<u32>> = next.iter().map(|&t| vec![t]).collect();
    let n_new = runs[0].tokens.len();
    for _ in 1..n_new {
        let batch = Batch {
            tokens: next.clone(),
            positions: (0..runs.len())
                .map(|slot| kv.slot_len(slot) as u32)
                .collect(),
            seq_slots: (0..runs.len()).collect(),
            logit_rows: (0..runs.len()).collect(),
        };
        let logits = model.forward(&batch, &mut kv, &cpu).expect("decode").data;
        next = argmax_rows(&logits, model.n_vocab())
            .into_iter()
            .map(|t| t as u32)
            .collect();
        out.iter_mut().zip(&next).for_each(|(seq, &t)| seq.push(t));
    }
    out
}

fn check(family: &str, source: &str, variant: &str) {
    let runs = runs(family, variant);
    assert_eq!(runs.len(), 8, "{family}: fixture has 8 prompts");
    let model = load(family, source);
    for (i, (got, run)) in decode_all(&model, &runs).iter().zip(&runs).enumerate() {
        assert_eq!(
            got, &run.tokens,
            "{family}/{source} prompt {i} {:?}",
            run.prompt
        );
    }
}

#[test]
fn llama_greedy() {
    check("llama", "hf", "hf");
    check("llama", "f32.gguf", "hf");
}

#[test]
fn mistral_greedy() {
    check("mistral", "hf", "hf");
    check("mistral", "f32.gguf", "hf_no_window");
}

#[test]
fn qwen2_greedy() {
    check("qwen2", "hf", "hf");
    check("qwen2", "f32.gguf", "hf");
}

#[test]
fn qwen3_greedy() {
    check("qwen3", "hf", "hf");
    check("qwen3", "f32.gguf", "hf");
}

#[test]
fn gemma3_greedy() {
    check("gemma3", "hf", "hf");
    check("gemma3", "f32.gguf", "hf");
}
