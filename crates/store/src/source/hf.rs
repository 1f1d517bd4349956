//! Hugging Face: the local hub cache first ([`HfCache`]), then HTTP ([`HfHub`]).
//!
//! Cache layout (huggingface_hub's, read through `hf-hub`'s path logic):
//! `<cache>/models--ORG--REPO/refs/<rev>` holds a commit hash, and
//! `snapshots/<commit>/<file>` is (a symlink to) the file. The cache folder is
//! `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `HF_HOME/hub`, else
//! `~/.cache/huggingface/hub`. `HF_HUB_OFFLINE=1` forbids the network.
//!
//! Over HTTP the file comes from `{HF_ENDPOINT}/{repo}/resolve/{rev}/{file}`
//! (`HF_ENDPOINT` defaults to `https://huggingface.co`), with `HF_TOKEN` as a bearer token
//! when set. Connection attempts time out after [`CONNECT_TIMEOUT`] so an unreachable hub
//! fails quickly with a message saying how to work offline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hf_hub::{Repo, RepoType};

use super::{FetchContext, Fetched, HfRef, ModelRef, Source};
use crate::error::{Error, Result};

/// How long to wait for a TCP/TLS connection to the hub.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for response headers once connected.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Deepest folder level searched for `.gguf` files in a snapshot.
const MAX_SNAPSHOT_DEPTH: usize = 4;

/// Where the Hugging Face cache is and whether the network may be used.
#[derive(Clone, Debug)]
pub struct HfConfig {
    /// The hub cache folder (the one holding `models--ORG--REPO`).
    pub cache_dir: PathBuf,
    /// The hub's base URL, without a trailing `/`.
    pub endpoint: String,
    /// `HF_HUB_OFFLINE`: never touch the network.
    pub offline: bool,
    /// `HF_TOKEN` (or the token file in `HF_HOME`), for gated repositories.
    pub token: Option<String>,
}

impl HfConfig {
    /// Reads `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME`, `HF_ENDPOINT`,
    /// `HF_HUB_OFFLINE` and `HF_TOKEN`.
    pub fn from_env() -> HfConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let hf_cache = hf_hub::Cache::from_env();
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map_or_else(|| hf_cache.path().clone(), PathBuf::from);
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".to_string());
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
        HfConfig {
            cache_dir,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            offline,
            token: var("HF_TOKEN").or_else(|| hf_cache.token()),
        }
    }

    /// The cache folder of one repository (`<cache>/models--ORG--REPO`).
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        let folder = Repo::new(repo.to_string(), RepoType::Model).folder_name();
        self.cache_dir.join(folder)
    }
}

/// Finds Hugging Face files in the local cache; declines when they are not there.
pub struct HfCache {
    config: HfConfig,
}

impl HfCache {
    /// A cache source over `config.cache_dir`.
    pub fn new(config: HfConfig) -> HfCache {
        HfCache { config }
    }

    /// The cached path of the reference's file, or `None` when it is not cached. Without a
    /// file name, the snapshot's single `.gguf` (several are an error listing them).
    pub fn find(&self, hf: &HfRef) -> Result<Option<PathBuf>> {
        let cache = hf_hub::Cache::new(self.config.cache_dir.clone());
        let repo = cache.repo(Repo::with_revision(
            hf.repo.clone(),
            RepoType::Model,
            hf.revision.clone(),
        ));
        let refs = self
            .config
            .repo_dir(&hf.repo)
            .join("refs")
            .join(&hf.revision);
        let commit = match std::fs::read_to_string(&refs) {
            Ok(text) => text.trim().to_string(),
            Err(_) if is_commit_hash(&hf.revision) => hf.revision.clone(),
            Err(_) => return Ok(None),
        };
        if !is_commit_hash(&commit) {
            return Ok(None);
        }
        let snapshot = repo.pointer_path(&commit);
        if let Some(file) = &hf.file {
            let path = snapshot.join(file);
            return Ok(path.is_file().then_some(path));
        }
        let mut found = Vec::new();
        collect_ggufs(&snapshot, &snapshot, 0, &mut found);
        found.sort();
        match found.len() {
            0 => Ok(None),
            1 => Ok(Some(snapshot.join(&found[0]))),
            _ => Err(several_ggufs(&hf.repo, &found)),
        }
    }
}

impl Source for HfCache {
    fn name(&self) -> &'static str {
        "hf-cache"
    }

    fn fetch(&self, model: &ModelRef, ctx: &FetchContext<'_>) -> Result<Option<Fetched>> {
        let ModelRef::Hf(hf) = model else {
            return Ok(None);
        };
        match self.find(hf)? {
            Some(path) => ctx.ingest_file(&path).map(Some),
            None => Ok(None),
        }
    }
}

/// Downloads Hugging Face files over HTTP (refusing when offline).
pub struct HfHub {
    config: HfConfig,
}

impl HfHub {
    /// A hub source for `config.endpoint`.
    pub fn new(config: HfConfig) -> HfHub {
        HfHub { config }
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into()
    }

