//! skiff-models: transformer architectures as pure functions of (weights, batch, KV cache).
//!
//! - [`Model`]: load an architecture from a [`skiff_formats::ModelFile`] and run flat,
//!   multi-sequence [`Batch`]es into [`Logits`].
//! - [`KvCache`]: per-layer, per-slot keys and values, owned by the caller.
//! - `layers/`: RMSNorm, RoPE (both pairings, linear/YaRN/Llama 3 scaling), GQA attention
//!   with sliding windows and soft caps, gated MLPs, embeddings, linear layers, LM head.
//! - `arch/`: one file per family (Llama/Mistral, Qwen2, Qwen3, Gemma 3) over `layers/`,
//!   each with its weight-name table; `registry` maps architecture names to them.
//!
//! Debugging: set `SKIFF_TAP=1` (or a tap name) to print checksums of intermediate
//! activations, layer by layer, for comparison with a reference ([`tap`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod arch;
pub mod batch;
pub mod error;
pub mod kv;
pub mod layers;
pub mod model;
pub mod registry;
pub mod tap;
pub mod weights;

pub use batch::{Batch, Logits};
pub use error::{Error, Result};
pub use kv::KvCache;
pub use model::Model;
pub use registry::supported_architectures;
pub use skiff_formats::ModelSpec;
