//! Logit adjustments that come before truncation: repetition/presence/frequency penalties
//! and the additive logit bias. Both edit the full `n_vocab` row in place.

use std::collections::HashMap;

use crate::error::SampleError;
use crate::params::SamplingParams;

/// Applies llama.cpp's penalties (`llama_sampler_penalties_apply`) over the last
/// `params.penalty_last_n` tokens of `history`. For each token seen `count` times there:
/// the logit is divided by `repetition_penalty` if positive and multiplied by it otherwise,
/// then `count * frequency_penalty + presence_penalty` is subtracted. History ids outside
/// the row are ignored. Does nothing when every penalty is neutral.
pub fn apply_penalties(logits: &mut [f32], history: &[u32], params: &SamplingParams) {
    let neutral = params.repetition_penalty == 1.0
        && params.presence_penalty == 0.0
        && params.frequency_penalty == 0.0;
    if neutral || params.penalty_last_n == 0 {
        return;
    }
    let window = &history[history.len().saturating_sub(params.penalty_last_n)..];
    let mut counts: HashMap<u32, u32> = HashMap::with_capacity(window.len());
    for &token in window {
        *counts.entry(token).or_insert(0) += 1;
    }
    for (&token, &count) in &counts {
        let Some(logit) = logits.get_mut(token as usize) else {
            continue;
        };
        // Only dividing (as the CTRL paper does) would make negative logits *more* likely.
        if *logit <= 0.0 {
            *logit *= params.repetition_penalty;
        } else {
            *logit /= params.repetition_penalty;
        }
        *logit -= count as f32 * params.frequency_penalty + params.presence_penalty;
    }
}

/// Adds each `(token, bias)` to the logit of `token`.
///
/// Fails with [`SampleError::BiasTokenOutOfRange`] (leaving `logits` untouched) when a
/// token id is not below `logits.len()`.
pub fn apply_logit_bias(logits: &mut [f32], bias: &[(u32, f32)]) -> Result<(), SampleError> {
    let n_vocab = logits.len();
    if let Some(&(token, _)) = bias.iter().find(|&&(token, _)| token as usize >= n_vocab) {
        return Err(SampleError::BiasTokenOutOfRange { token, n_vocab });
    }
    for &(token, b) in bias {
        logits[token as usize] += b;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(rep: f32, presence: f32, freq: f32) -> SamplingParams {
        SamplingParams {
            repetition_penalty: rep,
            presence_penalty: presence,
            frequency_penalty: freq,
            ..SamplingParams::default()
        }
    }

    #[test]
    fn repetition_penalty_pushes_seen_tokens_down_whatever_their_sign() {
        let mut logits = vec![2.0, -2.0, 2.0, -2.0, 0.0];
        apply_penalties(&mut logits, &[0, 1, 4], &params(2.0, 0.0, 0.0));
        assert_eq!(logits, [1.0, -4.0, 2.0, -2.0, 0.0]);
    }

    #[test]
    fn presence_counts_once_and_frequency_counts_each_occurrence() {
        let mut logits = vec![1.0; 4];
        apply_penalties(&mut logits, &[2, 2, 2, 1], &params(1.0, 0.5, 0.25));
        assert_eq!(logits, [1.0, 1.0 - 0.25 - 0.5, 1.0 - 0.75 - 0.5, 1.0]);
    }

    #[test]
    fn only_the_last_n_tokens_are_penalised() {
        let mut logits = vec![1.0; 4];
        let p = SamplingParams {
            penalty_last_n: 2,
            ..params(1.0, 1.0, 0.0)
        };
        apply_penalties(&mut logits, &[0, 1, 2, 3], &p);
        assert_eq!(logits, [1.0, 1.0, 0.0, 0.0]);
        let mut logits = vec![1.0; 4];
        apply_penalties(
            &mut logits,
            &[0, 1],
            &SamplingParams {
                penalty_last_n: 0,
                ..p
            },
        );
        assert_eq!(logits, [1.0; 4]);
    }

    #[test]
    fn history_ids_outside_the_row_are_ignored() {
        let mut logits = vec![1.0; 2];
        apply_penalties(&mut logits, &[7, u32::MAX], &params(2.0, 1.0, 1.0));
        assert_eq!(logits, [1.0; 2]);
    }

    #[test]
    fn logit_bias_adds_and_rejects_unknown_tokens() {
        let mut logits = vec![0.0; 3];
        apply_logit_bias(&mut logits, &[(1, 5.0), (2, -100.0), (1, 1.0)]).expect("ids in range");
        assert_eq!(logits, [0.0, 6.0, -100.0]);
        let err = apply_logit_bias(&mut logits, &[(0, 1.0), (3, 1.0)]);
        assert_eq!(
            err,
            Err(SampleError::BiasTokenOutOfRange {
                token: 3,
                n_vocab: 3
            })
        );
        assert_eq!(logits, [0.0, 6.0, -100.0]);
    }
}
