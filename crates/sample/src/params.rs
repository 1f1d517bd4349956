//! [`SamplingParams`]: what a request asks of the sampler, and its validation.
//!
//! Ranges follow the OpenAI API where it defines one (presence and frequency penalties in
//! `[-2, 2]`, logit bias in `[-100, 100]`, at most 20 top log-probabilities) and llama.cpp
//! elsewhere. Defaults are llama.cpp's (`common/common.h`, `common_params_sampling`):
//! temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, repetition penalty 1.0 (off) over the
//! last 64 tokens.

use crate::error::SampleError;

/// The most `logit_bias` entries a request may carry (OpenAI's limit is 300).
pub const MAX_LOGIT_BIAS: usize = 300;
/// The most alternatives [`SamplingParams::top_logprobs`] may ask for (OpenAI caps at 20).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// Sampling settings for one sequence. Build one with struct update syntax over
/// [`SamplingParams::default`] or [`SamplingParams::greedy`], then [`validate`](Self::validate).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature, finite and `>= 0`. `0` means greedy: argmax, ties to the lowest id.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; `0` turns the filter off.
    pub top_k: usize,
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability sums
    /// to at least `top_p`, in `(0, 1]`; `1` turns the filter off.
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` times the most likely one's, in
    /// `[0, 1]`; `0` turns the filter off.
    pub min_p: f32,
    /// llama.cpp's repetition penalty, finite and `> 0`: a token seen in the penalty window
    /// has a positive logit divided by it and a non-positive one multiplied by it. `1` is off.
    pub repetition_penalty: f32,
    /// OpenAI's presence penalty, in `[-2, 2]`: subtracted once from the logit of every token
    /// seen in the penalty window.
    pub presence_penalty: f32,
    /// OpenAI's frequency penalty, in `[-2, 2]`: subtracted from a token's logit once per
    /// occurrence in the penalty window.
    pub frequency_penalty: f32,
    /// How many of the most recent history tokens the penalties look at (llama.cpp's
    /// `repeat_last_n`, default 64). `0` disables the penalties.
    pub penalty_last_n: usize,
    /// Additive biases `(token, bias)`, each bias in `[-100, 100]`, at most
    /// [`MAX_LOGIT_BIAS`] entries. A token listed twice gets both biases.
    pub logit_bias: Vec<(u32, f32)>,
    /// RNG seed. `None` draws a fresh seed from the OS-seeded hasher keys; the seed used is
    /// reported by [`Sampler::seed`](crate::Sampler::seed).
    pub seed: Option<u64>,
    /// How many alternatives [`Sampled::top_logprobs`](crate::Sampled::top_logprobs) lists,
    /// at most [`MAX_TOP_LOGPROBS`]. `0` skips computing them.
    pub top_logprobs: usize,
}

impl Default for SamplingParams {
    /// llama.cpp's defaults, with a random seed and no log-probability alternatives.
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_last_n: 64,
            logit_bias: Vec::new(),
            seed: None,
            top_logprobs: 0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding with no penalties, no bias and no truncation filters.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..Self::default()
        }
    }

    /// True when the sampler always picks the argmax (temperature 0).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks every range listed on the fields; the error names the first bad parameter,
    /// its value and the allowed range.
    pub fn validate(&self) -> Result<(), SampleError> {
        check(self.temperature, "temperature", "finite and >= 0", |v| {
            v >= 0.0
        })?;
        check(self.top_p, "top_p", "in (0, 1]", |v| v > 0.0 && v <= 1.0)?;
        check(self.min_p, "min_p", "in [0, 1]", |v| {
            (0.0..=1.0).contains(&v)
        })?;
        check(
            self.repetition_penalty,
            "repetition_penalty",
            "finite and > 0",
            |v| v > 0.0,
        )?;
        let openai = |v: f32| (-2.0..=2.0).contains(&v);
        check(
            self.presence_penalty,
            "presence_penalty",
            "in [-2, 2]",
            openai,
        )?;
        check(
            self.frequency_penalty,
            "frequency_penalty",
            "in [-2, 2]",
            openai,
        )?;
        if self.logit_bias.len() > MAX_LOGIT_BIAS {
            return Err(SampleError::TooMany {
                param: "logit_bias",
                count: self.logit_bias.len(),
                max: MAX_LOGIT_BIAS,
            });
        }
        for &(_, bias) in &self.logit_bias {
            check(bias, "logit_bias", "in [-100, 100]", |v| {
                (-100.0..=100.0).contains(&v)
            })?;
        }
        if self.top_logprobs > MAX_TOP_LOGPROBS {
            return Err(SampleError::TooMany {
                param: "top_logprobs",
                count: self.top_logprobs,
                max: MAX_TOP_LOGPROBS,
            });
        }
        Ok(())
    }

    /// [`validate`](Self::validate), plus: every `logit_bias` token is below `n_vocab`.
    pub fn validate_for_vocab(&self, n_vocab: usize) -> Result<(), SampleError> {
        self.validate()?;
        match self
            .logit_bias
            .iter()
            .find(|&&(token, _)| token as usize >= n_vocab)
        {
            Some(&(token, _)) => Err(SampleError::BiasTokenOutOfRange { token, n_vocab }),
            None => Ok(()),
        }
    }
}

/// Fails unless `value` is finite and `ok(value)` holds.
fn check(
    value: f32,
    param: &'static str,
    allowed: &'static str,
    ok: impl Fn(f32) -> bool,
) -> Result<(), SampleError> {
    if value.is_finite() && ok(value) {
        Ok(())
    } else {
        Err(SampleError::OutOfRange {
            param,
            value: f64::from(value),
            allowed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(params: SamplingParams) -> &'static str {
        match params.validate() {
            Err(SampleError::OutOfRange { param, .. } | SampleError::TooMany { param, .. }) => {
                param
            }
            other => panic!("expected a range error, got {other:?} for {params:?}"),
        }
    }

    #[test]
    fn defaults_and_greedy_are_valid() {
        assert_eq!(SamplingParams::default().validate(), Ok(()));
        assert_eq!(SamplingParams::greedy().validate(), Ok(()));
        assert!(SamplingParams::greedy().is_greedy());
        assert!(!SamplingParams::default().is_greedy());
    }

    #[test]
    fn each_out_of_range_value_names_its_parameter() {
        let d = SamplingParams::default;
        let cases: Vec<(SamplingParams, &str)> = vec![
            (
                SamplingParams {
                    temperature: -0.1,
                    ..d()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    temperature: f32::NAN,
                    ..d()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    temperature: f32::INFINITY,
                    ..d()
                },
                "temperature",
            ),
            (SamplingParams { top_p: 0.0, ..d() }, "top_p"),
            (SamplingParams { top_p: 1.01, ..d() }, "top_p"),
            (
                SamplingParams {
                    top_p: f32::NAN,
                    ..d()
                },
                "top_p",
            ),
            (
                SamplingParams {
                    min_p: -0.01,
                    ..d()
                },
                "min_p",
            ),
            (SamplingParams { min_p: 1.5, ..d() }, "min_p"),
            (
                SamplingParams {
                    repetition_penalty: 0.0,
                    ..d()
                },
                "repetition_penalty",
            ),
            (
                SamplingParams {
                    repetition_penalty: f32::INFINITY,
                    ..d()
                },
                "repetition_penalty",
            ),
            (
                SamplingParams {
                    presence_penalty: 2.5,
                    ..d()
                },
                "presence_penalty",
            ),
            (
                SamplingParams {
                    frequency_penalty: -2.01,
                    ..d()
                },
                "frequency_penalty",
            ),
            (
                SamplingParams {
                    logit_bias: vec![(1, 100.5)],
                    ..d()
                },
                "logit_bias",
            ),
            (
                SamplingParams {
                    logit_bias: vec![(1, f32::NAN)],
                    ..d()
                },
                "logit_bias",
            ),
            (
                SamplingParams {
                    logit_bias: vec![(1, 1.0); 301],
                    ..d()
                },
                "logit_bias",
            ),
            (
                SamplingParams {
                    top_logprobs: 21,
                    ..d()
                },
                "top_logprobs",
            ),
        ];
        for (params, want) in cases {
            assert_eq!(rejected(params), want);
        }
    }

    #[test]
    fn boundary_values_are_accepted() {
        let d = SamplingParams::default;
        for params in [
            SamplingParams {
                temperature: 0.0,
                ..d()
            },
            SamplingParams { top_p: 1.0, ..d() },
            SamplingParams { min_p: 0.0, ..d() },
            SamplingParams { min_p: 1.0, ..d() },
            SamplingParams {
                presence_penalty: -2.0,
                frequency_penalty: 2.0,
                ..d()
            },
            SamplingParams {
                logit_bias: vec![(0, -100.0), (1, 100.0)],
                ..d()
            },
            SamplingParams {
                top_logprobs: 20,
                ..d()
            },
        ] {
            assert_eq!(params.validate(), Ok(()), "{params:?}");
        }
    }

    #[test]
    fn error_message_names_value_and_range() {
        let err = SamplingParams {
            top_p: 1.5,
            ..SamplingParams::default()
        }
        .validate();
        let msg = err.expect_err("top_p 1.5 is invalid").to_string();
        assert_eq!(msg, "top_p = 1.5 is out of range: must be in (0, 1]");
    }

    #[test]
    fn bias_tokens_are_checked_against_the_vocabulary() {
        let params = SamplingParams {
            logit_bias: vec![(3, 1.0), (10, 1.0)],
            ..Default::default()
        };
        assert_eq!(params.validate_for_vocab(11), Ok(()));
        assert_eq!(
            params.validate_for_vocab(10),
            Err(SampleError::BiasTokenOutOfRange {
                token: 10,
                n_vocab: 10
            })
        );
    }
}
