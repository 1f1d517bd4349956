//! A decode step makes no heap allocation once its buffers have grown: the forward pass's
//! activations, the attention's plan and partial results, the batch and the logits are all
//! reused. The counter sees the calling thread only, so the model runs on one thread (the
//! pool then runs every job inline), where every buffer the step touches lives.

mod common;

use skiff_backend_cpu::Cpu;
use skiff_models::{Batch, Logits, Model};

/// Prefills three sequences, then decodes them together; returns the allocations made by
/// the decode steps after the first two (which may still grow buffers).
fn decode_allocations(model: &Model) -> u64 {
    let cpu = Cpu::new(1);
    let n_seqs = 3;
    let mut kv = model.new_kv_cache(n_seqs, 64);
    let mut batch = Batch::default();
    for slot in 0..n_seqs {
        for pos in 0..5 + slot {
            batch.tokens.push((7 * pos + slot) as u32 % 50 + 1);
            batch.positions.push(pos as u32);
            batch.seq_slots.push(slot);
        }
        batch.logit_rows.push(batch.tokens.len() - 1);
    }
    let mut logits = Logits::default();
    model
        .forward_into(&batch, &mut kv, &cpu, &mut logits)
        .expect("prefill");
    let mut step = |batch: &mut Batch, logits: &mut Logits| {
        batch.clear();
        for slot in 0..n_seqs {
            let row = logits.row(slot).expect("one logits row per sequence");
            let next = (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best });
            batch.tokens.push(next as u32);
            batch.positions.push(kv.slot_len(slot) as u32);
            batch.seq_slots.push(slot);
            batch.logit_rows.push(slot);
        }
        model
            .forward_into(batch, &mut kv, &cpu, logits)
            .expect("decode");
        assert_eq!(logits.n_rows(), n_seqs);
    };
    step(&mut batch, &mut logits);
    step(&mut batch, &mut logits);
    allocation_counter::measure(|| {
        for _ in 0..8 {
            step(&mut batch, &mut logits);
        }
    })
    .count_total
}

#[test]
fn llama_decode_steps_do_not_allocate() {
    let model = common::load("llama", "q8_0.gguf");
    assert_eq!(decode_allocations(&model), 0);
}

#[test]
fn gemma3_decode_steps_do_not_allocate() {
    let model = common::load("gemma3", "q8_0.gguf");
    assert_eq!(decode_allocations(&model), 0);
}

/// The counter does see this thread's allocations (so a zero above means something).
#[test]
fn the_counter_sees_an_allocating_forward_pass() {
    let model = common::load("llama", "q8_0.gguf");
    let cpu = Cpu::new(1);
    let mut kv = model.new_kv_cache(1, 64);
    let batch = Batch::for_sequence(&[1, 2, 3], 0, 0);
    let info = allocation_counter::measure(|| {
        model.forward(&batch, &mut kv, &cpu).expect("forward");
    });
    assert!(info.count_total > 0, "a fresh Logits is allocated");
}
