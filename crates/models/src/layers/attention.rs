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
//! Work is one task per (token, KV head, range of up to [`SPLIT`] positions): the task runs
//! every query head of the group against each key and value row once, with the backend's
//! SIMD kernels reading f32, f16 or q8_0 rows directly, and leaves an unnormalized partial
//! result (accumulators, maximum, sum) that [`merge`] combines. Scores live in a per-thread
//! buffer, and the task plan, partial results and output in the caller's [`AttnScratch`], so
//! once they have grown to the batch a call allocates nothing.

use std::cell::RefCell;

use skiff_backend_cpu::Cpu;
use skiff_backend_cpu::attn::{AttnKernels, prefetch_rows};

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
    /// Per-thread scores of one task; grows to the largest group and block size seen, then
    /// is reused.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Positions one task attends at most. A token's visible range is cut at multiples of this,
/// so a long-context decode step spreads over the threads (flash-decoding's split of the
/// key axis); the cut points depend only on positions, never on the thread count, so results
/// do not either.
const SPLIT: usize = 256;

/// Reusable buffers of [`attention`]: they grow to the largest batch seen, then a call
/// allocates nothing.
#[derive(Debug, Default)]
pub struct AttnScratch {
    /// The plan's first task of each token.
    task_start: Vec<usize>,
    /// One unnormalized [`Partial`] per task.
    partials: Vec<f32>,
    /// The output, `[n_tokens, n_heads * head_dim_v]`.
    out: Vec<f32>,
}

impl AttnScratch {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.task_start.capacity() * std::mem::size_of::<usize>()
            + (self.partials.capacity() + self.out.capacity()) * std::mem::size_of::<f32>()
    }
}

/// Appends the batch's keys and values to `kv` and returns the attention output,
/// `[n_tokens, n_heads * head_dim_v]`, held in `s`.
pub fn attention<'s>(
    cpu: &Cpu,
    p: &AttnParams,
    qkv: Qkv<'_>,
    mut kv: LayerKv<'_>,
    batch: &Batch,
    s: &'s mut AttnScratch,
) -> &'s [f32] {
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
    let group = p.n_heads / p.n_kv_heads;
    let plan = Plan::new(p, batch, std::mem::take(&mut s.task_start));
    let stride = Partial::stride(group, p.head_dim_v);
    // Every task writes all of its partial (`Task::attend`), so stale values never show.
    let partials = super::sized(&mut s.partials, plan.n_tasks() * stride);
    cpu.parallel_chunks_mut(partials, stride, &|task, dst| {
        let (t, kv_head, range) = plan.task(task);
        let q = &qkv.q[(t * p.n_heads + kv_head * group) * p.head_dim..][..group * p.head_dim];
        let job = Task {
            p,
            kernels: &kernels,
            seq: kv.seq(batch.seq_slots[t]),
            kv_head,
        };
        SCRATCH.with(|scratch| job.attend(q, range, &mut scratch.borrow_mut(), dst));
    });
    let out = super::sized(&mut s.out, batch.n_tokens() * p.n_heads * p.head_dim_v);
    out.fill(0.0); // `merge` accumulates
    for (tk, dst) in out.chunks_exact_mut(group * p.head_dim_v).enumerate() {
        let (t, kv_head) = (tk / p.n_kv_heads, tk % p.n_kv_heads);
        let tasks = plan.tasks_of(t, kv_head);
        merge(
            &partials[tasks.start * stride..tasks.end * stride],
            group,
            p.head_dim_v,
            dst,
        );
    }
    s.task_start = plan.task_start;
    out
}

/// How the batch's (token, KV head) pairs are cut into tasks over position ranges.
struct Plan<'a> {
    batch: &'a Batch,
    window: Option<usize>,
    n_kv_heads: usize,
    /// `task_start[t]`: the first task of token `t`; `task_start[n_tokens]` is the total.
    task_start: Vec<usize>,
}

