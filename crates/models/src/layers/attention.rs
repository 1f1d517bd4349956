//! Causal multi-head attention with grouped KV heads (GQA, Ainslie et al. 2023,
//! <https://arxiv.org/abs/2305.13245>) over a flat, multi-sequence batch.
//!
//! [`attention`] is the one entry point every architecture calls. It first stores the
//! batch's keys and values in the layer's KV cache, then lets each token attend to its own
//! sequence's positions `max(0, pos - window + 1) ..= pos`, read through a [`SeqKv`] view.
//! Because the batch continues each slot without gaps (checked by `Batch::validate`), the
//! cached positions `< pos` plus the batch's earlier tokens of that sequence are exactly
//! rows `0..pos` of the view: causality needs no mask.
//!
//! Scores are `scale * q·k`, optionally soft-capped as `cap * tanh(score / cap)` (Gemma 2),
//! then softmaxed in f32 with the maximum subtracted.

use std::sync::Mutex;

use skiff_backend_cpu::Cpu;

use crate::batch::Batch;
use crate::kv::{LayerKv, SeqKv};

/// Shape and scoring parameters of one attention layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnParams {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads; divides `n_heads`.
    pub n_kv_heads: usize,
    /// Width of a query or key head.
    pub head_dim: usize,
    /// Width of a value head.
    pub head_dim_v: usize,
    /// Multiplier on `q·k`: `1/sqrt(head_dim)`, or Gemma's `query_pre_attn_scalar^-0.5`.
    pub scale: f32,
    /// Soft cap on scores, if any.
    pub softcap: Option<f32>,
    /// Sliding window: a token sees at most this many positions, itself included.
    pub window: Option<usize>,
}

/// The projected queries, keys and values of a batch.
#[derive(Clone, Copy, Debug)]
pub struct Qkv<'a> {
    /// `[n_tokens, n_heads * head_dim]`, RoPE applied.
    pub q: &'a [f32],
    /// `[n_tokens, n_kv_heads * head_dim]`, RoPE applied.
    pub k: &'a [f32],
    /// `[n_tokens, n_kv_heads * head_dim_v]`.
    pub v: &'a [f32],
}

/// Appends the batch's keys and values to `kv` and returns the attention output,
/// `[n_tokens, n_heads * head_dim_v]`.
pub fn attention(
    cpu: &Cpu,
    p: &AttnParams,
    qkv: Qkv<'_>,
    mut kv: LayerKv<'_>,
    batch: &Batch,
) -> Vec<f32> {
    let k_dim = p.n_kv_heads * p.head_dim;
    let v_dim = p.n_kv_heads * p.head_dim_v;
    for (t, (&slot, &pos)) in batch.seq_slots.iter().zip(&batch.positions).enumerate() {
        let (k, v) = (
            &qkv.k[t * k_dim..(t + 1) * k_dim],
            &qkv.v[t * v_dim..(t + 1) * v_dim],
        );
        kv.write(slot, pos as usize, k, v);
    }
    let kv = &kv;
    let n_tokens = batch.n_tokens();
    let mut out = vec![0.0f32; n_tokens * p.n_heads * p.head_dim_v];
    // One task per (token, head); each owns its output chunk, so the locks never contend.
    let chunks: Vec<Mutex<&mut [f32]>> = out.chunks_mut(p.head_dim_v).map(Mutex::new).collect();
    let group = p.n_heads / p.n_kv_heads;
    cpu.parallel_for(n_tokens * p.n_heads, &|task| {
        let (t, head) = (task / p.n_heads, task % p.n_heads);
        let pos = batch.positions[t] as usize;
        let seq = kv.seq(batch.seq_slots[t], pos + 1);
        let q = &qkv.q[(t * p.n_heads + head) * p.head_dim..][..p.head_dim];
        let mut dst = chunks[task]
            .lock()
            .expect("each chunk is locked by one task only");
        attend_one(p, q, seq, pos, head / group, &mut dst);
    });
    drop(chunks);
    out
}

/// One query head of the token at `pos` against KV head `kv_head` of `seq`.
fn attend_one(
    p: &AttnParams,
    q: &[f32],
    seq: SeqKv<'_>,
    pos: usize,
    kv_head: usize,
    dst: &mut [f32],
) {
    let first = match p.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
    let k_off = kv_head * p.head_dim;
    let mut scores: Vec<f32> = (first..=pos)
        .map(|j| {
            let k = &seq.key(j)[k_off..k_off + p.head_dim];
            let s = p.scale * q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>();
            match p.softcap {
                Some(cap) => cap * (s / cap).tanh(),
                None => s,
            }
        })
        .collect();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for s in &mut scores {
        *s = (*s - max).exp();
        sum += *s;
    }
    dst.fill(0.0);
    let v_off = kv_head * p.head_dim_v;
    for (j, s) in (first..=pos).zip(&scores) {
        let w = s / sum;
        let v = &seq.value(j)[v_off..v_off + p.head_dim_v];
        dst.iter_mut().zip(v).for_each(|(d, x)| *d += w * x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvCache;
    use crate::kv::tests::tiny_hparams;

    /// Naive softmax attention of one query head over explicit key/value rows.
    fn naive(q: &[f32], keys: &[&[f32]], values: &[&[f32]], p: &AttnParams) -> Vec<f32> {
        let scores: Vec<f32> = keys
            .iter()
            .map(|k| {
                let s = p.scale * q.iter().zip(*k).map(|(a, b)| a * b).sum::<f32>();
                p.softcap.map_or(s, |c| c * (s / c).tanh())
            })
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let w: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
        let sum: f32 = w.iter().sum();
        (0..values[0].len())
            .map(|d| w.iter().zip(values).map(|(w, v)| w * v[d]).sum::<f32>() / sum)
            .collect()
    }

    /// Two query heads sharing one KV head (GQA), a window of 2 and a soft cap: every
    /// output row equals the naive computation over exactly the visible positions.
    #[test]
    fn gqa_window_softcap_match_naive() {
        let hp = tiny_hparams(); // 2 heads, 1 kv head, head_dim 4
        let p = AttnParams {
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 4,
            head_dim_v: 4,
            scale: 0.5,
            softcap: Some(1.5),
            window: Some(2),
        };
        let n_tokens = 3;
        let val = |i: usize| ((i * 7 + 3) % 11) as f32 / 5.0 - 1.0;
        let q: Vec<f32> = (0..n_tokens * 8).map(val).collect();
        let k: Vec<f32> = (0..n_tokens * 4).map(|i| val(i + 5)).collect();
        let v: Vec<f32> = (0..n_tokens * 4).map(|i| val(i + 9)).collect();
        let batch = Batch::for_sequence(&[1, 2, 3], 0, 0);
        let mut kv = KvCache::new(&hp, 1, 8);
        let cpu = Cpu::new(2);
        let out = attention(
            &cpu,
            &p,
            Qkv {
                q: &q,
                k: &k,
                v: &v,
            },
            kv.layer(0),
            &batch,
        );
        for t in 0..n_tokens {
            let visible: Vec<usize> = (t.saturating_sub(1)..=t).collect();
            let keys: Vec<&[f32]> = visible.iter().map(|&j| &k[j * 4..j * 4 + 4]).collect();
            let values: Vec<&[f32]> = visible.iter().map(|&j| &v[j * 4..j * 4 + 4]).collect();
            for head in 0..2 {
                let want = naive(&q[(t * 2 + head) * 4..][..4], &keys, &values, &p);
                let got = &out[(t * 2 + head) * 4..][..4];
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-6,
                        "token {t} head {head}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }
}
