//! The continuous-batching engine core: many sequences share each forward pass.
//!
//! - [`api`]: the public handle ([`Engine`](api::Engine)), requests, events and stats.
//! - `worker`: the core thread, the only owner of the scheduler and the KV cache.

pub mod api;
pub mod kv_dtype;
pub(crate) mod worker;
