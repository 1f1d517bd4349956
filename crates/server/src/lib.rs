//! skiff-server: the OpenAI-compatible HTTP API over the batching engine
//! ([`skiff_engine::Engine`]), and [`loadgen`], a load generator for any OpenAI-compatible
//! server.
//!
//! The data path of one request:
//! ```text
//! routes::chat_completions      bytes -> wire::parse_chat (400 naming the parameter)
//!  AppState::model              id -> ServedModel (404 unknown, 503 loading/shutting down)
//!  ServedModel::encode_chat     ChatTemplate::render + Tokenizer::encode (blocking pool)
//!  generate::run                context check, Engine::submit (429 when the queue is full)
//!  generate::collect | stream   RequestEvents -> chat.completion | SSE chunks + [DONE]
//! ```
//!
//! - [`Server`]: bind with the security defaults (loopback unless keys or an explicit
//!   insecure flag), load models in the background, serve, drain on shutdown.
//! - [`routes`]: the endpoints; [`wire`]: OpenAI JSON in and out; [`error::ApiError`]: the
//!   one mapping from failures to statuses and error bodies.
//! - [`metrics`]: Prometheus text; [`auth`]: API keys and the Host allow-list.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod auth;
pub mod error;
pub mod generate;
pub mod loadgen;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod serve;
pub mod state;
pub mod stream;
pub mod wire;

pub use error::{ApiError, Result, ServerError};
pub use model::{EngineSettings, ModelBundle, ServedModel};
pub use serve::{DEFAULT_MAX_BODY_BYTES, Server, ServerConfig};
pub use state::{AppState, Health, ModelSlot};
