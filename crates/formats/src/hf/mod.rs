//! Hugging Face model folders: `config.json`, `tokenizer.json` (+ `tokenizer_config.json`,
//! `generation_config.json`, `chat_template.jinja`) and the weights in `model.safetensors`
//! or in the shards listed by `model.safetensors.index.json`.
//!
//! `config.json` becomes GGUF metadata keys ([`config`]), tensor names become GGUF names
//! ([`names`]), shapes are reversed into ggml order, and the spec is built by the same code
//! as for GGUF files. Only F32, F16 and BF16 tensors are loaded. Pickle weights (`.bin`,
//! `.pt`, `.pth`) are never loaded. Shard names must stay inside the folder (no `..`, no
//! absolute paths, no symlinks leading out).

pub mod config;
pub mod names;
pub mod tokenizer;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use skiff_tensor::DType;

use crate::error::{Error, Result};
use crate::gguf::reader::tensor_bytes;
use crate::model_file::{ModelFile, Shard};
use crate::safetensors::{SafetensorsHeader, parse_safetensors};
use crate::spec::{SourceFormat, TensorInfo, TokenizerSpec};
use crate::spec_build::{SpecSource, build_spec, check_chat_template};
use names::{Mapped, gguf_name};

mod index;

/// Largest `config.json` read.
pub const MAX_CONFIG_LEN: u64 = 16 << 20;
/// File extensions of pickle checkpoints, which are refused.
const PICKLE_EXTENSIONS: &[&str] = &["bin", "pt", "pth", "ckpt"];
const PICKLE_REFUSAL: &str = "pickle weights are not loaded; convert to safetensors";

/// Reads all of `path` if it is at most `cap` bytes long.
pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > cap {
        return Err(Error::FileTooLarge {
            path: path.to_path_buf(),
            len,
            cap,
        });
    }
    let mut out = Vec::with_capacity(len as usize);
    file.take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(path, e))?;
    if out.len() as u64 > cap {
        return Err(Error::FileTooLarge {
            path: path.to_path_buf(),
            len: out.len() as u64,
            cap,
        });
    }
    Ok(out)
}

fn is_pickle(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    ext.is_some_and(|e| PICKLE_EXTENSIONS.contains(&e.as_str()))
}

fn pickle_refusal() -> Error {
    Error::UnsupportedFormat {
        reason: PICKLE_REFUSAL.into(),
    }
}

/// Opens a Hugging Face folder.
pub(crate) fn open_dir(dir: &Path) -> Result<ModelFile> {
    let index_path = dir.join("model.safetensors.index.json");
    let single = dir.join("model.safetensors");
    let (shards, weight_map) = if index_path.is_file() {
        let (shards, map) = index::read_index(dir, &index_path)?;
        (shards, Some(map))
    } else if single.is_file() {
        (vec![single], None)
    } else {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        if entries.filter_map(|e| e.ok()).any(|e| is_pickle(&e.path())) {
            return Err(pickle_refusal());
        }
        let reason = format!(
            "{}: no model.safetensors or model.safetensors.index.json",
            dir.display()
        );
        return Err(Error::UnsupportedFormat { reason });
    };
    load(dir, &shards, weight_map.as_deref())
}

/// Opens a single non-GGUF file: a `.safetensors` file with `config.json` beside it.
pub(crate) fn open_file(path: &Path) -> Result<ModelFile> {
    if is_pickle(path) {
        return Err(pickle_refusal());
    }
    let head = read_head(path)?;
    let looks_safetensors = head.len() >= 9 && head[8] == b'{';
    if !looks_safetensors {
        let found = head
            .get(..4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        return Err(Error::BadMagic { found });
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    load(dir, &[path.to_path_buf()], None)
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(9);
    file.take(9)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    Ok(head)
}

/// Maps the shards, builds the tensor table and the spec.
fn load(
    dir: &Path,
    shards: &[PathBuf],
    weight_map: Option<&[(String, String)]>,
) -> Result<ModelFile> {
    let config_path = dir.join("config.json");
    let config = tokenizer::read_json(&config_path, MAX_CONFIG_LEN)?.ok_or_else(|| {
        Error::UnsupportedFormat {
            reason: format!("{}: no config.json beside the weights", dir.display()),
        }
    })?;
    let (arch, metadata) = config::synth_metadata(&config)?;
    let mut opened = Vec::with_capacity(shards.len());
    let mut headers = Vec::with_capacity(shards.len());
    for path in shards {
        let shard = Shard::open(path)?;
        headers.push(parse_safetensors(&shard.map)?);
        opened.push(shard);
    }
    if let Some(weight_map) = weight_map {
        index::check_weight_map(weight_map, shards, &headers)?;
    }
    let tensors = tensor_table(&headers, &arch)?;
    check_lm_head(&config, &tensors)?;
    let mut spec = build_spec(SpecSource {
        metadata,
        tensors,
        source: SourceFormat::Safetensors,
        tokenizer: Some(TokenizerSpec::Missing),
        chat_template: None,
        norm_weight_offset: if arch == "gemma3" { 1.0 } else { 0.0 },
    })?;
    let (tokenizer, template) = tokenizer::hf_tokenizer(dir, &config, spec.hparams.n_vocab)?;
    if let Some(t) = &template {
        check_chat_template(t)?;
    }
    spec.tokenizer = tokenizer;
    spec.chat_template = template;
    Ok(ModelFile::from_parts(spec, opened))
}

/// GGUF-named, ggml-ordered tensor infos of all shards.
fn tensor_table(headers: &[SafetensorsHeader], arch: &str) -> Result<Vec<TensorInfo>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (shard, header) in headers.iter().enumerate() {
        for t in &header.tensors {
            let name = match gguf_name(&t.name, arch) {
                Some(Mapped::Name(n)) => n,
                Some(Mapped::Skip) => continue,
                None => {
                    return Err(Error::UnknownTensorName {
                        name: t.name.clone(),
                    });
                }
            };
            let dtype = match t.dtype.as_str() {
                "F32" => DType::F32,
                "F16" => DType::F16,
                "BF16" => DType::BF16,
                other => {
                    let (name, dtype) = (t.name.clone(), other.to_string());
                    return Err(Error::UnsupportedDType {
                        name,
                        dtype,
                        supported: "F32, F16, BF16",
                    });
                }
            };
            let dims: Vec<u64> = t.shape.iter().rev().copied().collect();
            let n_bytes = tensor_bytes(&t.name, &dims, dtype)?;
            debug_assert_eq!(
                n_bytes, t.n_bytes,
                "the header parser checked shape × dtype = span"
            );
            if !seen.insert(name.clone()) {
                return Err(Error::DuplicateTensor { name });
            }
            out.push(TensorInfo {
                name,
                dims,
                dtype,
                shard,
                offset: t.offset,
                n_bytes,
            });
        }
    }
    Ok(out)
}

/// An untied model must ship `lm_head.weight`.
fn check_lm_head(config: &Value, tensors: &[TensorInfo]) -> Result<()> {
    let cfg = config.get("text_config").unwrap_or(config);
    let tied = cfg
        .get("tie_word_embeddings")
        .or_else(|| config.get("tie_word_embeddings"))
        .and_then(Value::as_bool);
    if tied == Some(false) && !tensors.iter().any(|t| t.name == "output.weight") {
        return Err(Error::MissingTensor {
            name: "output.weight (lm_head.weight)".into(),
        });
    }
    Ok(())
}

/// True when `name` is a plain relative path (no `..`, no root, no prefix).
fn is_plain_relative(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests;
