//! skiff-formats: model files in, typed and validated descriptions out.
//!
//! - [`gguf`]: the GGUF reader (versions 2 and 3) and streaming writer.
//! - [`hf`]: Hugging Face folders (`config.json`, `tokenizer.json`, safetensors shards).
//! - [`safetensors`]: the safetensors header parser.
//! - [`spec`]: [`ModelSpec`], the one description every loader produces.
//! - [`ModelFile`]: an opened model — the spec plus memory-mapped tensor bytes.
//!
//! Every byte read here is untrusted: parsers check each length and count against the
//! bytes actually present before allocating, and fail with a typed [`Error`] that names the
//! field, the value and the limit. This crate does no arithmetic on tensor values.
//!
//! The only `unsafe` is the read-only `mmap` in [`mmap`]; loading untrusted model files is
//! still best done in an isolated environment, but any crash, hang or unbounded allocation
//! while parsing one is a bug here.
#![deny(unsafe_code)]
#![warn(clippy::unwrap_used)]

mod error;
pub mod gguf;
pub mod hf;
pub mod mmap;
mod model_file;
pub mod safetensors;
pub mod spec;
mod spec_build;

pub use error::{Error, Result};
pub use gguf::{GgufFile, GgufStream, GgufWriter, MetaValue, parse_gguf};
pub use model_file::ModelFile;
pub use safetensors::{SafetensorsHeader, parse_safetensors};
pub use spec::*;
pub use spec_build::{
    MAX_CHAT_TEMPLATE_LEN, MAX_CONTEXT, MAX_HEADS, MAX_LAYERS, MAX_WIDTH, SUPPORTED_ARCHS,
};
