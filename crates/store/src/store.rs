//! The store on disk: `blobs/`, `manifests/`, `tmp/` under one root folder.
//!
//! ```text
//! <root>/blobs/sha256-<hex>        model files, named by content
//! <root>/manifests/<name>.json     one per model name (see `Manifest`)
//! <root>/tmp/<pid>-<rand>.partial  pulls in progress (never listed)
//! ```
//! The root is `--store DIR`, else `$SKIFF_MODELS`, else `<cache dir>/skiff/models`
//! (`~/.cache/skiff/models` on Linux).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::blob::{blob_file_name, hash_file};
use crate::error::{Error, Result};
use crate::manifest::{Content, Manifest, sync_dir, validate_name};
use crate::source::{ModelRef, alias};

/// The environment variable that moves the store.
pub const ENV_MODELS: &str = "SKIFF_MODELS";

/// How thoroughly to check a blob against its manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The blob exists and has the manifest's size (cheap; done on every resolve).
    Size,
    /// Also re-hash the whole blob and compare the sha256.
    Sha256,
}

/// Whether a model's bytes match its manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Everything checked matches.
    Ok,
    /// Something does not; the text says what ("is missing", "has 10 bytes, manifest says 20").
    Corrupt(String),
}

/// One row of [`Store::list`].
#[derive(Clone, Debug)]
pub struct Entry {
    /// The model name (the manifest's file stem).
    pub name: String,
    /// The manifest, or why it could not be read.
    pub manifest: std::result::Result<Manifest, String>,
    /// The result of the requested check (`Corrupt` when the manifest is unreadable).
    pub health: Health,
}

/// What [`Store::remove`] did.
#[derive(Clone, Debug)]
pub struct Removed {
    /// The manifest that was deleted; `None` when it was unreadable.
    pub manifest: Option<Manifest>,
    /// The blob deleted with it; `None` when another model still uses it, or for folders.
    pub blob: Option<PathBuf>,
}

