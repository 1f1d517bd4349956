//! Per-request and per-choice output state on the core thread: samplers, incremental
//! detokenization, stop conditions and the events sent back.
//!
//! Text contract (as for `Session::generate`): for each choice, the concatenation of its
//! `Token` texts and its `Finished` text is the detokenized output up to (not including)
//! the first stop string; stop tokens contribute no text and are not sent as tokens.

use std::time::{Duration, Instant};

use skiff_sample::{Sampler, SamplingParams, rng::fresh_seed};
use skiff_tokenizer::{Detokenizer, Tokenizer};

use crate::core::api::{EventSender, Request, RequestEvent};
use crate::core::scheduler::SeqId;
use crate::error::{EngineError, Result};
use crate::generate::{FinishReason, TokenEvent, Usage};
use crate::stop::{StopCriteria, StopScan, StopStrings};

/// One request on the core thread.
pub(crate) struct RequestState {
    /// Where its events go.
    pub(crate) events: EventSender,
    n_prompt: usize,
    /// Sampling settings with the seed resolved (choice `i` uses `seed + i`).
    sampling: SamplingParams,
    base_seed: u64,
    /// Stop criteria with the effective stop tokens (`ignore_eos` applied).
    stop: StopCriteria,
    started: bool,
    started_at: Option<Instant>,
    cached_prompt_tokens: usize,
    /// Sequence of each choice, once created.
    seqs: Vec<Option<SeqId>>,
    finished: Vec<bool>,
}

impl RequestState {
    /// The state of a new request and the sampler of its first choice, whose sequence is
    /// `first`. Errors when the sampler cannot be built.
    pub(crate) fn new(
        request: &Request,
        tokenizer: &Tokenizer,
        events: EventSender,
        first: SeqId,
    ) -> Result<(RequestState, Sampler)> {
        let base_seed = request.sampling.seed.unwrap_or_else(fresh_seed);
        let mut stop = request.stop.clone();
        if request.ignore_eos {
            stop.stop_tokens.retain(|&t| !tokenizer.is_eog(t));
        }
        let mut seqs = vec![None; request.n];
        seqs[0] = Some(first);
        let mut state = RequestState {
            events,
            n_prompt: request.prompt.len(),
            sampling: request.sampling.clone(),
            base_seed,
            stop,
            started: false,
            started_at: None,
            cached_prompt_tokens: 0,
            seqs,
            finished: vec![false; request.n],
        };
        let sampler = state.choice_params(0, first)?;
        Ok((state, sampler))
    }

    /// Registers choice `choice` as sequence `seq` and builds its sampler (seed + choice).
    pub(crate) fn choice_params(&mut self, choice: usize, seq: SeqId) -> Result<Sampler> {
        if let Some(slot) = self.seqs.get_mut(choice) {
            *slot = Some(seq);
        }
        let params = SamplingParams {
            seed: Some(self.base_seed.wrapping_add(choice as u64)),
            ..self.sampling.clone()
        };
        Ok(Sampler::new(params)?)
    }

    /// The stop strings every choice matches.
    pub(crate) fn stop_strings(&self) -> &[String] {
        &self.stop.stop_strings
    }

    /// Records the first scheduling of the prompt and sends `Started`; true the first time.
    pub(crate) fn mark_started(&mut self, cached_prompt_tokens: usize) -> bool {
        if self.started {
            return false;
        }
        self.started = true;
        self.started_at = Some(Instant::now());
        self.cached_prompt_tokens = cached_prompt_tokens;
        self.send(RequestEvent::Started {
            prompt_tokens: self.n_prompt,
            cached_prompt_tokens,
        });
        true
    }

    /// Whether the prompt was ever scheduled.
    pub(crate) fn was_started(&self) -> bool {
        self.started
    }

    /// Whether every choice has finished.
    pub(crate) fn is_done(&self) -> bool {
        self.finished.iter().all(|&f| f)
    }

    /// Sequences of the choices still unfinished.
    pub(crate) fn seqs(&self) -> Vec<SeqId> {
        self.seqs
            .iter()
            .zip(&self.finished)
            .filter_map(|(seq, &done)| seq.filter(|_| !done))
            .collect()
    }

    /// Finishes the choices that were never created (their prompt was still running).
    pub(crate) fn finish_unforked(&mut self, reason: FinishReason) {
        for choice in 0..self.seqs.len() {
            if self.seqs[choice].is_none() && !self.finished[choice] {
                let usage = self.usage(0, None);
                self.send_finished(choice, reason, String::new(), usage);
            }
        }
    }

