//! The paged KV cache end to end on the tiny fixture models: block tables in any order give
//! bit-identical logits, slots can share prefix blocks (with a copy-on-write of a partly
//! filled block), f16 and q8_0 caches stay close to f32, and positions outside a slot's
//! table are refused before any compute.

mod common;

use common::{Reference, load, max_abs, max_abs_diff, run_token_by_token};
use skiff_backend_cpu::Cpu;
use skiff_models::kv::{KvConfig, KvDtype};
use skiff_models::{Batch, Error, KvCache, Model};

const FAMILIES: [&str; 5] = ["llama", "mistral", "qwen2", "qwen3", "gemma3"];

/// Max |a - b| / max |b| of the logits from an f16 cache against an f32 cache. f16 keeps 11
/// significant bits of each key and value (relative error ≤ 2^-11 per element).
const TOL_F16: f32 = 2e-3;
/// The same for q8_0: 8-bit quants with one scale per 32 values (error ≤ amax/254). The
/// tiny random-weight fixtures amplify it; measured at most 2.7e-2 (qwen3), f16 at most 9.6e-4.
const TOL_Q8_0: f32 = 5e-2;

/// A paged cache for `model` with `n_blocks` blocks of `block_size` positions.
fn paged(
    model: &Model,
    n_slots: usize,
    block_size: usize,
    n_blocks: usize,
    dtype: KvDtype,
) -> KvCache {
    let cfg = KvConfig {
        block_size,
        n_blocks,
        dtype,
    };
    KvCache::paged(&model.spec().hparams, n_slots, 64, cfg).expect("valid config")
}

/// Runs `tokens` as a prompt of `cut` tokens and then one token per call, returning the
/// logits of every position.
fn prompt_then_decode(
    model: &Model,
    cpu: &Cpu,
    kv: &mut KvCache,
    slot: usize,
    tokens: &[u32],
    cut: usize,
) -> Vec<f32> {
    let mut batch = Batch::for_sequence(&tokens[..cut], 0, slot);
    batch.logit_rows = (0..cut).collect();
    let mut out = model.forward(&batch, kv, cpu).expect("prompt").data;
    for (pos, &token) in tokens.iter().enumerate().skip(cut) {
        let batch = Batch::for_sequence(&[token], pos as u32, slot);
        out.extend(model.forward(&batch, kv, cpu).expect("decode").data);
    }
    out
}

/// The same blocks in scrambled order (and interleaved with another slot's) give exactly
/// the logits of an in-order table.
#[test]
fn scrambled_block_tables_are_bit_identical() {
    let cpu = Cpu::new(2);
    for family in FAMILIES {
        let reference = Reference::load(family);
        let model = load(family, "f32.gguf");
        let tokens = &reference.sequences[0].1; // 20 tokens: 5 blocks of 4
        let mut in_order = paged(&model, 1, 4, 5, KvDtype::F32);
        in_order
            .set_block_table(0, &[0, 1, 2, 3, 4])
            .expect("table");
        let want = prompt_then_decode(&model, &cpu, &mut in_order, 0, tokens, 7);

        let mut scrambled = paged(&model, 2, 4, 12, KvDtype::F32);
        scrambled
            .set_block_table(0, &[9, 2, 11, 0, 6])
            .expect("table");
        scrambled
            .set_block_table(1, &[1, 3, 4, 5, 7])
            .expect("table");
        let other = &reference.sequences[1].1;
        prompt_then_decode(&model, &cpu, &mut scrambled, 1, other, 3);
        let got = prompt_then_decode(&model, &cpu, &mut scrambled, 0, tokens, 7);
        assert!(got == want, "{family}: scrambled table changed the logits");
    }
}

/// A second slot mapping the first one's full prefix blocks, plus a private copy of the
/// partly filled block, continues exactly as the first slot did.
#[test]
fn slots_share_prefix_blocks() {
    let cpu = Cpu::new(2);
    for family in FAMILIES {
        let reference = Reference::load(family);
        let model = load(family, "f32.gguf");
        let tokens = &reference.sequences[0].1;
        let n_vocab = model.n_vocab();
        let mut kv = paged(&model, 2, 4, 12, KvDtype::F32);
        kv.set_block_table(0, &[3, 8, 1, 10, 5]).expect("table");
        let first = run_token_by_token(&model, &cpu, &mut kv, 0, tokens);

        let shared = 14; // blocks 3, 8, 1 full; block 10 holds 2 rows
        kv.copy_block(10, 4).expect("copy");
        kv.set_block_table(1, &[3, 8, 1, 4, 0]).expect("table");
        kv.set_slot_len(1, shared).expect("within the table");
        let mut second = Vec::new();
        for (pos, &token) in tokens.iter().enumerate().skip(shared) {
            let batch = Batch::for_sequence(&[token], pos as u32, 1);
            second.extend(model.forward(&batch, &mut kv, &cpu).expect("decode").data);
        }
        assert!(
            second == first[shared * n_vocab..],
            "{family}: shared prefix changed the logits"
        );
    }
}

/// f16 and q8_0 caches give logits close to the f32 cache's, for a prompt and for decoding.
#[test]
fn f16_and_q8_0_caches_stay_close_to_f32() {
    let cpu = Cpu::new(2);
    for family in FAMILIES {
        let reference = Reference::load(family);
        let model = load(family, "f32.gguf");
        let hp = &model.spec().hparams;
        for (_, tokens) in &reference.sequences {
            let cut = tokens.len() / 2;
            let mut f32_kv = KvCache::new(hp, 1, 64);
            let want = prompt_then_decode(&model, &cpu, &mut f32_kv, 0, tokens, cut);
            for (dtype, tol) in [(KvDtype::F16, TOL_F16), (KvDtype::Q8_0, TOL_Q8_0)] {
                let mut kv = KvCache::with_dtype(hp, 1, 64, dtype);
                let got = prompt_then_decode(&model, &cpu, &mut kv, 0, tokens, cut);
                let rel = max_abs_diff(&got, &want) / max_abs(&want);
                eprintln!("{family} {dtype}: max rel diff {rel:.3e}");
                assert!(
                    rel <= tol,
                    "{family} {dtype}: max rel diff {rel:.3e} > {tol:.0e}"
                );
            }
        }
    }
}

/// A position beyond the slot's block table is a typed error before any compute; the
/// slot's length is unchanged and the batch runs once the table grows.
#[test]
fn positions_outside_the_table_are_refused() {
    let cpu = Cpu::new(1);
    let reference = Reference::load("llama");
    let model = load("llama", "f32.gguf");
    let tokens = &reference.sequences[1].1[..6];
    let mut kv = paged(&model, 1, 4, 4, KvDtype::F16);
    kv.set_block_table(0, &[2]).expect("table");
    let batch = Batch::for_sequence(tokens, 0, 0);
    let err = model
        .forward(&batch, &mut kv, &cpu)
        .expect_err("beyond the table");
    assert!(
        matches!(
            err,
            Error::KvCapacity {
                slot: 0,
                pos: 4,
                capacity: 4
            }
        ),
        "{err}"
    );
    assert_eq!(kv.slot_len(0), 0);
    kv.set_block_table(0, &[2, 0]).expect("table");
    model.forward(&batch, &mut kv, &cpu).expect("fits now");
    assert_eq!(kv.slot_len(0), 6);
}
