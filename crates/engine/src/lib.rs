//! skiff-engine: from prompt tokens to a finished completion.
//!
//! Today the engine runs one sequence at a time, synchronously, shaped for the batching
//! engine that replaces it:
//! - [`session`]: the core. A [`Session`] owns a KV cache and turns token ids into logits
//!   (prompt in chunks, then one token per step), reusing the cached prefix.
//! - [`generate`]: the loop around it. [`Session::generate`] samples, detokenizes
//!   incrementally, applies [`StopCriteria`], streams [`Event`]s and returns a
//!   [`Completion`] with its [`Usage`].
//! - [`stop`]: stop criteria and the stop-string matcher.
//! - [`core`](mod@core): the continuous-batching [`Engine`]: many requests share each
//!   batched forward pass over a paged KV cache with a prefix cache.
//! - [`perplexity`](mod@perplexity): llama.cpp-compatible perplexity over a text.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod core;
pub mod error;
pub mod generate;
pub mod perplexity;
pub mod session;
pub mod stop;

pub use core::api::{
    Engine, EngineConfig, EngineStats, KvDtype, MAX_N, MAX_TOP_LOGPROBS, Request, RequestEvent,
    RequestHandle, ShutdownMode,
};
pub use error::{EngineError, Result};
pub use generate::{Completion, Event, FinishReason, GenerateRequest, TokenEvent, Usage};
pub use perplexity::{ChunkProgress, PerplexityConfig, PerplexityReport, perplexity};
pub use session::{Prefilled, Session, SessionConfig};
pub use stop::{StopCriteria, StopScan, StopStrings};
