//! [`Session::generate`]: the decode loop around the session core.
//!
//! Per step: sample from the last logits (history = prompt + generated tokens), check the
//! stop tokens, detokenize incrementally, match stop strings, stream an [`Event`], then run
//! the token to get the next logits. The loop ends with [`FinishReason::Stop`] (stop token
//! or stop string), [`FinishReason::Length`] (`max_tokens` or the end of the context) or
//! [`FinishReason::Cancelled`] (the callback asked to stop).
//!
//! Text contract: the concatenation of every event's text equals [`Completion::text`],
//! which is the detokenized output up to (not including) the first stop string, with stop
//! tokens contributing no text.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use skiff_sample::{Sampler, SamplingParams};
use skiff_tokenizer::{Detokenizer, Tokenizer};

use crate::error::{EngineError, Result};
use crate::session::Session;
use crate::stop::{StopCriteria, StopScan, StopStrings};

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    /// How to pick tokens.
    pub sampling: SamplingParams,
    /// When to stop.
    pub stop: StopCriteria,
}

/// One sampled token and the text it released.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEvent {
    /// The token id.
    pub token: u32,
    /// Text released by this token: may be empty (an incomplete UTF-8 sequence, or text
    /// held back because it may begin a stop string) or hold text of earlier tokens.
    pub text: String,
    /// Log-probability of the token (see `skiff_sample::sampler` for the convention).
    pub logprob: f32,
    /// The requested most likely alternatives with their log-probabilities.
    pub top_logprobs: Vec<(u32, f32)>,
}

/// What the callback of [`Session::generate`] receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A generated token (stop tokens excluded).
    Token(TokenEvent),
    /// Text released at the end without a new token: held-back text that did not become a
    /// stop string, or the detokenizer's final bytes.
    Text(String),
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop,
    /// `max_tokens` generated, or the context is full.
    Length,
    /// The event callback returned `ControlFlow::Break`.
    Cancelled,
}

impl FinishReason {
    /// The OpenAI spelling: `stop`, `length`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// Token counts and timings of one generation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens found in the KV cache and not run again.
    pub cached_prompt_tokens: usize,
    /// Tokens generated, a final stop token included.
    pub completion_tokens: usize,
    /// Wall time to run the prompt (the uncached part).
    pub prompt_time: Duration,
    /// Wall time from the end of the prompt to the end of the generation.
    pub generation_time: Duration,
}

/// A finished generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Counts and timings.
    pub usage: Usage,
    /// Generated token ids, a final stop token included.
    pub tokens: Vec<u32>,
    /// The generated text (see the module docs).
    pub text: String,
    /// The sampler's seed (the one drawn when the request had none).
    pub seed: u64,
}

/// Generation state between steps.
struct Decoder<'t> {
    detok: Detokenizer<'t>,
    stops: StopStrings,
    text: String,
}

impl Decoder<'_> {
    /// Detokenizes `token`; returns the text to emit and whether a stop string ended it.
    fn push(&mut self, token: u32) -> Result<(String, bool)> {
        let piece = self.detok.push(token)?.unwrap_or_default();
        Ok(self.scan(&piece))
    }

    fn scan(&mut self, piece: &str) -> (String, bool) {
        let (text, stopped) = match self.stops.push(piece) {
            StopScan::Continue(text) => (text, false),
            StopScan::Stopped(text) => (text, true),
        };
        self.text.push_str(&text);
        (text, stopped)
    }

    /// Releases what the detokenizer and the stop matcher still hold.
    fn finish(&mut self) -> String {
        let tail = self.detok.flush().unwrap_or_default();
        let (mut text, stopped) = self.scan(&tail);
        if !stopped {
            let held = self.stops.finish();
            self.text.push_str(&held);
            text.push_str(&held);
        }
        text
    }
}

impl Session<'_> {
    /// Generates a completion of `prompt`, streaming [`Event`]s to `on_event`.
    ///
    /// Errors before any compute for an empty or too long prompt, invalid sampling
    /// parameters or stop criteria; later only when a forward pass or a draw fails.
    pub fn generate(
        &mut self,
        tokenizer: &Tokenizer,
        prompt: &[u32],
        request: &GenerateRequest,
        mut on_event: impl FnMut(Event) -> ControlFlow<()>,
    ) -> Result<Completion> {
        request.stop.validate()?;
        request
            .sampling
            .validate_for_vocab(self.model().n_vocab())?;
        let mut sampler = Sampler::new(request.sampling.clone())?;
        let started = Instant::now();
        let prefilled = self.prefill(prompt)?;
        let prompt_time = started.elapsed();
        let mut dec = Decoder {
            detok: Detokenizer::new(tokenizer, true),
            stops: StopStrings::new(&request.stop.stop_strings),
            text: String::new(),
        };
        let mut history = prompt.to_vec();
        let mut logits = prefilled.logits;
        // Embedding matrices may be padded past the tokenizer's vocabulary; never pick those.
        let n_text_vocab = tokenizer.n_vocab();
        let finish_reason = loop {
            if let Some(padding) = logits.get_mut(n_text_vocab..) {
                padding.fill(f32::NEG_INFINITY);
            }
            let sampled = sampler.sample(&mut logits, &history)?;
            let token = sampled.token;
            history.push(token);
            if request.stop.stop_tokens.contains(&token) {
                break FinishReason::Stop;
            }
            let (text, stopped) = dec.push(token)?;
            let event = TokenEvent {
                token,
                text,
                logprob: sampled.logprob,
                top_logprobs: sampled.top_logprobs,
            };
            let flow = on_event(Event::Token(event));
            if stopped {
                break FinishReason::Stop;
            }
            if flow.is_break() {
                break FinishReason::Cancelled;
            }
            let n_generated = history.len() - prompt.len();
            if n_generated >= request.stop.max_tokens || self.tokens().len() >= self.max_seq_len() {
                break FinishReason::Length;
            }
            self.decode_into(token, &mut logits)?;
        };
        if finish_reason != FinishReason::Cancelled {
            let tail = dec.finish();
            if !tail.is_empty() {
                // The generation is over either way; a Break here has nothing left to stop.
                let _ = on_event(Event::Text(tail));
            }
        }
        let tokens = history.split_off(prompt.len());
        let usage = Usage {
            prompt_tokens: prompt.len(),
            cached_prompt_tokens: prefilled.n_reused,
            completion_tokens: tokens.len(),
            prompt_time,
            generation_time: started.elapsed() - prompt_time,
        };
        Ok(Completion {
            finish_reason,
            usage,
            tokens,
            text: dec.text,
            seed: sampler.seed(),
        })
    }
}

/// Checks a prompt against a context size without running anything: the CLI and the
/// server use it to fail fast with the same error [`Session::generate`] would return.
pub fn check_prompt(prompt_tokens: usize, max_seq_len: usize) -> Result<()> {
    if prompt_tokens == 0 {
        return Err(EngineError::EmptyPrompt);
    }
    if prompt_tokens > max_seq_len {
        return Err(EngineError::PromptTooLong {
            prompt_tokens,
            max_seq_len,
        });
    }
    Ok(())
}
