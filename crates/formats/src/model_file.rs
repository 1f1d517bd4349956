//! [`ModelFile`]: the one entry point for opening a model, whatever its format.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::gguf::{GGUF_MAGIC, parse_gguf};
use crate::mmap::{open_mapped, read_at};
use crate::spec::{ModelSpec, TensorInfo};

/// An opened model: its validated [`ModelSpec`] and the memory-mapped files that hold the
/// tensor bytes. The files must not be modified or truncated while this is alive (see
/// [`crate::mmap`]'s notes: a truncated mapping faults with SIGBUS).
#[derive(Debug)]
pub struct ModelFile {
    spec: ModelSpec,
    /// The files, indexed by [`TensorInfo::shard`].
    shards: Vec<Shard>,
}

/// One opened shard of a model: its path, the open file (for
/// [`ModelFile::read_tensor_range`]) and its mapping.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) map: Mmap,
}

impl Shard {
    /// Opens and maps `path`.
    pub(crate) fn open(path: &Path) -> Result<Shard> {
        let (file, map) = open_mapped(path)?;
        Ok(Shard {
            path: path.to_path_buf(),
            file,
            map,
        })
    }
}

impl ModelFile {
    /// Opens a `.gguf` file (recognised by its magic, whatever its extension), a Hugging Face
    /// folder, or a single `.safetensors` file with `config.json` beside it.
    pub fn open(path: &Path) -> Result<ModelFile> {
        if path.is_dir() {
            return crate::hf::open_dir(path);
        }
        let shard = Shard::open(path)?;
        if shard.map.len() >= 4 && shard.map[..4] == GGUF_MAGIC.to_le_bytes() {
            let file = parse_gguf(&shard.map)?;
            let spec = ModelSpec::from_gguf(&file)?;
            return Ok(ModelFile::from_parts(spec, vec![shard]));
        }
        drop(shard);
        crate::hf::open_file(path)
    }

    /// Assembles a model from a spec whose tensors index `shards` by [`TensorInfo::shard`].
    pub(crate) fn from_parts(spec: ModelSpec, shards: Vec<Shard>) -> ModelFile {
        ModelFile { spec, shards }
    }

    /// The validated model description.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// [`ModelSpec::drop_vocabulary`]: for a caller that has built its tokenizer and only
    /// runs the model from here on.
    pub fn drop_vocabulary(&mut self) {
        self.spec.drop_vocabulary();
    }

    /// The bytes of `info`, borrowed from the mapping without copying.
    ///
    /// # Panics
    /// If `info` does not come from this model's spec: every tensor of the spec was checked
    /// to lie inside its file when the model was opened.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        let start = usize::try_from(info.offset).ok();
        let end = start
            .zip(usize::try_from(info.n_bytes).ok())
            .and_then(|(s, n)| s.checked_add(n));
        self.shards
            .get(info.shard)
            .zip(start.zip(end))
            .and_then(|(shard, (s, e))| shard.map.get(s..e))
            .expect("TensorInfo from this ModelFile's spec lies inside its file")
    }

    /// Reads bytes `start..start + out.len()` of the tensor `info` into `out` with a positional
    /// read of its file, not through the mapping: the bytes are copied once, and the file's
    /// pages never join this process's resident set (the OS page cache holds them, shared
    /// and reclaimable). For weights that are repacked into a copy of their own, and for
    /// row lookups into a table.
    ///
    /// Errors: [`Error::Io`] when the range is not inside the tensor or the read fails (the
    /// file was truncated or the disk failed).
    ///
    /// # Panics
    /// If `info` does not come from this model's spec (as [`ModelFile::tensor_bytes`]).
    pub fn read_tensor_range(&self, info: &TensorInfo, start: usize, out: &mut [u8]) -> Result<()> {
        let Shard { path, file, map } = &self.shards[info.shard];
        let inside = start
            .checked_add(out.len())
            .is_some_and(|end| end as u64 <= info.n_bytes);
        if !inside {
            let why = format!(
                "bytes {start}..{} of tensor {} ({} bytes) are out of range",
                start.saturating_add(out.len()),
                info.name,
                info.n_bytes
            );
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
            ));
        }
        read_at(file, map, info.offset + start as u64, out).map_err(|e| Error::io(path, e))
    }

    /// The info and bytes of the tensor called `name`; [`Error::MissingTensor`] if absent.
    pub fn tensor(&self, name: &str) -> Result<(&TensorInfo, &[u8])> {
        let info = self.spec.tensor(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
        })?;
        Ok((info, self.tensor_bytes(info)))
    }

    /// Total bytes of all the model's files.
    pub fn file_size(&self) -> u64 {
        self.shards.iter().map(|s| s.map.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model can be shared across threads (the engine and the server both hold it).
    #[test]
    fn model_file_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ModelFile>();
        assert_send_sync::<Error>();
    }
}
