//! Streamed responses: the engine's events as server-sent events.
//!
//! Framing: `data: <compact JSON>\n\n` per chunk, `data: [DONE]` at the end, keep-alive
//! comments (`:`) while nothing happens — openai-python ignores those. Order per request:
//! the role chunk of each chat choice, text chunks as tokens release text, one terminal
//! chunk per choice, the usage chunk when `stream_options.include_usage` asked for it, then
//! `[DONE]`. A failure after the 200 went out becomes one `data: {"error":{…}}` event and
//! the stream ends without `[DONE]` (openai-python raises `APIError` on it).
//!
//! The [`RequestHandle`] lives inside the body stream: when the client disconnects, hyper
//! drops the body, the handle drops, and the engine cancels the request.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use skiff_engine::{FinishReason, RequestEvent, RequestHandle};

use crate::error::ApiError;
use crate::generate::{Job, Timing, token_logprob};
use crate::wire::{Shaper, UsageCounts};

/// One streaming request's state, owned by the response body.
struct Streamer {
    job: Job,
    handle: RequestHandle,
    shaper: Shaper,
    /// SSE data payloads ready to send.
    pending: VecDeque<String>,
    finished: Vec<bool>,
    usage: UsageCounts,
    timing: Timing,
    /// No more events will be read.
    done: bool,
    /// The stream reached its natural end (`[DONE]` or an error event was queued).
    complete: bool,
}

impl Drop for Streamer {
    /// A body dropped before its end means the client went away.
    fn drop(&mut self) {
        if !self.complete {
            self.job.state.metrics.aborted();
        }
    }
}

/// The SSE response for a submitted request.
pub fn response(job: Job, handle: RequestHandle, shaper: Shaper) -> Response {
    let n = job.params.n;
    let mut pending = VecDeque::new();
    for index in 0..n {
        if let Some(chunk) = shaper.role_chunk(index) {
            pending.push_back(chunk.to_string());
        }
    }
    let timing = Timing::new(job.arrival, n);
    let streamer = Streamer {
        job,
        handle,
        shaper,
        pending,
        finished: vec![false; n],
        usage: UsageCounts::default(),
        timing,
        done: false,
        complete: false,
    };
    let events = stream::unfold(streamer, |mut s| async move {
        let data = s.next_payload().await?;
        Some((Ok::<Event, Infallible>(Event::default().data(data)), s))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    let headers = response.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

impl Streamer {
    /// The next data payload, reading engine events as needed; `None` at the end.
    async fn next_payload(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Some(p);
            }
            if self.done {
                return None;
            }
            match self.handle.recv().await {
                Some(event) => self.on_event(event),
                None => self.fail(ApiError::internal(
                    "the engine ended the request without finishing it",
                )),
            }
        }
    }

    fn on_event(&mut self, event: RequestEvent) {
        match event {
            RequestEvent::Started {
                prompt_tokens,
                cached_prompt_tokens,
            } => {
                self.usage.prompt_tokens = prompt_tokens;
                self.usage.cached_tokens = cached_prompt_tokens;
            }
            RequestEvent::Token { choice, token } => {
                self.timing.token(&self.job.state, choice);
                let lp: Vec<_> = if self.shaper.logprobs {
                    vec![token_logprob(&self.job.model, &token)]
                } else {
                    Vec::new()
                };
                if !token.text.is_empty() || !lp.is_empty() {
                    let chunk = self.shaper.text_chunk(choice, &token.text, &lp);
                    self.pending.push_back(chunk.to_string());
                }
            }
            RequestEvent::Finished {
                choice,
                reason,
                text,
                usage,
            } => self.on_finished(choice, reason, &text, usage.completion_tokens),
            RequestEvent::Error { message } => self.fail(ApiError::internal(message)),
        }
    }

    fn on_finished(&mut self, choice: usize, reason: FinishReason, text: &str, tokens: usize) {
        if reason == FinishReason::Cancelled {
            self.fail(
                ApiError::shutting_down()
                    .with_message("the server shut down before this request finished"),
            );
            return;
        }
        if !text.is_empty() {
            let chunk = self.shaper.text_chunk(choice, text, &[]);
            self.pending.push_back(chunk.to_string());
        }
        self.pending
            .push_back(self.shaper.finish_chunk(choice, reason).to_string());
        self.usage.completion_tokens += tokens;
        if let Some(f) = self.finished.get_mut(choice) {
            *f = true;
        }
        if self.finished.iter().all(|&f| f) {
            if self.shaper.include_usage {
                let chunk = self.shaper.usage_chunk(self.usage);
                self.pending.push_back(chunk.to_string());
            }
            self.pending.push_back("[DONE]".to_string());
            self.end();
        }
    }

    /// Queues the error event and ends the stream.
    fn fail(&mut self, error: ApiError) {
        self.pending.push_back(error.body().to_string());
        self.end();
    }

    fn end(&mut self) {
        self.done = true;
        self.complete = true;
        let m = &self.job.state.metrics;
        m.tokens(self.usage.prompt_tokens, self.usage.completion_tokens);
    }
}