    /// Sends the one `Error` event of a failed request.
    pub(crate) fn send_error(&self, error: &EngineError) {
        self.send(RequestEvent::Error {
            message: error.to_string(),
        });
    }

    fn usage(&self, completion_tokens: usize, first_token_at: Option<Instant>) -> Usage {
        let now = Instant::now();
        let started = self.started_at.unwrap_or(now);
        let first = first_token_at.unwrap_or(now);
        Usage {
            prompt_tokens: self.n_prompt,
            cached_prompt_tokens: self.cached_prompt_tokens,
            completion_tokens,
            prompt_time: first.saturating_duration_since(started),
            generation_time: first_token_at.map_or(Duration::ZERO, |t| now - t),
        }
    }

    fn send_finished(&mut self, choice: usize, reason: FinishReason, text: String, usage: Usage) {
        self.finished[choice] = true;
        self.send(RequestEvent::Finished {
            choice,
            reason,
            text,
            usage,
        });
    }

    /// Sends an event; a receiver that is gone is noticed by the core's next sweep.
    fn send(&self, event: RequestEvent) {
        let _ = self.events.send(event);
    }
}

/// One choice on the core thread.
pub(crate) struct ChoiceState<'t> {
    /// The request id.
    pub(crate) request: u64,
    choice: usize,
    sampler: Sampler,
    detok: Detokenizer<'t>,
    stops: StopStrings,
    n_generated: usize,
    first_token_at: Option<Instant>,
}

impl<'t> ChoiceState<'t> {
    /// Choice `choice` of request `request`, drawing with `sampler`.
    pub(crate) fn new(
        tokenizer: &'t Tokenizer,
        request: &RequestState,
        request_id: u64,
        choice: usize,
        sampler: Sampler,
    ) -> Self {
        ChoiceState {
            request: request_id,
            choice,
            sampler,
            detok: Detokenizer::new(tokenizer, true),
            stops: StopStrings::new(request.stop_strings()),
            n_generated: 0,
            first_token_at: None,
        }
    }

    /// Draws the next token from `logits` (overwritten) given the sequence's `history`,
    /// streams it, and returns it, or `None` when the choice ended (its `Finished` sent).
    pub(crate) fn advance(
        &mut self,
        request: &mut RequestState,
        logits: &mut [f32],
        history: &[u32],
        max_seq_len: usize,
    ) -> Result<Option<u32>> {
        let sampled = self.sampler.sample(logits, history)?;
        let token = sampled.token;
        self.n_generated += 1;
        self.first_token_at.get_or_insert_with(Instant::now);
        if request.stop.stop_tokens.contains(&token) {
            let tail = self.release_tail();
            self.finish_with(request, FinishReason::Stop, tail);
            return Ok(None);
        }
        let piece = self.detok.push(token)?.unwrap_or_default();
        let (text, stopped) = match self.stops.push(&piece) {
            StopScan::Continue(text) => (text, false),
            StopScan::Stopped(text) => (text, true),
        };
        request.send(RequestEvent::Token {
            choice: self.choice,
            token: TokenEvent {
                token,
                text,
                logprob: sampled.logprob,
                top_logprobs: sampled.top_logprobs,
            },
        });
        if stopped {
            self.finish_with(request, FinishReason::Stop, String::new());
            return Ok(None);
        }
        // The new token would be computed at position `history.len()`: it must fit the context.
        if self.n_generated >= request.stop.max_tokens || history.len() >= max_seq_len {
            let tail = self.release_tail();
            self.finish_with(request, FinishReason::Length, tail);
            return Ok(None);
        }
        Ok(Some(token))
    }

    /// Ends the choice from outside (cancel, shutdown): no held-back text is released.
    pub(crate) fn finish(&mut self, request: &mut RequestState, reason: FinishReason) {
        self.finish_with(request, reason, String::new());
    }

    /// What the detokenizer and the stop matcher still hold, released at a normal end.
    fn release_tail(&mut self) -> String {
        let tail = self.detok.flush().unwrap_or_default();
        match self.stops.push(&tail) {
            StopScan::Stopped(text) => text,
            StopScan::Continue(mut text) => {
                text.push_str(&self.stops.finish());
                text
            }
        }
    }

    fn finish_with(&mut self, request: &mut RequestState, reason: FinishReason, text: String) {
        let usage = request.usage(self.n_generated, self.first_token_at);
        request.send_finished(self.choice, reason, text, usage);
    }
}
