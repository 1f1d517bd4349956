//! skiff-tokenizer: text ↔ token ids, streaming detokenization, chat templates.
//!
//! - [`Tokenizer`]: built from a model's [`skiff_formats::TokenizerSpec`] — a vocabulary in
//!   GGUF metadata (byte-level BPE or SentencePiece, converted to a Hugging Face
//!   `tokenizers` pipeline that reproduces llama.cpp) or a `tokenizer.json`.
//! - [`Detokenizer`]: incremental decoding that never emits broken UTF-8.
//! - [`ChatTemplate`]: Hugging Face Jinja chat templates rendered by minijinja in a
//!   sandbox with fuel, output and recursion limits.
//!
//! Prompt-injection rule: [`Tokenizer::encode`] never turns special-token text in user
//! content into special tokens; only [`Tokenizer::encode_with_special_tokens`], meant for
//! template output, does.

#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

mod detok;
mod error;
mod gguf;
mod hf;
mod pieces;
mod special;
mod template;
mod tokenizer;
mod vocab;

pub use detok::Detokenizer;
pub use error::{Error, Result};
pub use hf::MAX_TOKENIZER_JSON_BYTES;
pub use template::{ChatTemplate, MAX_TEMPLATE_BYTES, Message, RenderLimits};
pub use tokenizer::{MAX_ENCODE_BYTES, Tokenizer};
pub use vocab::{EOG_TEXTS, TokenClass};
