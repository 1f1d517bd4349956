//! Perplexity of a model over a text, computed exactly as llama.cpp's `llama-perplexity`
//! does (`tools/perplexity/perplexity.cpp`, function `perplexity`), so the numbers compare:
//!
//! - The text is tokenized once (with the BOS the tokenizer adds, if any) and cut into
//!   `n_chunks = n_tokens / n_ctx` non-overlapping windows of `n_ctx` tokens; the tail is
//!   dropped. At least `2 * n_ctx` tokens are required.
//! - Each window starts from an empty KV cache. When the model adds BOS, the window's first
//!   token is replaced by BOS for evaluation (the original token stays the target).
//! - Only the second half is scored: with `first = n_ctx / 2`, the logits at positions
//!   `first ..= n_ctx - 2` predict tokens `first + 1 ..= n_ctx - 1`, so every scored token
//!   has at least `n_ctx / 2` tokens of context.
//! - `nll` is the mean of `-log_softmax(logits)[target]` over all scored tokens, `PPL =
//!   exp(nll)`, and the error is `PPL * sqrt((mean(nll²) - nll²) / (count - 1))`.

use skiff_backend_cpu::Cpu;
use skiff_models::{Batch, Model};

use crate::error::{EngineError, Result};

/// How to cut and evaluate the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerplexityConfig {
    /// Window size in tokens (llama.cpp's `--ctx-size`), at least 4 and at most the
    /// model's context.
    pub n_ctx: usize,
    /// The BOS token to put first in each window, when the tokenizer adds BOS.
    pub bos: Option<u32>,
    /// Tokens per forward pass (llama.cpp's `--batch-size`), at least 1.
    pub n_batch: usize,
}

/// Progress after each window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkProgress {
    /// Windows done (1-based).
    pub chunk: usize,
    /// Windows in total.
    pub n_chunks: usize,
    /// The running perplexity estimate over the windows done.
    pub ppl: f64,
}

/// The final result.
#[derive(Clone, Debug, PartialEq)]
pub struct PerplexityReport {
    /// `exp(mean negative log-likelihood)`.
    pub ppl: f64,
    /// Standard error of `ppl` (llama.cpp's `+/-` figure).
    pub ppl_error: f64,
    /// Mean negative log-likelihood in nats per token.
    pub nll: f64,
    /// Windows evaluated.
    pub n_chunks: usize,
    /// Tokens scored: `n_chunks * (n_ctx - 1 - n_ctx / 2)`.
    pub n_scored: usize,
}

/// Running sums of negative log-likelihoods, as llama.cpp keeps them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NllStats {
    sum: f64,
    sum_sq: f64,
    count: usize,
}

impl NllStats {
    /// Adds the score of `target` under one row of logits. Row and target come from the
    /// model, so `target < logits.len()` holds.
    pub fn add(&mut self, logits: &[f32], target: u32) {
        let v = -log_softmax_at(logits, target as usize);
        self.sum += v;
        self.sum_sq += v * v;
        self.count += 1;
    }

    /// Tokens scored so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// `exp(mean nll)`; NaN before any token.
    pub fn ppl(&self) -> f64 {
        (self.sum / self.count as f64).exp()
    }

    /// The final report fields `(ppl, ppl_error, nll)`. The error is 0 when it cannot be
    /// estimated (fewer than two tokens, or a rounding-negative variance).
    pub fn finish(&self) -> (f64, f64, f64) {
        let n = self.count as f64;
        let nll = self.sum / n;
        let ppl = nll.exp();
        let var = self.sum_sq / n - nll * nll;
        let err = if var > 0.0 && self.count > 1 {
            (var / (n - 1.0)).sqrt() * ppl
        } else {
            0.0
        };
        (ppl, err, nll)
    }
}

/// `log_softmax(logits)[idx]` the way llama.cpp computes it: f32 differences, f64 sum.
fn log_softmax_at(logits: &[f32], idx: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    f64::from(logits[idx] - max) - sum.ln()
}

