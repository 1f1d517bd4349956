//! The local-path source: GGUF files are copied into the store; Hugging Face folders
//! (`config.json` plus safetensors shards) are referenced where they are, not copied.
//!
//! Why folders are not copied: the store is content-addressed per file, and a folder is
//! loaded by its file names (`config.json`, `model-00001-of-00002.safetensors`, …).
//! Copying would need a per-model tree of links back to the blobs; referencing the folder
//! keeps one copy of multi-gigabyte checkpoints and costs only that the folder must stay
//! where it is (`skiff list` reports it missing otherwise, and `skiff rm` forgets it
//! without touching it).

use std::path::Path;

use super::{FetchContext, Fetched, ModelRef, Source};
use crate::error::{Error, Result};

/// Fetches [`ModelRef::Path`] references.
pub struct LocalPath;

impl Source for LocalPath {
    fn name(&self) -> &'static str {
        "file"
    }

    fn fetch(&self, model: &ModelRef, ctx: &FetchContext<'_>) -> Result<Option<Fetched>> {
        let ModelRef::Path(path) = model else {
            return Ok(None);
        };
        let meta = std::fs::metadata(path).map_err(|e| Error::io("open", path, e))?;
        if meta.is_dir() {
            return fetch_folder(path).map(Some);
        }
        ctx.ingest_file(path).map(Some)
    }
}

/// A folder is accepted when it holds `config.json` and at least one `.safetensors` file.
/// A folder of `.gguf` files is refused with their names, so the user picks one.
fn fetch_folder(dir: &Path) -> Result<Fetched> {
    let canonical = dir
        .canonicalize()
        .map_err(|e| Error::io("resolve", dir, e))?;
    let mut ggufs = Vec::new();
    let mut has_safetensors = false;
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".gguf") {
            ggufs.push(name);
        } else if name.ends_with(".safetensors") {
            has_safetensors = true;
        }
    }
    if canonical.join("config.json").is_file() && has_safetensors {
        return Ok(Fetched::Folder { path: canonical });
    }
    ggufs.sort();
    let reason = match ggufs.len() {
        0 => "holds neither config.json with .safetensors shards nor a .gguf file".to_string(),
        _ => format!(
            "is not a Hugging Face folder; pass one of its GGUF files instead: {}",
            ggufs.join(", ")
        ),
    };
    Err(Error::NoModelFile {
        what: dir.display().to_string(),
        reason,
    })
}
