//! Batch invariance and sliding windows: the same tokens give the same logits however the
//! engine slices and mixes them, and windows cut attention exactly where transformers does.

mod common;

use std::sync::Arc;

use common::{GgufParts, Reference, load, max_abs, max_abs_diff, run_prompt, run_token_by_token};
use skiff_backend_cpu::Cpu;
use skiff_formats::gguf::MetaValue;
use skiff_models::{Batch, Model};

/// Max |a - b| / max |b| between two ways of computing the same logits. Different batch
/// sizes may change the summation order inside the matmul kernels, nothing else.
const TOL_INVARIANCE: f32 = 1e-5;

const FAMILIES: [&str; 5] = ["llama", "mistral", "qwen2", "qwen3", "gemma3"];

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    let rel = max_abs_diff(got, want) / max_abs(want);
    assert!(rel <= TOL_INVARIANCE, "{what}: max rel diff {rel:.3e}");
}

/// Two sequences interleaved token by token in one batch (slots 0 and 1) give each
/// sequence's logits computed alone.
#[test]
fn interleaved_sequences_equal_each_alone() {
    let cpu = Cpu::new(2);
    for family in FAMILIES {
        let reference = Reference::load(family);
        let model = load(family, "f32.gguf");
        let (a, b) = (&reference.sequences[0].1, &reference.sequences[1].1);
        let mut batch = Batch::default();
        let mut rows_of = [Vec::new(), Vec::new()];
        for i in 0..a.len().max(b.len()) {
            for (slot, seq) in [a, b].into_iter().enumerate() {
                if let Some(&tok) = seq.get(i) {
                    rows_of[slot].push(batch.tokens.len());
                    batch.tokens.push(tok);
                    batch.positions.push(i as u32);
                    batch.seq_slots.push(slot);
                }
            }
        }
        batch.logit_rows = rows_of[0].iter().chain(&rows_of[1]).copied().collect();
        let mut kv = model.new_kv_cache(2, 64);
        let mixed = model.forward(&batch, &mut kv, &cpu).expect("forward").data;
        let split = a.len() * model.n_vocab();
        assert_close(
            &mixed[..split],
            &run_prompt(&model, &cpu, a),
            &format!("{family} seq a"),
        );
        assert_close(
            &mixed[split..],
            &run_prompt(&model, &cpu, b),
            &format!("{family} seq b"),
        );
        assert_eq!((kv.slot_len(0), kv.slot_len(1)), (a.len(), b.len()));
    }
}

/// A prompt in one batch, token by token, and in two chunks all agree; decoding continues
/// from the cache.
#[test]
fn one_batch_equals_token_by_token_and_chunks() {
    let cpu = Cpu::new(2);
    for family in FAMILIES {
        let reference = Reference::load(family);
        let model = load(family, "f32.gguf");
        let tokens = &reference.sequences[0].1;
        let whole = run_prompt(&model, &cpu, tokens);

        let mut kv = model.new_kv_cache(3, 64);
        let stepwise = run_token_by_token(&model, &cpu, &mut kv, 2, tokens);
        assert_close(&stepwise, &whole, &format!("{family} token by token"));

        let cut = 11;
        let mut first = Batch::for_sequence(&tokens[..cut], 0, 1);
        first.logit_rows = (0..cut).collect();
        let mut second = Batch::for_sequence(&tokens[cut..], cut as u32, 1);
        second.logit_rows = (0..tokens.len() - cut).collect();
        let mut chunked = model
            .forward(&first, &mut kv, &cpu)
            .expect("first chunk")
            .data;
        chunked.extend(
            model
                .forward(&second, &mut kv, &cpu)
                .expect("second chunk")
                .data,
        );
        assert_close(&chunked, &whole, &format!("{family} chunks"));
    }
}

/// Truncating a slot and re-running the dropped positions reproduces them.
#[test]
fn truncate_then_rerun_reproduces_logits() {
    let cpu = Cpu::new(2);
    let reference = Reference::load("qwen3");
    let model = load("qwen3", "f32.gguf");
    let tokens = &reference.sequences[0].1;
    let whole = run_prompt(&model, &cpu, tokens);
    let mut kv = model.new_kv_cache(1, 64);
    run_token_by_token(&model, &cpu, &mut kv, 0, &tokens[..15]);
    kv.truncate_slot(0, 9).expect("shrink");
    let mut batch = Batch::for_sequence(&tokens[9..], 9, 0);
    batch.logit_rows = (0..tokens.len() - 9).collect();
    let tail = model.forward(&batch, &mut kv, &cpu).expect("forward").data;
    assert_close(&tail, &whole[9 * model.n_vocab()..], "rerun after truncate");
}

/// Mistral's GGUF carries no window; declaring one (`llama.attention.sliding_window = 8`)
/// makes the same weights match transformers with the window, on a sequence of 20 > 8,
/// and differ from the full-context result.
#[test]
fn sliding_window_matches_transformers() {
    let cpu = Cpu::new(2);
    let reference = Reference::load("mistral");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut parts = GgufParts::read("mistral", "f32.gguf");
    parts.set_meta("llama.attention.sliding_window", MetaValue::U32(8));
    let model =
        Model::load(Arc::new(parts.write(&dir.path().join("windowed.gguf")))).expect("load");
    assert_eq!(model.spec().hparams.sliding_window, Some(8));
    let (name, tokens) = &reference.sequences[0];
    assert!(tokens.len() > 8, "{name} must outrun the window");
    let got = run_prompt(&model, &cpu, tokens);
    let want = &reference.variants["hf"][0];
    let rel = max_abs_diff(&got, want) / max_abs(want);
    assert!(rel <= 1e-4, "windowed: max rel diff {rel:.3e}");
    let full = &reference.variants["hf_no_window"][0];
    assert!(
        max_abs_diff(&got, full) / max_abs(full) > 1e-2,
        "the window changed nothing"
    );
    // Inside the window both agree: the first 8 positions see no difference.
    let n = 8 * model.n_vocab();
    assert!(max_abs_diff(&got[..n], &full[..n]) / max_abs(full) <= 1e-4);
}

/// With a window of 8 on both layers, position 19 cannot see position 0 even through two
/// layers (receptive field 2 * 7 = 14 positions back): changing token 0 leaves it alone,
/// while it does change position 14's logits.
#[test]
fn window_bounds_the_receptive_field() {
    let cpu = Cpu::new(2);
    let reference = Reference::load("mistral");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut parts = GgufParts::read("mistral", "f32.gguf");
    parts.set_meta("llama.attention.sliding_window", MetaValue::U32(8));
    let model =
        Model::load(Arc::new(parts.write(&dir.path().join("windowed.gguf")))).expect("load");
    let tokens = reference.sequences[0].1.clone();
    let mut changed = tokens.clone();
    changed[0] = (tokens[0] + 1) % model.n_vocab() as u32;
    let (a, b) = (
        run_prompt(&model, &cpu, &tokens),
        run_prompt(&model, &cpu, &changed),
    );
    let row = |l: &[f32], p: usize| l[p * model.n_vocab()..(p + 1) * model.n_vocab()].to_vec();
    assert_eq!(row(&a, 19), row(&b, 19), "position 19 saw token 0");
    assert_ne!(
        row(&a, 14),
        row(&b, 14),
        "position 14 should still see token 0"
    );
}
