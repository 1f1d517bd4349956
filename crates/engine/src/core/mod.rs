//! The continuous-batching engine core: many sequences share each forward pass.
//!
//! - [`api`]: the public handle ([`Engine`](api::Engine)), requests, events and stats.
//! - `worker`: the core thread, the only owner of the scheduler and the KV cache: the
//!   step loop `schedule -> execute -> update`.
//! - `scheduler`: tensor-free scheduling over sequence ids, token counts and block ids
//!   (token budget, admission, preemption, forks).
//! - `block_pool`: free list, reference counts and the evictable prefix-cache blocks.
//! - `prefix`: the chained block hashes of the prefix cache.
//! - `setup`: configuration checks and the sizing of the KV pool.
//! - `output`: per-choice sampling, detokenization, stop conditions and events.

pub mod api;
pub(crate) mod block_pool;
pub(crate) mod output;
pub(crate) mod prefix;
pub(crate) mod scheduler;
pub(crate) mod setup;
pub(crate) mod worker;