    /// GETs `url`; transport failures become [`Error::HfUnreachable`], error statuses
    /// [`Error::HfStatus`].
    fn get(&self, agent: &ureq::Agent, url: &str) -> Result<ureq::http::Response<ureq::Body>> {
        let mut request = agent.get(url);
        if let Some(token) = &self.config.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.call().map_err(|e| Error::HfUnreachable {
            endpoint: self.config.endpoint.clone(),
            url: url.to_string(),
            reason: e.to_string(),
            cache: self.config.cache_dir.clone(),
        })?;
        let status = response.status().as_u16();
        if status != 200 {
            let hint = match status {
                401 | 403 => " (gated or private repository: accept its terms and set HF_TOKEN)",
                404 => " (no such repository, revision or file)",
                _ => "",
            };
            return Err(Error::HfStatus {
                url: url.to_string(),
                status,
                hint,
            });
        }
        Ok(response)
    }

    /// The repository's single `.gguf`, from the hub's file listing.
    fn pick_remote_gguf(&self, agent: &ureq::Agent, hf: &HfRef) -> Result<String> {
        let url = format!(
            "{}/api/models/{}/revision/{}",
            self.config.endpoint,
            hf.repo,
            encode_path(&hf.revision)
        );
        let mut response = self.get(agent, &url)?;
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| Error::Download {
                url: url.clone(),
                received: 0,
                reason: e.to_string(),
            })?;
        let listing: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Download {
                url: url.clone(),
                received: text.len() as u64,
                reason: format!("the file listing is not JSON: {e}"),
            })?;
        let mut found: Vec<String> = listing["siblings"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|f| f["rfilename"].as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        found.retain(|f| f.ends_with(".gguf"));
        found.sort();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(Error::NoModelFile {
                what: format!("hf:{}@{}", hf.repo, hf.revision),
                reason: "holds no .gguf file".to_string(),
            }),
            _ => Err(several_ggufs(&hf.repo, &found)),
        }
    }
}

impl Source for HfHub {
    fn name(&self) -> &'static str {
        "hf"
    }

    fn fetch(&self, model: &ModelRef, ctx: &FetchContext<'_>) -> Result<Option<Fetched>> {
        let ModelRef::Hf(hf) = model else {
            return Ok(None);
        };
        if self.config.offline {
            return Err(Error::HfNotCached {
                repo: hf.repo.clone(),
                file: hf
                    .file
                    .clone()
                    .unwrap_or_else(|| "no file named".to_string()),
                searched: self.config.repo_dir(&hf.repo),
            });
        }
        let agent = self.agent();
        let file = match &hf.file {
            Some(f) => f.clone(),
            None => self.pick_remote_gguf(&agent, hf)?,
        };
        let url = format!(
            "{}/{}/resolve/{}/{}",
            self.config.endpoint,
            hf.repo,
            encode_path(&hf.revision),
            encode_path(&file)
        );
        let mut response = self.get(&agent, &url)?;
        let total = response.body().content_length();
        let mut blob = ctx.new_blob()?;
        let label = file.rsplit('/').next().unwrap_or(&file).to_string();
        ctx.progress.begin(&label, total);
        let copied = {
            let mut reader = response.body_mut().as_reader();
            copy_download(&mut reader, &mut blob, &url, ctx)
        };
        ctx.progress.end();
        copied?;
        ctx.finish_gguf(blob, &format!("hf:{}:{file}", hf.repo), None, label)
            .map(Some)
    }
}

/// Streams a response body into a blob; a broken connection names the bytes received.
fn copy_download(
    reader: &mut dyn Read,
    blob: &mut crate::blob::BlobWriter,
    url: &str,
    ctx: &FetchContext<'_>,
) -> Result<()> {
    blob.copy_from(reader, url, ctx.progress)
        .map(|_| ())
        .map_err(|e| match e {
            // Read failures are the connection's; write failures stay disk errors.
            Error::Io {
                action: "read",
                source,
                ..
            } => Error::Download {
                url: url.to_string(),
                received: blob.size(),
                reason: source.to_string(),
            },
            other => other,
        })
}

/// Relative paths of `.gguf` files under `dir` (following the cache's symlinks).
fn collect_ggufs(root: &Path, dir: &Path, depth: usize, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth < MAX_SNAPSHOT_DEPTH {
            collect_ggufs(root, &path, depth + 1, found);
        } else if path.is_file()
            && path.extension().is_some_and(|e| e == "gguf")
            && let Ok(rel) = path.strip_prefix(root)
        {
            found.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn several_ggufs(repo: &str, found: &[String]) -> Error {
    Error::NoModelFile {
        what: format!("hf:{repo}"),
        reason: format!(
            "holds several .gguf files; name one as hf:{repo}:FILE — {}",
            found.join(", ")
        ),
    }
}

/// 40 lowercase hex digits.
fn is_commit_hash(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Percent-encodes a path for a URL, keeping `/` and RFC 3986 unreserved characters.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "hf_tests.rs"]
mod tests;
