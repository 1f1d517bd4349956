//! The crate's one `unsafe` operation: memory-mapping a model file read-only.
//!
//! A mapping is only sound while nobody truncates or rewrites the file: if the file shrinks
//! under the mapping, touching the lost pages raises SIGBUS and the process dies. Model files
//! must therefore be treated as immutable while a [`crate::ModelFile`] is open (download to a
//! temporary name and rename into place; never edit in place). `tests/truncated_while_mapped.rs`
//! pins the failure mode: a clean SIGBUS, never silently wrong weights.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// Opens `path` and maps all of it read-only, for example to [`crate::parse_gguf`] a file
/// whose architecture [`crate::ModelFile`] does not know. Empty files are refused (there is
/// nothing to map, and no model format is empty).
pub fn map_file(path: &Path) -> Result<Mmap> {
    open_mapped(path).map(|(_, map)| map)
}

/// [`map_file`], also returning the open file (for positional reads that bypass the map).
#[allow(unsafe_code)]
pub(crate) fn open_mapped(path: &Path) -> Result<(File, Mmap)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::truncated(format!("file {}", path.display()), 8, 0));
    }
    // SAFETY: the map is read-only and private to this process. Its soundness needs the file
    // to keep its length and contents while mapped; skiff never writes model files it has
    // open, and the module docs (and `ModelFile::open`) require users not to either.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok((file, map))
}

/// Reads `out.len()` bytes at `offset` of `file` into `out` without moving a file cursor and
/// without touching a mapping of it (the bytes land in `out`, not in this process's resident
/// set twice). `map` is the same file's mapping, copied from where the OS has no positional
/// read.
pub(crate) fn read_at(file: &File, map: &Mmap, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let _ = map;
        std::os::unix::fs::FileExt::read_exact_at(file, out, offset)
    }
    #[cfg(windows)]
    {
        let _ = map;
        let mut done = 0;
        while done < out.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut out[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = file;
        let start = usize::try_from(offset).map_err(|_| std::io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(out.len())
            .and_then(|end| map.get(start..end))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        out.copy_from_slice(src);
        Ok(())
    }
}
