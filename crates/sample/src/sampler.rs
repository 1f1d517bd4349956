//! [`Sampler`]: one sequence's sampling state (parameters plus a seeded RNG).
//!
//! # Log-probabilities
//!
//! [`Sampled::logprob`] and [`Sampled::top_logprobs`] follow vLLM's
//! `logprobs_mode = "processed_logprobs"`: the log-softmax of the distribution the token was
//! actually drawn from.
//! - Temperature > 0: the logits after bias and penalties, truncated by top-k/top-p/min-p
//!   (dropped tokens have probability 0 and are never listed), divided by the temperature.
//! - Temperature 0 (greedy): the log-softmax over the whole vocabulary of the logits after
//!   bias and penalties, at temperature 1. (A literal "processed" greedy distribution would
//!   put probability 1 on the argmax, which says nothing.)

use crate::error::SampleError;
use crate::params::SamplingParams;
use crate::penalties::{apply_logit_bias, apply_penalties};
use crate::rng::{Xoshiro256StarStar, fresh_seed};
use crate::truncate::{Candidate, by_rank, min_p, sort_by_rank, top_k, top_p};

/// The outcome of one draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampled {
    /// The chosen token id.
    pub token: u32,
    /// Natural-log probability of `token` (see the module docs for which distribution).
    pub logprob: f32,
    /// The `params.top_logprobs` most likely tokens with their log-probabilities, best
    /// first, ties to the lowest id. Empty when `top_logprobs` is 0.
    pub top_logprobs: Vec<(u32, f32)>,
}

/// Draws tokens for one sequence. Deterministic given its seed and inputs.
#[derive(Clone, Debug)]
pub struct Sampler {
    params: SamplingParams,
    seed: u64,
    rng: Xoshiro256StarStar,
}

impl Sampler {
    /// Validates `params` and seeds the RNG (with `params.seed`, or a fresh seed).
    pub fn new(params: SamplingParams) -> Result<Self, SampleError> {
        params.validate()?;
        let seed = params.seed.unwrap_or_else(fresh_seed);
        Ok(Self {
            rng: Xoshiro256StarStar::seed_from_u64(seed),
            seed,
            params,
        })
    }

    /// The parameters this sampler was built with.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// The seed in use: `params.seed`, or the one drawn when it was `None`.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Picks the next token from one row of `logits` (`n_vocab` values, overwritten with the
    /// biased and penalised logits), given the sequence's `history` so far (prompt and
    /// generated tokens; penalties look at its tail).
    ///
    /// NaN logits count as −inf (never chosen) and +inf as the largest finite float.
    /// Errors: an empty row, a bias token outside the row, or no finite logit left.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> Result<Sampled, SampleError> {
        if logits.is_empty() {
            return Err(SampleError::EmptyLogits);
        }
        // llama.cpp adds the bias sampler ahead of its chain (`common_sampler_init`).
        apply_logit_bias(logits, &self.params.logit_bias)?;
        apply_penalties(logits, history, &self.params);
        // Branch-free, so it vectorizes: `min` turns +inf into the largest finite float.
        for l in logits.iter_mut() {
            *l = if l.is_nan() {
                f32::NEG_INFINITY
            } else {
                l.min(f32::MAX)
            };
        }
        if self.params.is_greedy() {
            self.greedy(logits)
        } else {
            self.draw(logits)
        }
    }

    /// Argmax with ties to the lowest id; log-probabilities over the full row.
    fn greedy(&self, logits: &[f32]) -> Result<Sampled, SampleError> {
        let n_vocab = logits.len();
        let (token, max) = argmax(logits).ok_or(SampleError::NoFiniteLogits { n_vocab })?;
        let log_z = f64::from(max) + crate::softmax::sum_exp(logits, max).ln();
        let logprob = (f64::from(max) - log_z) as f32;
        let top = if self.params.top_logprobs == 0 {
            Vec::new()
        } else {
            let mut cands = finite_candidates(logits);
            top_n(&mut cands, self.params.top_logprobs)
                .iter()
                .map(|c| (c.id, (f64::from(c.logit) - log_z) as f32))
                .collect()
        };
        Ok(Sampled {
            token,
            logprob,
            top_logprobs: top,
        })
    }

    /// top-k → top-p → min-p → temperature → one uniform draw.
    fn draw(&mut self, logits: &[f32]) -> Result<Sampled, SampleError> {
        let n_vocab = logits.len();
        let mut cands = finite_candidates(logits);
        if cands.is_empty() {
            return Err(SampleError::NoFiniteLogits { n_vocab });
        }
        let p = &self.params;
        let sorted = top_k(&mut cands, p.top_k);
        if p.top_p < 1.0 {
            if !sorted {
                sort_by_rank(&mut cands);
            }
            top_p(&mut cands, p.top_p);
        }
        min_p(&mut cands, p.min_p);
        // Shift by the max before dividing so a tiny temperature cannot overflow.
        let max = cands
            .iter()
            .map(|c| c.logit)
            .fold(f32::NEG_INFINITY, f32::max);
        let temperature = f64::from(p.temperature);
        for c in &mut cands {
            c.logit = (f64::from(c.logit - max) / temperature) as f32;
        }
        let sum: f64 = cands.iter().map(|c| f64::from(c.logit).exp()).sum();
        let target = self.rng.next_f64() * sum;
        let mut cum = 0.0;
        let mut chosen = cands[cands.len() - 1];
        for c in &cands {
            cum += f64::from(c.logit).exp();
            if cum > target {
                chosen = *c;
                break;
            }
        }
        let log_z = sum.ln();
        let logprob = (f64::from(chosen.logit) - log_z) as f32;
        let top = top_n(&mut cands, self.params.top_logprobs)
            .iter()
            .map(|c| (c.id, (f64::from(c.logit) - log_z) as f32))
            .collect();
        Ok(Sampled {
            token: chosen.id,
            logprob,
            top_logprobs: top,
        })
    }
}

/// The largest value of `logits` (no NaN in it) with its lowest index, or `None` when every
/// value is −inf. The maximum is taken lane-wise first (a loop that vectorizes, where a
/// running `(index, value)` pair does not), then its first position found.
fn argmax(logits: &[f32]) -> Option<(u32, f32)> {
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = logits.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = lanes
        .iter()
        .chain(chunks.remainder())
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    if max == f32::NEG_INFINITY {
        return None;
    }
    let id = logits.iter().position(|&x| x == max)?;
    Some((id as u32, max))
}

/// Every token whose logit is above −inf.
fn finite_candidates(logits: &[f32]) -> Vec<Candidate> {
    logits
        .iter()
        .enumerate()
        .filter(|(_, l)| **l > f32::NEG_INFINITY)
        .map(|(id, &logit)| Candidate {
            id: id as u32,
            logit,
        })
        .collect()
}

/// The `n` best of `cands`, best first (reorders `cands`).
fn top_n(cands: &mut [Candidate], n: usize) -> &[Candidate] {
    let n = n.min(cands.len());
    if n == 0 {
        return &[];
    }
    if n < cands.len() {
        cands.select_nth_unstable_by(n - 1, by_rank);
    }
    let top = &mut cands[..n];
    sort_by_rank(top);
    top
}

#[cfg(test)]
#[path = "sampler_tests.rs"]
mod tests;