/// Measures the perplexity of `model` over `tokens` (see the module docs), calling
/// `on_chunk` after each window.
///
/// Errors: `n_ctx` below 4 or above the model's context, `n_batch` 0, fewer than
/// `2 * n_ctx` tokens, or a failed forward pass.
pub fn perplexity(
    model: &Model,
    cpu: &Cpu,
    tokens: &[u32],
    config: &PerplexityConfig,
    mut on_chunk: impl FnMut(ChunkProgress),
) -> Result<PerplexityReport> {
    let n_ctx = config.n_ctx;
    check_config(config, model.max_seq_len())?;
    if tokens.len() < 2 * n_ctx {
        return Err(EngineError::NotEnoughTokens {
            n_tokens: tokens.len(),
            needed: 2 * n_ctx,
            n_ctx,
        });
    }
    let n_chunks = tokens.len() / n_ctx;
    let first = n_ctx / 2;
    let mut stats = NllStats::default();
    for chunk in 0..n_chunks {
        let window = &tokens[chunk * n_ctx..(chunk + 1) * n_ctx];
        let mut input = window.to_vec();
        if let Some(bos) = config.bos {
            input[0] = bos;
        }
        let logits = window_logits(model, cpu, &input, first, config.n_batch)?;
        for (row, &target) in logits
            .chunks_exact(model.n_vocab())
            .zip(&window[first + 1..])
        {
            stats.add(row, target);
        }
        on_chunk(ChunkProgress {
            chunk: chunk + 1,
            n_chunks,
            ppl: stats.ppl(),
        });
    }
    let (ppl, ppl_error, nll) = stats.finish();
    Ok(PerplexityReport {
        ppl,
        ppl_error,
        nll,
        n_chunks,
        n_scored: stats.count(),
    })
}

fn check_config(config: &PerplexityConfig, model_max_seq_len: usize) -> Result<()> {
    if config.n_ctx < 4 || config.n_ctx > model_max_seq_len {
        return Err(EngineError::InvalidParam {
            param: "n_ctx",
            value: config.n_ctx.to_string(),
            allowed: "at least 4 and at most the model's context length",
        });
    }
    if config.n_batch == 0 {
        return Err(EngineError::InvalidParam {
            param: "n_batch",
            value: "0".into(),
            allowed: "at least 1",
        });
    }
    Ok(())
}

/// Runs one window from an empty cache in batches of `n_batch` and returns the logits of
/// positions `first ..= n_ctx - 2`, `[n_ctx - 1 - first, n_vocab]`.
fn window_logits(
    model: &Model,
    cpu: &Cpu,
    input: &[u32],
    first: usize,
    n_batch: usize,
) -> Result<Vec<f32>> {
    let n_ctx = input.len();
    let mut kv = model.new_kv_cache(1, n_ctx);
    let mut out = Vec::with_capacity((n_ctx - 1 - first) * model.n_vocab());
    for start in (0..n_ctx).step_by(n_batch) {
        let end = (start + n_batch).min(n_ctx);
        let mut batch = Batch::for_sequence(&input[start..end], start as u32, 0);
        batch.logit_rows = (start..end)
            .filter(|&pos| pos >= first && pos + 1 < n_ctx)
            .map(|pos| pos - start)
            .collect();
        // A batch with no scored position still runs: later positions attend to it.
        let expected = batch.logit_rows.len();
        let logits = model.forward(&batch, &mut kv, cpu)?;
        if logits.n_rows() != expected {
            return Err(EngineError::MissingLogits {
                expected,
                got: logits.n_rows(),
            });
        }
        out.extend_from_slice(&logits.data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_matches_the_definition() {
        let logits = [1.0f32, 2.0, 3.0];
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        for (i, &l) in logits.iter().enumerate() {
            assert!((log_softmax_at(&logits, i) - (f64::from(l) - z.ln())).abs() < 1e-6);
        }
    }

    #[test]
    fn uniform_logits_give_ppl_equal_to_the_vocabulary() {
        let mut stats = NllStats::default();
        for target in 0..10 {
            stats.add(&[0.5; 10], target);
        }
        let (ppl, err, nll) = stats.finish();
        assert!((ppl - 10.0).abs() < 1e-9, "ppl {ppl}");
        assert!((nll - 10f64.ln()).abs() < 1e-9);
        assert_eq!(err, 0.0, "no spread, no error");
    }

    #[test]
    fn error_follows_llama_cpp_formula() {
        let mut stats = NllStats::default();
        // Probabilities 1/2 and 1/4 for the targets: nll = ln 2 and ln 4.
        stats.add(&[0.0, 0.0], 0);
        stats.add(&[2f32.ln(), 0.0, 0.0], 1);
        let (ppl, err, nll) = stats.finish();
        let (a, b) = (2f64.ln(), 4f64.ln());
        let mean = (a + b) / 2.0;
        let var = (a * a + b * b) / 2.0 - mean * mean;
        assert!((nll - mean).abs() < 1e-7);
        assert!((ppl - mean.exp()).abs() < 1e-6);
        assert!((err - (var / 1.0).sqrt() * ppl).abs() < 1e-6);
    }
}