/// A model store rooted at one folder.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        for dir in [store.blobs_dir(), store.manifests_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        }
        Ok(store)
    }

    /// Opens the store at `flag` (a `--store` argument), else `$SKIFF_MODELS`, else the
    /// user's cache folder.
    pub fn open_default(flag: Option<&Path>) -> Result<Store> {
        if let Some(dir) = flag {
            return Store::open(dir);
        }
        Store::open(default_root()?)
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/blobs`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// `<root>/manifests`.
    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// `<root>/tmp`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The path of the blob with digest `sha256`.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs_dir().join(blob_file_name(sha256))
    }

    /// The manifest path of `name` (checked to be a valid name).
    pub fn manifest_path(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.manifests_dir().join(format!("{name}.json")))
    }

    /// The names of all models, sorted. Temporary files and anything not `*.json` are
    /// ignored.
    pub fn names(&self) -> Result<Vec<String>> {
        let dir = self.manifests_dir();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_string)
            })
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The manifest of `name`; [`Error::UnknownModel`] (listing what exists) when absent.
    pub fn manifest(&self, name: &str) -> Result<Manifest> {
        let path = self.manifest_path(name)?;
        match Manifest::read(&path) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(Error::UnknownModel {
                    name: name.to_string(),
                    root: self.root.clone(),
                    available: self.names().unwrap_or_default(),
                })
            }
            other => other,
        }
    }

    /// The file or folder that holds the model's bytes.
    pub fn content_path(&self, manifest: &Manifest) -> PathBuf {
        match &manifest.content {
            Content::Blob { sha256, .. } => self.blob_path(sha256),
            Content::Folder { path } => PathBuf::from(path),
        }
    }

    /// Checks a model's bytes against its manifest.
    pub fn check(&self, manifest: &Manifest, check: Check) -> Result<Health> {
        let path = self.content_path(manifest);
        let (sha256, size) = match &manifest.content {
            Content::Folder { .. } if path.join("config.json").is_file() => return Ok(Health::Ok),
            Content::Folder { .. } => {
                return Ok(Health::Corrupt(
                    "folder is missing or has no config.json".into(),
                ));
            }
            Content::Blob { sha256, size } => (sha256, *size),
        };
        let actual = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Health::Corrupt("is missing".into()));
            }
            Err(e) => return Err(Error::io("stat", &path, e)),
        };
        if actual != size {
            return Ok(Health::Corrupt(format!(
                "has {actual} bytes, manifest says {size}"
            )));
        }
        if check == Check::Sha256 {
            let (actual_sha, _) = hash_file(&path)?;
            if &actual_sha != sha256 {
                return Ok(Health::Corrupt(format!(
                    "has sha256 {actual_sha}, manifest says {sha256}"
                )));
            }
        }
        Ok(Health::Ok)
    }

    /// Every model with its health, sorted by name. An unreadable manifest is listed as
    /// corrupt rather than failing the whole listing.
    pub fn list(&self, check: Check) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for name in self.names()? {
            let path = self.manifest_path(&name)?;
            let entry = match Manifest::read(&path) {
                Ok(manifest) => Entry {
                    health: self.check(&manifest, check)?,
                    name,
                    manifest: Ok(manifest),
                },
                Err(e) => Entry {
                    name,
                    manifest: Err(e.to_string()),
                    health: Health::Corrupt("manifest is unreadable".into()),
                },
            };
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The path of model `name`, after checking the blob's size (never a corrupt blob).
    pub fn resolve_name(&self, name: &str) -> Result<PathBuf> {
        let manifest = self.manifest(name)?;
        match self.check(&manifest, Check::Size)? {
            Health::Ok => Ok(self.content_path(&manifest)),
            Health::Corrupt(problem) => Err(Error::Corrupt {
                name: name.to_string(),
                path: self.content_path(&manifest),
                problem,
            }),
        }
    }

    /// What a model argument points at: an existing path is itself; a store name is its
    /// (size-checked) blob; a source already pulled (`pip:…`, `hf:…`) is its blob. A known
    /// short name or source not yet pulled is [`Error::NotPulled`].
    pub fn resolve(&self, arg: &str) -> Result<PathBuf> {
        match ModelRef::parse(arg)? {
            ModelRef::Path(path) => match fs::metadata(&path) {
                Ok(_) => Ok(path),
                Err(e) => Err(Error::io("open", path, e)),
            },
            ModelRef::Name(name) => {
                if self.manifest_path(&name)?.exists() {
                    self.resolve_name(&name)
                } else if alias(&name).is_some() {
                    Err(Error::NotPulled { name })
                } else {
                    Err(Error::UnknownModel {
                        name,
                        root: self.root.clone(),
                        available: self.names()?,
                    })
                }
            }
            source => {
                let canonical = source.canonical();
                match self.find_by_source(&canonical)? {
                    Some(name) => self.resolve_name(&name),
                    None => Err(Error::NotPulled {
                        name: arg.to_string(),
                    }),
                }
            }
        }
    }

    /// The name of the model pulled from `source` (canonical form), if any.
    pub fn find_by_source(&self, source: &str) -> Result<Option<String>> {
        for name in self.names()? {
            if let Ok(m) = Manifest::read(&self.manifest_path(&name)?)
                && m.source == source
            {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// Deletes model `name`: its manifest, and its blob unless another manifest still
    /// references the same digest. A referenced folder is never touched. An unreadable
    /// manifest is deleted too (its blob, unknown, stays).
    pub fn remove(&self, name: &str) -> Result<Removed> {
        let path = self.manifest_path(name)?;
        let manifest = match self.manifest(name) {
            Ok(m) => Some(m),
            Err(Error::BadManifest { .. }) => None,
            Err(e) => return Err(e),
        };
        fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        sync_dir(&self.manifests_dir())?;
        let Some(sha256) = manifest
            .as_ref()
            .and_then(Manifest::sha256)
            .map(str::to_string)
        else {
            return Ok(Removed {
                manifest,
                blob: None,
            });
        };
        let still_used = self.names()?.into_iter().any(|other| {
            self.manifest_path(&other)
                .and_then(|p| Manifest::read(&p))
                .is_ok_and(|m| m.sha256() == Some(sha256.as_str()))
        });
        if still_used {
            return Ok(Removed {
                manifest,
                blob: None,
            });
        }
        let blob = self.blob_path(&sha256);
        match fs::remove_file(&blob) {
            Ok(()) => Ok(Removed {
                manifest,
                blob: Some(blob),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Removed {
                manifest,
                blob: None,
            }),
            Err(e) => Err(Error::io("remove", &blob, e)),
        }
    }
}

/// `$SKIFF_MODELS`, else `<cache dir>/skiff/models`.
pub fn default_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(ENV_MODELS).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .map(|d| d.join("skiff").join("models"))
        .ok_or_else(|| {
            Error::io(
                "find the cache folder for",
                "the model store",
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no home or cache folder; set {ENV_MODELS} or pass --store"),
                ),
            )
        })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
