//! skiff-formats: model files in, typed and validated descriptions out.
//!
//! - [`gguf`]: the GGUF reader (versions 2 and 3) and writer.
//! - [`hf`]: Hugging Face folders (`config.json`, `tokenizer.json`, safetensors shards).
//! - [`spec`]: [`ModelSpec`], the one description every loader produces.
//! - [`ModelFile`]: an opened model — the spec plus memory-mapped tensor bytes.
//!
//! Every byte read here is untrusted: parsers check each length and count against the
//! bytes actually present before allocating, and fail with a typed [`Error`] that names the
//! field, the value and the limit. This crate does no arithmetic on tensor values.

pub mod gguf;
pub mod spec;

pub use spec::*;
