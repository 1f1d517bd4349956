//! Causal multi-head attention with grouped KV heads (GQA, Ainslie et al. 2023,
//! <https://arxiv.org/abs/2305.13245>) over a flat, multi-sequence batch and a paged KV cache.
//!
//! [`attention`] is the one entry point every architecture calls. It first stores the
//! batch's keys and values in the layer's KV cache, then lets each token attend to its own
//! sequence's positions `max(0, pos - window + 1) ..= pos`, read block by block through the
//! slot's block table ([`SeqKv`]). Because the batch continues each slot without gaps
//! (checked by `Batch::validate`), the cached positions `< pos` plus the batch's earlier
//! tokens of that sequence are exactly rows `0..pos` of the view: causality needs no mask.
//!
//! Scores are `scale * q·k`, optionally soft-capped as `cap * tanh(score / cap)` (Gemma 2),
//! then softmaxed in f32. The softmax is computed online, one cache block at a time (the
//! running maximum and sum of flash attention, Dao et al. 2022,
//! <https://arxiv.org/abs/2205.14135>): the output accumulates `exp(s - max) · v` and is
//! rescaled whenever the maximum grows, then divided by the sum at the end.
//!
//! Work is one task per (token, KV head): the task runs every query head of the group
//! against each key and value row once, with the backend's SIMD kernels reading f32, f16 or
//! q8_0 rows directly. Scratch lives in a per-thread buffer, so the decode path allocates
//! nothing per token or head.

use std::cell::RefCell;
use std::sync::Mutex;

use skiff_backend_cpu::Cpu;
use skiff_backend_cpu::attn::AttnKernels;

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

thread_local! {
    /// Per-thread scores and softmax state of one task; grows to the largest group and block
    /// size seen, then is reused.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
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
    let kernels = cpu.attn_kernels(kv.row_type());
    let n_tokens = batch.n_tokens();
    let group = p.n_heads / p.n_kv_heads;
    let mut out = vec![0.0f32; n_tokens * p.n_heads * p.head_dim_v];
    // One task per (token, KV head); each owns its group's output chunk, so the locks never
    // contend.
    let chunks: Vec<Mutex<&mut [f32]>> = out
        .chunks_mut(group * p.head_dim_v)
        .map(Mutex::new)
        .collect();
    cpu.parallel_for(n_tokens * p.n_kv_heads, &|task| {
        let (t, kv_head) = (task / p.n_kv_heads, task % p.n_kv_heads);
        let pos = batch.positions[t] as usize;
        let seq = kv.seq(batch.seq_slots[t]);
        let q = &qkv.q[(t * p.n_heads + kv_head * group) * p.head_dim..][..group * p.head_dim];
        let mut dst = chunks[task]
            .lock()
            .expect("each chunk is locked by one task only");
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let task = Task {
                p,
                kernels: &kernels,
                seq,
                kv_head,
            };
            task.attend(q, pos, &mut scratch, &mut dst);
        });
    });
    drop(chunks);
    out
}

/// The query heads of one KV head, for one token.
struct Task<'a> {
    p: &'a AttnParams,
    kernels: &'a AttnKernels,
    seq: SeqKv<'a>,
    kv_head: usize,
}

impl Task<'_> {
    /// Attends the group's queries `q` (`[group, head_dim]`) of the token at `pos` over its
    /// visible positions, writing `[group, head_dim_v]` into `dst`.
    fn attend(&self, q: &[f32], pos: usize, scratch: &mut Vec<f32>, dst: &mut [f32]) {
        let (p, k) = (self.p, self.kernels);
        let group = q.len() / p.head_dim;
        let block_size = self.seq.block_size();
        let need = group * (block_size + 2);
        if scratch.len() < need {
            scratch.resize(need, 0.0);
        }
        let (scores, state) = scratch.split_at_mut(group * block_size);
        let (max, sum) = state[..2 * group].split_at_mut(group);
        max.fill(f32::NEG_INFINITY);
        sum.fill(0.0);
        dst.fill(0.0);
        let first = match p.window {
            Some(w) => (pos + 1).saturating_sub(w),
            None => 0,
        };
        let mut start = first;
        while start <= pos {
            let end = ((start / block_size + 1) * block_size).min(pos + 1);
            let n = end - start;
            let scores = &mut scores[..group * n];
            (k.key_dot)(
                q,
                p.head_dim,
                self.seq.key_rows(self.kv_head, start, n),
                scores,
            );
            self.score_transform(scores);
            for i in 0..group {
                let row = &mut scores[i * n..(i + 1) * n];
                let block_max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                if block_max > max[i] {
                    // exp(-inf) = 0 on the first block: nothing accumulated yet.
                    let rescale = (max[i] - block_max).exp();
                    sum[i] *= rescale;
                    dst[i * p.head_dim_v..(i + 1) * p.head_dim_v]
                        .iter_mut()
                        .for_each(|d| *d *= rescale);
                    max[i] = block_max;
                }
                sum[i] += (k.exp_sum)(row, max[i]);
            }
            let values = self.seq.value_rows(self.kv_head, start, n);
            (k.value_axpy)(scores, values, p.head_dim_v, dst);
            start = end;
        }
        for (i, out) in dst.chunks_exact_mut(p.head_dim_v).enumerate() {
            let inv = 1.0 / sum[i];
            out.iter_mut().for_each(|d| *d *= inv);
        }
    }

    /// `scale * s`, then the soft cap if any.
    fn score_transform(&self, scores: &mut [f32]) {
        let scale = self.p.scale;
        match self.p.softcap {
            Some(cap) => scores
                .iter_mut()
                .for_each(|s| *s = cap * (*s * scale / cap).tanh()),
            None => scores.iter_mut().for_each(|s| *s *= scale),
        }
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