impl<'a> Plan<'a> {
    /// The plan of `batch`, its task starts kept in `task_start` (cleared first).
    fn new(p: &AttnParams, batch: &'a Batch, mut task_start: Vec<usize>) -> Plan<'a> {
        task_start.clear();
        let mut plan = Plan {
            batch,
            window: p.window,
            n_kv_heads: p.n_kv_heads,
            task_start,
        };
        let mut total = 0;
        plan.task_start.push(0);
        for t in 0..batch.n_tokens() {
            total += plan.n_splits(t) * p.n_kv_heads;
            plan.task_start.push(total);
        }
        plan
    }

    fn n_tasks(&self) -> usize {
        self.task_start.last().copied().unwrap_or(0)
    }

    /// Visible positions of token `t`: `first..=pos`.
    fn visible(&self, t: usize) -> (usize, usize) {
        let pos = self.batch.positions[t] as usize;
        let first = self.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        (first, pos)
    }

    fn n_splits(&self, t: usize) -> usize {
        let (first, pos) = self.visible(t);
        pos / SPLIT - first / SPLIT + 1
    }

    /// Task `task`'s token, KV head and inclusive position range.
    fn task(&self, task: usize) -> (usize, usize, (usize, usize)) {
        let t = self.task_start.partition_point(|&s| s <= task) - 1;
        let n_splits = self.n_splits(t);
        let rest = task - self.task_start[t];
        let (kv_head, split) = (rest / n_splits, rest % n_splits);
        let (first, pos) = self.visible(t);
        let base = (first / SPLIT + split) * SPLIT;
        (t, kv_head, (base.max(first), (base + SPLIT - 1).min(pos)))
    }

    /// The tasks of (token `t`, `kv_head`), consecutive.
    fn tasks_of(&self, t: usize, kv_head: usize) -> std::ops::Range<usize> {
        let n_splits = self.n_splits(t);
        let start = self.task_start[t] + kv_head * n_splits;
        debug_assert!(kv_head < self.n_kv_heads);
        start..start + n_splits
    }
}

/// Layout of one task's unnormalized result: `[group, head_dim_v]` accumulators, then the
/// running maximum and sum of each query.
struct Partial;

impl Partial {
    fn stride(group: usize, head_dim_v: usize) -> usize {
        group * (head_dim_v + 2)
    }
}

/// Combines the partial results of one (token, KV head) over consecutive ranges into the
/// normalized output `dst` (`[group, head_dim_v]`).
fn merge(partials: &[f32], group: usize, head_dim_v: usize, dst: &mut [f32]) {
    let stride = Partial::stride(group, head_dim_v);
    let acc_len = group * head_dim_v;
    for i in 0..group {
        let max = partials
            .chunks_exact(stride)
            .map(|part| part[acc_len + i])
            .fold(f32::NEG_INFINITY, f32::max);
        let out = &mut dst[i * head_dim_v..(i + 1) * head_dim_v];
        let mut sum = 0.0f32;
        for part in partials.chunks_exact(stride) {
            let factor = (part[acc_len + i] - max).exp();
            sum += part[acc_len + group + i] * factor;
            let acc = &part[i * head_dim_v..(i + 1) * head_dim_v];
            out.iter_mut().zip(acc).for_each(|(o, a)| *o += a * factor);
        }
        let inv = 1.0 / sum;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

/// The query heads of one KV head, for one token and one range of positions.
struct Task<'a> {
    p: &'a AttnParams,
    kernels: &'a AttnKernels,
    seq: SeqKv<'a>,
    kv_head: usize,
}

impl Task<'_> {
    /// Attends the group's queries `q` (`[group, head_dim]`) over positions
    /// `first..=last`, writing the unnormalized [`Partial`] into `dst`.
    fn attend(
        &self,
        q: &[f32],
        (first, last): (usize, usize),
        scratch: &mut Vec<f32>,
        dst: &mut [f32],
    ) {
        let (p, k) = (self.p, self.kernels);
        let group = q.len() / p.head_dim;
        let block_size = self.seq.block_size();
        if scratch.len() < group * block_size {
            scratch.resize(group * block_size, 0.0);
        }
        let (acc, state) = dst.split_at_mut(group * p.head_dim_v);
        let (max, sum) = state.split_at_mut(group);
        max.fill(f32::NEG_INFINITY);
        sum.fill(0.0);
        acc.fill(0.0);
        let mut start = first;
        while start <= last {
            let end = ((start / block_size + 1) * block_size).min(last + 1);
            let n = end - start;
            if end <= last {
                // The next block's rows load while this one is computed.
                let n_next = (end + block_size).min(last + 1) - end;
                prefetch_rows(self.seq.key_rows(self.kv_head, end, n_next));
                prefetch_rows(self.seq.value_rows(self.kv_head, end, n_next));
            }
            let scores = &mut scratch[..group * n];
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
                    acc[i * p.head_dim_v..(i + 1) * p.head_dim_v]
                        .iter_mut()
                        .for_each(|d| *d *= rescale);
                    max[i] = block_max;
                }
                sum[i] += (k.exp_sum)(row, max[i]);
            }
            let values = self.seq.value_rows(self.kv_head, start, n);
            (k.value_axpy)(scores, values, p.head_dim_v, acc);
            start = end;
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

    /// Runs `n_tokens` random tokens of one sequence through [`attention`] (F32 cache, block
    /// size 16) and checks every output row against the naive computation over exactly the
    /// visible positions.
    fn check_against_naive(p: &AttnParams, n_tokens: usize) {
        let hp = tiny_hparams(); // 2 heads, 1 kv head, head_dim 4
        let val = |i: usize| ((i * 7 + 3) % 11) as f32 / 5.0 - 1.0;
        let q: Vec<f32> = (0..n_tokens * 8).map(val).collect();
        let k: Vec<f32> = (0..n_tokens * 4).map(|i| val(i + 5)).collect();
        let v: Vec<f32> = (0..n_tokens * 4).map(|i| val(i * 3 + 9)).collect();
        let tokens = vec![1; n_tokens];
        let batch = Batch::for_sequence(&tokens, 0, 0);
        let mut kv = KvCache::new(&hp, 1, n_tokens);
        let cpu = Cpu::new(2);
        let qkv = Qkv {
            q: &q,
            k: &k,
            v: &v,
        };
        let mut scratch = AttnScratch::default();
        let out = attention(&cpu, p, qkv, kv.layer(0), &batch, &mut scratch);
        for t in 0..n_tokens {
            let first = p.window.map_or(0, |w| (t + 1).saturating_sub(w));
            let keys: Vec<&[f32]> = (first..=t).map(|j| &k[j * 4..j * 4 + 4]).collect();
            let values: Vec<&[f32]> = (first..=t).map(|j| &v[j * 4..j * 4 + 4]).collect();
            for head in 0..2 {
                let want = naive(&q[(t * 2 + head) * 4..][..4], &keys, &values, p);
                let got = &out[(t * 2 + head) * 4..][..4];
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "token {t} head {head}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    const PARAMS: AttnParams = AttnParams {
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 4,
        head_dim_v: 4,
        scale: 0.5,
        softcap: None,
        window: None,
    };

    /// Two query heads sharing one KV head (GQA), a window of 2 and a soft cap.
    #[test]
    fn gqa_window_softcap_match_naive() {
        let p = AttnParams {
            softcap: Some(1.5),
            window: Some(2),
            ..PARAMS
        };
        check_against_naive(&p, 3);
    }

    /// Contexts longer than [`SPLIT`] are cut into several tasks and merged; with and without
    /// a window that straddles the cut points.
    #[test]
    fn long_contexts_split_and_merge_exactly() {
        check_against_naive(&PARAMS, 2 * SPLIT + 37);
        let windowed = AttnParams {
            window: Some(SPLIT + 5),
            ..PARAMS
        };
        check_against_naive(&windowed, 2 * SPLIT + 37);
    }
}
