//! From a validated request to an engine submission, and from the engine's events to a
//! whole response ([`collect`]); streamed responses are in [`crate::stream`].
//!
//! A client that goes away drops the handler's future (non-streamed) or the response body
//! (streamed); either drops the [`RequestHandle`], which cancels the request in the engine
//! and frees its KV blocks at the next step.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::response::{IntoResponse, Response};
use skiff_engine::{FinishReason, Request, RequestEvent, RequestHandle, StopCriteria, TokenEvent};

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::model::{ServedModel, unix_now};
use crate::state::AppState;
use crate::stream;
use crate::wire::{ChoiceResult, Endpoint, GenParams, Shaper, TokenLogprob, UsageCounts};

/// Everything one generation needs after validation and tokenization.
pub struct Job {
    /// Shared state (metrics).
    pub state: Arc<AppState>,
    /// The model serving it.
    pub model: Arc<ServedModel>,
    /// Which endpoint answered.
    pub endpoint: Endpoint,
    /// The request's settings.
    pub params: GenParams,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// The caller's prefix-cache salt.
    pub tenant: Tenant,
    /// When the request arrived (for time to first token).
    pub arrival: Instant,
}

impl Job {
    /// The metrics label of the endpoint.
    pub fn label(&self) -> &'static str {
        endpoint_label(self.endpoint)
    }
}

/// `chat` or `completions`.
pub fn endpoint_label(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat => "chat",
        Endpoint::Completion => "completions",
    }
}

/// Checks the context, submits to the engine and answers (streamed or whole).
pub async fn run(job: Job) -> Result<Response, ApiError> {
    let limit = job.model.max_seq_len();
    let prompt_tokens = job.prompt.len();
    if prompt_tokens == 0 {
        return Err(ApiError::invalid(
            prompt_param(job.endpoint),
            "the prompt is empty: at least one token is needed",
        ));
    }
    let max_tokens = match job.params.max_tokens {
        Some(m) if prompt_tokens + m > limit => {
            return Err(ApiError::context_exceeded(prompt_tokens, m, limit)
                .with_param(prompt_param(job.endpoint)));
        }
        Some(m) => m,
        // OpenAI's default: as much as the context leaves.
        None if prompt_tokens < limit => limit - prompt_tokens,
        None => {
            return Err(ApiError::context_exceeded(prompt_tokens, 1, limit)
                .with_param(prompt_param(job.endpoint)));
        }
    };
    let p = &job.params;
    let n_vocab = job.model.tokenizer.n_vocab();
    if let Some(&(token, _)) = p
        .sampling
        .logit_bias
        .iter()
        .find(|b| b.0 as usize >= n_vocab)
    {
        return Err(ApiError::invalid(
            "logit_bias",
            format!("logit_bias token {token} is outside the vocabulary (n_vocab = {n_vocab})"),
        ));
    }
    let request = Request {
        prompt: job.prompt.clone(),
        sampling: p.sampling.clone(),
        stop: StopCriteria {
            max_tokens,
            stop_tokens: job.model.tokenizer.eog_ids().to_vec(),
            stop_strings: p.stop.clone(),
        },
        n: p.n,
        logprobs: p.logprobs,
        cache_salt: job.tenant.0,
        ignore_eos: p.ignore_eos,
    };
    let handle = job.model.engine.submit(request).map_err(|e| {
        ApiError::from_engine(&e).with_param_if_messages(prompt_param(job.endpoint))
    })?;
    let shaper = Shaper {
        endpoint: job.endpoint,
        id: response_id(job.endpoint, handle.id()),
        created: unix_now(),
        model: p.model.clone(),
        include_usage: p.include_usage,
        logprobs: p.logprobs.is_some(),
    };
    if p.stream {
        job.state.metrics.request(job.label(), 200);
        Ok(stream::response(job, handle, shaper))
    } else {
        let value = collect(&job, handle, &shaper).await?;
        job.state.metrics.request(job.label(), 200);
        Ok(Json(value).into_response())
    }
}

/// The parameter a context error points at.
fn prompt_param(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat => "messages",
        Endpoint::Completion => "prompt",
    }
}

/// `chatcmpl-…` / `cmpl-…`, unique per server run.
fn response_id(endpoint: Endpoint, request_id: u64) -> String {
    let prefix = match endpoint {
        Endpoint::Chat => "chatcmpl",
        Endpoint::Completion => "cmpl",
    };
    format!("{prefix}-{:x}{request_id:06x}", unix_now())
}

/// A token's log-probability entry with texts for the token and its alternatives.
pub fn token_logprob(model: &ServedModel, token: &TokenEvent) -> TokenLogprob {
    TokenLogprob {
        text: model.token_text(token.token),
        logprob: token.logprob,
        top: token
            .top_logprobs
            .iter()
            .map(|&(id, lp)| (model.token_text(id), lp))
            .collect(),
    }
}

/// Per-choice token timing, feeding the TTFT and inter-token histograms.
pub struct Timing {
    arrival: Instant,
    first_seen: bool,
    last: Vec<Option<Instant>>,
}

impl Timing {
    /// Timing for `n` choices of a request that arrived at `arrival`.
    pub fn new(arrival: Instant, n: usize) -> Timing {
        Timing {
            arrival,
            first_seen: false,
            last: vec![None; n],
        }
    }

    /// Records a token of `choice`.
    pub fn token(&mut self, state: &AppState, choice: usize) {
        let now = Instant::now();
        if !self.first_seen {
            self.first_seen = true;
            state.metrics.ttft.observe(now - self.arrival);
        }
        if let Some(slot) = self.last.get_mut(choice) {
            if let Some(prev) = *slot {
                state.metrics.itl.observe(now - prev);
            }
            *slot = Some(now);
        }
    }
}

/// Runs a request to its end and builds the whole response.
async fn collect(
    job: &Job,
    mut handle: RequestHandle,
    shaper: &Shaper,
) -> Result<serde_json::Value, ApiError> {
    let n = job.params.n;
    let mut choices = vec![ChoiceResult::default(); n];
    let mut usage = UsageCounts::default();
    let mut timing = Timing::new(job.arrival, n);
    let mut remaining = n;
    while remaining > 0 {
        let Some(event) = handle.recv().await else {
            return Err(ApiError::internal(
                "the engine ended the request without finishing it",
            ));
        };
        match event {
            RequestEvent::Started {
                prompt_tokens,
                cached_prompt_tokens,
            } => {
                usage.prompt_tokens = prompt_tokens;
                usage.cached_tokens = cached_prompt_tokens;
            }
            RequestEvent::Token { choice, token } => {
                timing.token(&job.state, choice);
                let Some(c) = choices.get_mut(choice) else {
                    continue;
                };
                c.text.push_str(&token.text);
                if shaper.logprobs {
                    c.logprobs.push(token_logprob(&job.model, &token));
                }
            }
            RequestEvent::Finished {
                choice,
                reason,
                text,
                usage: u,
            } => {
                if reason == FinishReason::Cancelled {
                    return Err(ApiError::shutting_down()
                        .with_message("the server shut down before this request finished"));
                }
                let Some(c) = choices.get_mut(choice) else {
                    continue;
                };
                c.text.push_str(&text);
                c.finish = Some(reason);
                usage.completion_tokens += u.completion_tokens;
                remaining -= 1;
            }
            RequestEvent::Error { message } => return Err(ApiError::internal(message)),
        }
    }
    job.state
        .metrics
        .tokens(usage.prompt_tokens, usage.completion_tokens);
    Ok(shaper.complete(&choices, usage))
}
