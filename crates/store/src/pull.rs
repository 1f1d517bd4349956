//! Pulling: turn a model argument into a stored model, once.
//!
//! A pull picks the store name (`--name`, else the short name, else one derived from the
//! source), returns at once when that name already holds the same source with a healthy
//! blob ("already present"), removes `.partial` files abandoned by killed pulls, asks the
//! source chain for the bytes, and finally writes the manifest (atomically). Until that
//! last rename nothing is visible to `list` or `resolve`.

use std::path::PathBuf;

use crate::blob::clean_stale;
use crate::error::{Error, Result};
use crate::manifest::{Content, MANIFEST_VERSION, Manifest, now_rfc3339, validate_name};
use crate::progress::Progress;
use crate::source::{ALIASES, FetchContext, Fetched, ModelRef, Source, SourceConfig, alias};
use crate::store::{Check, Health, Store};

/// Options of one pull.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// The store name to use instead of the derived one.
    pub name: Option<String>,
}

/// Whether a pull fetched anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullStatus {
    /// The model was already in the store; nothing was fetched.
    AlreadyPresent,
    /// The model was fetched and stored.
    Pulled,
}

/// The result of a pull.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The store name.
    pub name: String,
    /// The model's file (blob) or folder.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Whether anything was fetched.
    pub status: PullStatus,
}

impl Store {
    /// Pulls `input` through the default source chain built from `config`.
    pub fn pull(
        &self,
        input: &str,
        options: &PullOptions,
        config: &SourceConfig,
        progress: &dyn Progress,
    ) -> Result<Pulled> {
        self.pull_with(input, options, &config.chain(), progress)
    }

    /// Pulls `input` through `chain`, trying each source in turn.
    pub fn pull_with(
        &self,
        input: &str,
        options: &PullOptions,
        chain: &[Box<dyn Source>],
        progress: &dyn Progress,
    ) -> Result<Pulled> {
        let (model, short_name) = self.expand(input)?;
        let model = match model {
            Expanded::Stored(name) => return self.present(&name),
            Expanded::Source(model) => model,
        };
        let name = match options
            .name
            .clone()
            .or(short_name)
            .or_else(|| model.default_name())
        {
            Some(name) => name,
            None => {
                return Err(Error::BadSource {
                    input: input.to_string(),
                    reason: "no store name can be derived from it; pass --name".to_string(),
                });
            }
        };
        validate_name(&name)?;
        let source = model.canonical();
        if self.manifest_path(&name)?.exists() {
            let existing = self.manifest(&name)?;
            if existing.source != source {
                return Err(Error::NameTaken {
                    name,
                    existing: existing.source,
                });
            }
            if self.check(&existing, Check::Size)? == Health::Ok {
                return self.present(&name);
            }
        }
        clean_stale(&self.tmp_dir())?;
        clean_stale(&self.manifests_dir())?;
        let (tmp_dir, blobs_dir) = (self.tmp_dir(), self.blobs_dir());
        let ctx = FetchContext {
            tmp_dir: &tmp_dir,
            blobs_dir: &blobs_dir,
            progress,
        };
        let mut fetched = None;
        for src in chain {
            if let Some(f) = src.fetch(&model, &ctx)? {
                fetched = Some(f);
                break;
            }
        }
        let fetched = fetched.ok_or_else(|| Error::BadSource {
            input: input.to_string(),
            reason: "no configured source handles it".to_string(),
        })?;
        let manifest = manifest_for(name.clone(), source, fetched);
        manifest.write_atomic(&self.manifest_path(&name)?)?;
        Ok(Pulled {
            path: self.content_path(&manifest),
            name,
            manifest,
            status: PullStatus::Pulled,
        })
    }

    /// Expands short names; a bare name that is already stored needs no fetching.
    fn expand(&self, input: &str) -> Result<(Expanded, Option<String>)> {
        let model = ModelRef::parse(input)?;
        let ModelRef::Name(name) = model else {
            return Ok((Expanded::Source(model), None));
        };
        if let Some(a) = alias(&name) {
            return Ok((
                Expanded::Source(ModelRef::parse(a.source)?),
                Some(a.name.to_string()),
            ));
        }
        if self.manifest_path(&name)?.exists() {
            return Ok((Expanded::Stored(name), None));
        }
        let known: Vec<&str> = ALIASES.iter().map(|a| a.name).collect();
        Err(Error::BadSource {
            input: input.to_string(),
            reason: format!(
                "not a path, a source (hf:…, pip:…), a stored model, or a known short name ({})",
                known.join(", ")
            ),
        })
    }

    /// The "already present" answer for a stored, size-checked model.
    fn present(&self, name: &str) -> Result<Pulled> {
        let path = self.resolve_name(name)?;
        Ok(Pulled {
            name: name.to_string(),
            path,
            manifest: self.manifest(name)?,
            status: PullStatus::AlreadyPresent,
        })
    }
}

/// What a model argument expanded to.
enum Expanded {
    /// A model already in the store under this name.
    Stored(String),
    /// Something to fetch.
    Source(ModelRef),
}

fn manifest_for(name: String, source: String, fetched: Fetched) -> Manifest {
    let (file_name, format, content) = match fetched {
        Fetched::Blob { blob, file_name } => (
            file_name,
            "gguf",
            Content::Blob {
                sha256: blob.sha256,
                size: blob.size,
            },
        ),
        Fetched::Folder { path } => (
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            "hf-folder",
            Content::Folder {
                path: path.display().to_string(),
            },
        ),
    };
    Manifest {
        version: MANIFEST_VERSION,
        name,
        source,
        file_name,
        format: format.to_string(),
        pulled_at: now_rfc3339(),
        content,
    }
}
