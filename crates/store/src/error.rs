//! The one error type of the store crate.
//!
//! Every variant names what was being done (the path, the model name, the source) and, where
//! there is one, the limit or the expected value, so a user can act on the message alone.

use std::path::PathBuf;

/// Everything that can go wrong while storing, finding or fetching a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "read", "rename", …).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model argument could not be parsed.
    #[error("bad model source {input:?}: {reason}")]
    BadSource {
        /// What the user typed.
        input: String,
        /// Why it was rejected, with the expected syntax.
        reason: String,
    },
    /// A store name has characters or a length the store does not accept.
    #[error("bad model name {name:?}: {reason}")]
    BadName {
        /// The rejected name.
        name: String,
        /// The rule it broke.
        reason: &'static str,
    },
    /// No model of that name is in the store.
    #[error("no model named {name:?} in the store at {}; {}", root.display(), list_or_empty(available))]
    UnknownModel {
        /// The requested name.
        name: String,
        /// The store's root folder.
        root: PathBuf,
        /// The names that do exist.
        available: Vec<String>,
    },
    /// A known short name that has not been pulled yet.
    #[error("model {name:?} is not in the store yet; run `skiff pull {name}` first")]
    NotPulled {
        /// The short name.
        name: String,
    },
    /// A manifest file could not be read as a manifest.
    #[error("manifest {} is unreadable: {reason}", path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// The parse error.
        reason: String,
    },
    /// A blob is missing or its size or sha256 differs from its manifest.
    #[error("model {name:?} is corrupt: blob {} {problem}; run `skiff rm {name}` and pull it again", path.display())]
    Corrupt {
        /// The model name.
        name: String,
        /// The blob path.
        path: PathBuf,
        /// What is wrong ("is missing", "has 10 bytes, manifest says 20", …).
        problem: String,
    },
    /// The name is already used by a model from a different source.
    #[error(
        "the name {name:?} is already used by {existing}; pass --name to choose another or `skiff rm {name}` first"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The source string of the model stored under it.
        existing: String,
    },
    /// The fetched bytes do not hash to what the source declared.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    ShaMismatch {
        /// The file or package checked.
        what: String,
        /// The declared digest.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A file that should be a model does not start with the GGUF magic.
    #[error("{what} is not a GGUF file (first bytes {head:02x?}, expected \"GGUF\")")]
    NotGguf {
        /// The file or package.
        what: String,
        /// Its first bytes (up to 4).
        head: Vec<u8>,
    },
    /// A repository, folder or package holds no model file, or several where one was needed.
    #[error("{what}: {reason}")]
    NoModelFile {
        /// The repository, folder or package.
        what: String,
        /// What was found instead (the candidates, or that there are none).
        reason: String,
    },
    /// The model is not in the Hugging Face cache and the network may not be used.
    #[error("hf:{repo} ({file}) is not in the Hugging Face cache (searched {}) and HF_HUB_OFFLINE is set", searched.display())]
    HfNotCached {
        /// The repository id.
        repo: String,
        /// The file, or "no file named" when none was given.
        file: String,
        /// The path that was searched.
        searched: PathBuf,
    },
    /// The Hugging Face endpoint could not be reached.
    #[error("could not reach {endpoint} for {url}: {reason} (set HF_ENDPOINT or HF_HUB_OFFLINE=1 and populate the cache at {})", cache.display())]
    HfUnreachable {
        /// The endpoint (`HF_ENDPOINT`).
        endpoint: String,
        /// The URL requested.
        url: String,
        /// The transport error.
        reason: String,
        /// The cache folder that was searched first.
        cache: PathBuf,
    },
    /// The Hugging Face endpoint answered with an error status.
    #[error("{url} answered HTTP {status}{hint}")]
    HfStatus {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// A hint for common statuses (gated repos, missing files).
        hint: &'static str,
    },
    /// A download broke off after it started.
    #[error("download of {url} failed after {received} bytes: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// Bytes received before the failure.
        received: u64,
        /// The transport error.
        reason: String,
    },
    /// pip could not be run, or failed for a reason other than a missing package.
    #[error("`{command}` failed: {reason}")]
    Pip {
        /// The command line.
        command: String,
        /// The exit status and the end of pip's stderr.
        reason: String,
    },
    /// The package does not exist on the index (or in `SKIFF_PIP_WHEELS`).
    #[error("pip package {package:?} was not found: {detail}")]
    PipNotFound {
        /// The package requested.
        package: String,
        /// What was tried.
        detail: String,
    },
    /// A wheel could not be read as a zip archive.
    #[error("wheel {}: {reason}", path.display())]
    BadWheel {
        /// The wheel file.
        path: PathBuf,
        /// The zip error or layout problem.
        reason: String,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// "the store holds: a, b" or "the store is empty".
fn list_or_empty(names: &[String]) -> String {
    if names.is_empty() {
        "the store is empty".to_string()
    } else {
        format!("the store holds: {}", names.join(", "))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
