//! The OpenAI wire format: request parsing and validation ([`request`]), typed field reads
//! with parameter-naming errors ([`fields`]), and response objects ([`response`]).
//!
//! **Architecture Invariant:** only this module knows OpenAI's JSON; the engine sees
//! `skiff_engine::Request`s and produces `RequestEvent`s.

pub mod fields;
pub mod request;
pub mod response;

pub use request::{
    ChatRequest, CompletionRequest, GenParams, MAX_MESSAGES, Prompt, parse_chat, parse_completion,
};
pub use response::{ChoiceResult, Endpoint, Shaper, TokenLogprob, UsageCounts, finish_reason};
