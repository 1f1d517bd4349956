//! Atomic placement of blobs.
//!
//! Bytes go to `tmp/<pid>-<random>.partial` and are hashed as they are written. When the
//! source is done, [`BlobWriter::finish`] fsyncs the file, checks the digest the source
//! declared (if any) and renames the file to `blobs/sha256-<hex>`. A pull killed half-way
//! leaves only the `.partial`, which no listing ever shows and [`clean_stale`] removes on the
//! next pull. A `.partial` whose owning process is still alive is left alone, so two pulls
//! can run at once.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::error::{Error, Result};
use crate::manifest::sync_dir;
use crate::progress::Progress;

/// Suffix of in-progress downloads.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Where there is no `/proc` to ask whether a pid is alive, temporary entries older than this
/// are taken to be abandoned.
const STALE_AGE: Duration = Duration::from_secs(3600);

/// A stored blob: its digest and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    /// Lowercase hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The blob file name for a digest: `sha256-<hex>`.
pub fn blob_file_name(sha256: &str) -> String {
    format!("sha256-{sha256}")
}

/// A blob being written: a `.partial` file in `tmp/` plus a running sha256.
pub struct BlobWriter {
    file: NamedTempFile,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl BlobWriter {
    /// Starts a new `.partial` file in `tmp_dir`, named after this process's pid.
    pub fn create(tmp_dir: &Path) -> Result<BlobWriter> {
        let file = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .suffix(PARTIAL_SUFFIX)
            .tempfile_in(tmp_dir)
            .map_err(|e| Error::io("create a partial file in", tmp_dir, e))?;
        Ok(BlobWriter {
            file,
            hasher: Sha256::new(),
            size: 0,
            head: Vec::with_capacity(4),
        })
    }

    /// The `.partial` file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first (up to 4) bytes written: enough to check a file's magic.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Copies all of `reader` into the blob, reporting each chunk to `progress`. `what`
    /// names the source in the error if reading fails.
    pub fn copy_from(
        &mut self,
        reader: &mut dyn Read,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut copied = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(copied),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", what, e)),
            };
            self.write_all(&buf[..n])
                .map_err(|e| Error::io("write", self.file.path().to_path_buf(), e))?;
            copied += n as u64;
            progress.advance(n as u64);
        }
    }

    /// Fsyncs the bytes, checks them against `expected_sha256` when the source declared one,
    /// and renames the file to `blobs_dir/sha256-<hex>` (replacing any file of that name).
    pub fn finish(
        mut self,
        blobs_dir: &Path,
        expected_sha256: Option<&str>,
        what: &str,
    ) -> Result<BlobRef> {
        let path = self.file.path().to_path_buf();
        self.file
            .flush()
            .and_then(|()| self.file.as_file().sync_all())
            .map_err(|e| Error::io("sync", &path, e))?;
        let sha256 = hex::encode(self.hasher.finalize());
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(Error::ShaMismatch {
                what: what.to_string(),
                expected: expected.to_ascii_lowercase(),
                actual: sha256,
            });
        }
        // Renaming over an existing blob of the same digest is harmless (same bytes, and
        // readers that mapped the old file keep its inode) and repairs a blob that was
        // damaged in place.
        let target = blobs_dir.join(blob_file_name(&sha256));
        self.file
            .persist(&target)
            .map_err(|e| Error::io("rename a blob into", &target, e.error))?;
        sync_dir(blobs_dir)?;
        Ok(BlobRef {
            sha256,
            size: self.size,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        if self.head.len() < 4 {
            let take = (4 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Hashes a whole file: `(sha256 hex, size)`.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Removes temporary entries (`.partial` files, pip download folders, manifest temporaries)
/// in `tmp_dir` left by processes that are gone. Returns the paths removed.
pub fn clean_stale(tmp_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(tmp_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", tmp_dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !is_abandoned(name, &path) {
            continue;
        }
        let result = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        result.map_err(|e| Error::io("remove", &path, e))?;
        removed.push(path);
    }
    Ok(removed)
}

/// True for a temporary entry (`<pid>-….partial`, `<pid>-pip-…`, `.<pid>-….tmp`) whose
/// owner is not running. Entries of this process, and anything else (manifests included),
/// are never abandoned.
fn is_abandoned(name: &str, path: &Path) -> bool {
    let temporary =
        name.ends_with(PARTIAL_SUFFIX) || name.contains("-pip-") || name.ends_with(".tmp");
    if !temporary {
        return false;
    }
    let owner = name.trim_start_matches('.').split('-').next();
    let Some(pid) = owner.and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let proc_root = Path::new("/proc/self");
    if proc_root.exists() {
        return !Path::new("/proc").join(pid.to_string()).exists();
    }
    let age = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    age.is_some_and(|age| age > STALE_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().expect("tempdir");
        let tmp = root.path().join("tmp");
        let blobs = root.path().join("blobs");
        fs::create_dir_all(&tmp).expect("tmp");
        fs::create_dir_all(&blobs).expect("blobs");
        (root, tmp, blobs)
    }

    #[test]
    fn finish_hashes_and_renames_into_blobs() {
        let (_root, tmp, blobs) = dirs();
        let mut w = BlobWriter::create(&tmp).expect("create");
        let partial = w.path().to_path_buf();
        assert!(partial.to_string_lossy().ends_with(PARTIAL_SUFFIX));
        w.copy_from(&mut &b"GGUFhello"[..], "mem", &Silent)
            .expect("copy");
        assert_eq!(w.head(), b"GGUF");
        let blob = w.finish(&blobs, None, "mem").expect("finish");
        // sha256("GGUFhello"), from `printf GGUFhello | sha256sum`.
        assert_eq!(blob.sha256, hex::encode(Sha256::digest(b"GGUFhello")));
        assert_eq!(blob.size, 9);
        assert!(!partial.exists());
        let stored = fs::read(blobs.join(blob_file_name(&blob.sha256))).expect("blob");
        assert_eq!(stored, b"GGUFhello");
        assert_eq!(fs::read_dir(&tmp).expect("ls").count(), 0);
    }

    #[test]
    fn a_damaged_blob_of_the_same_digest_is_replaced() {
        let (_root, tmp, blobs) = dirs();
        let sha = hex::encode(Sha256::digest(b"GGUFgood"));
        fs::write(blobs.join(blob_file_name(&sha)), b"GGUFbad!").expect("damaged");
        let mut w = BlobWriter::create(&tmp).expect("create");
        w.write_all(b"GGUFgood").expect("write");
        w.finish(&blobs, Some(&sha), "mem").expect("finish");
        assert_eq!(
            fs::read(blobs.join(blob_file_name(&sha))).expect("blob"),
            b"GGUFgood"
        );
        assert_eq!(fs::read_dir(&tmp).expect("ls").count(), 0);
    }

    #[test]
    fn a_digest_mismatch_keeps_nothing() {
        let (_root, tmp, blobs) = dirs();
        let mut w = BlobWriter::create(&tmp).expect("create");
        w.write_all(b"abc").expect("write");
        let err = w
            .finish(&blobs, Some(&"0".repeat(64)), "pkg")
            .expect_err("mismatch");
        assert!(matches!(err, Error::ShaMismatch { .. }), "{err}");
        assert_eq!(fs::read_dir(&tmp).expect("ls").count(), 0);
        assert_eq!(fs::read_dir(&blobs).expect("ls").count(), 0);
    }

    #[test]
    fn stale_partials_of_dead_processes_are_removed_live_ones_kept() {
        let (_root, tmp, _blobs) = dirs();
        // pid 0 is never a user process, so /proc/0 does not exist: abandoned.
        let dead = tmp.join("0-abc.partial");
        fs::write(&dead, b"x").expect("write");
        let dead_dir = tmp.join("0-pip-xyz");
        fs::create_dir_all(&dead_dir).expect("mkdir");
        let mine = BlobWriter::create(&tmp).expect("create");
        let foreign = tmp.join("notes.txt");
        fs::write(&foreign, b"x").expect("write");
        let manifest_like = tmp.join("0-model.json");
        fs::write(&manifest_like, b"{}").expect("write");
        let dead_manifest_tmp = tmp.join(".0-manifest-abc.tmp");
        fs::write(&dead_manifest_tmp, b"{").expect("write");
        let removed = clean_stale(&tmp).expect("clean");
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(!dead_manifest_tmp.exists());
        assert!(manifest_like.exists(), "a manifest is never a temporary");
        assert!(!dead.exists() && !dead_dir.exists());
        assert!(mine.path().exists());
        assert!(foreign.exists());
    }
}
