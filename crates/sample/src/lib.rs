//! skiff-sample: logits in, one token id out.
//!
//! Pure and tensor-free: a [`Sampler`] takes one row of logits (`n_vocab` floats) plus the
//! token history and returns the chosen token with its log-probability. Each sampler owns a
//! seeded [`rng::Xoshiro256StarStar`], so a request with a seed is reproducible across runs,
//! machines and skiff versions.
//!
//! The processing chain is llama.cpp's default (`common/sampling.cpp`, `common_sampler_init`:
//! the logit-bias sampler is added ahead of the configurable chain, whose default order
//! starts with penalties):
//!
//! ```text
//! logit bias → penalties → top-k → top-p → min-p → temperature → draw
//! ```
//!
//! with temperature 0 meaning greedy (argmax of the biased and penalised logits, ties to
//! the lowest id). See [`sampler`] for the log-probability convention.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod error;
pub mod params;
pub mod penalties;
pub mod rng;
pub mod sampler;
pub mod softmax;
pub mod truncate;

pub use error::SampleError;
pub use params::SamplingParams;
pub use sampler::{Sampled, Sampler};
