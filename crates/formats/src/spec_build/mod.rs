//! Building a validated [`ModelSpec`] from GGUF-keyed metadata and a tensor table.
//!
//! GGUF files feed their metadata in directly; Hugging Face folders first synthesize the
//! same keys from `config.json` (see [`crate::hf`]), so both go through this one path.
//! Defaults follow llama.cpp and are documented on the [`HParams`] fields.

mod meta;
mod rope;
mod vocab;

use std::collections::BTreeMap;

pub(crate) use meta::Meta;
use meta::{opt_f32, opt_str, opt_usize, req_usize};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::spec::{HParams, ModelSpec, SourceFormat, TensorInfo, TokenizerSpec};

/// Architectures skiff builds specs for.
pub const SUPPORTED_ARCHS: &str = "llama, mistral, qwen2, qwen3, gemma3";
/// Most layers accepted.
pub const MAX_LAYERS: usize = 4096;
/// Largest width (`d_model`, `ffn_dim`, `head_dim`) accepted.
pub const MAX_WIDTH: usize = 1 << 20;
/// Most attention heads accepted.
pub const MAX_HEADS: usize = 1 << 14;
/// Longest training context accepted (16M positions).
pub const MAX_CONTEXT: usize = 1 << 24;
/// Longest chat template accepted (1 MiB).
pub const MAX_CHAT_TEMPLATE_LEN: usize = 1 << 20;

/// What a loader hands to [`build_spec`].
pub(crate) struct SpecSource {
    /// Metadata as GGUF keys.
    pub metadata: Meta,
    /// Tensors with GGUF names and ggml-order dims.
    pub tensors: Vec<TensorInfo>,
    /// Where it came from.
    pub source: SourceFormat,
    /// The tokenizer, when it does not come from `tokenizer.ggml.*` metadata.
    pub tokenizer: Option<TokenizerSpec>,
    /// The chat template, when it does not come from `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    /// See [`ModelSpec::norm_weight_offset`].
    pub norm_weight_offset: f32,
}

impl ModelSpec {
    /// The validated spec of a parsed GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelSpec> {
        build_spec(SpecSource {
            metadata: file.metadata.iter().cloned().collect::<BTreeMap<_, _>>(),
            tensors: file.tensors.clone(),
            source: SourceFormat::Gguf {
                version: file.version,
            },
            tokenizer: None,
            chat_template: None,
            norm_weight_offset: 0.0,
        })
    }
}

/// Validates metadata and tensors into a [`ModelSpec`].
pub(crate) fn build_spec(src: SpecSource) -> Result<ModelSpec> {
    let md = &src.metadata;
    let arch = opt_str(md, "general.architecture")?
        .ok_or_else(|| Error::MissingKey {
            key: "general.architecture".into(),
        })?
        .to_string();
    let hparams = build_hparams(&arch, md, &src.tensors, &src.source)?;
    let tokenizer = match src.tokenizer {
        Some(t) => t,
        None => vocab::gguf_tokenizer(md)?,
    };
    vocab::check_vocab_fits(&tokenizer, hparams.n_vocab)?;
    let chat_template = match src.chat_template {
        Some(t) => Some(t),
        None => opt_str(md, "tokenizer.chat_template")?.map(str::to_string),
    };
    if let Some(t) = &chat_template
        && t.len() > MAX_CHAT_TEMPLATE_LEN
    {
        let cap = MAX_CHAT_TEMPLATE_LEN as u64;
        return Err(Error::StringTooLong {
            what: "chat template".into(),
            len: t.len() as u64,
            cap,
        });
    }
    Ok(ModelSpec {
        name: opt_str(md, "general.name")?.map(str::to_string),
        arch,
        source: src.source,
        hparams,
        tokenizer,
        chat_template,
        tensors: src.tensors,
        metadata: src.metadata,
        norm_weight_offset: src.norm_weight_offset,
    })
}

/// Refuses a chat template over [`MAX_CHAT_TEMPLATE_LEN`] bytes.
pub(crate) fn check_chat_template(template: &str) -> Result<()> {
    if template.len() > MAX_CHAT_TEMPLATE_LEN {
        let (len, cap) = (template.len() as u64, MAX_CHAT_TEMPLATE_LEN as u64);
        return Err(Error::StringTooLong {
            what: "chat template".into(),
            len,
            cap,
        });
    }
    Ok(())
}

/// A count in `1..=max` read from `key`.
fn count_in(md: &Meta, key: &str, value: Option<usize>, max: usize) -> Result<usize> {
    let v = match value {
        Some(v) => v,
        None => req_usize(md, key)?,
    };
    if v == 0 || v > max {
        return Err(Error::bad_hparam(key, v, format!("must be in 1..={max}")));
    }
    Ok(v)
}

fn build_hparams(
    arch: &str,
    md: &Meta,
    tensors: &[TensorInfo],
    source: &SourceFormat,
) -> Result<HParams> {
    let pairing = rope::pairing(arch, source)?;
    let k = |s: &str| format!("{arch}.{s}");
    let n_layers = count_in(md, &k("block_count"), None, MAX_LAYERS)?;
    let d_model = count_in(md, &k("embedding_length"), None, MAX_WIDTH)?;
    let n_heads = count_in(md, &k("attention.head_count"), None, MAX_HEADS)?;
    let kv_key = k("attention.head_count_kv");
    let n_kv_heads = count_in(
        md,
        &kv_key,
        Some(opt_usize(md, &kv_key)?.unwrap_or(n_heads)),
        MAX_HEADS,
    )?;
    if !n_heads.is_multiple_of(n_kv_heads) {
        return Err(Error::bad_hparam(
            &kv_key,
            n_kv_heads,
            format!("must divide head_count {n_heads}"),
        ));
    }
    let head_dim = head_dim(
        md,
        &k("attention.key_length"),
        d_model,
        n_heads,
        &k("attention.head_count"),
    )?;
    let v_key = k("attention.value_length");
    let head_dim_v = count_in(
        md,
        &v_key,
        Some(opt_usize(md, &v_key)?.unwrap_or(head_dim)),
        MAX_WIDTH,
    )?;
    let ffn_dim = count_in(md, &k("feed_forward_length"), None, MAX_WIDTH)?;
    let max_seq_len = count_in(md, &k("context_length"), None, MAX_CONTEXT)?;
    let norm_eps = norm_eps(md, &k("attention.layer_norm_rms_epsilon"))?;
    let rope = rope::rope_spec(arch, md, head_dim, pairing)?;
    let sw_key = k("attention.sliding_window");
    let sliding_window = opt_usize(md, &sw_key)?;
    if sliding_window == Some(0) {
        return Err(Error::bad_hparam(&sw_key, 0, "must be at least 1"));
    }
    let attn_logit_softcap = softcap(md, &k("attn_logit_softcapping"))?;
    let final_logit_softcap = softcap(md, &k("final_logit_softcapping"))?;
    check_layers(tensors, n_layers, &k("block_count"))?;
    let n_vocab = vocab_rows(tensors, d_model, &k("embedding_length"))?;
    let vocab_key = k("vocab_size");
    if let Some(declared) = opt_usize(md, &vocab_key)?
        && declared != n_vocab
    {
        let reason = format!("token_embd.weight has {n_vocab} rows");
        return Err(Error::bad_hparam(&vocab_key, declared, reason));
    }
    let tie_embeddings = !tensors.iter().any(|t| t.name == "output.weight");
    Ok(HParams {
        n_layers,
        d_model,
        n_heads,
        n_kv_heads,
        head_dim,
        head_dim_v,
        ffn_dim,
        n_vocab,
        max_seq_len,
        norm_eps,
        rope,
        sliding_window,
        attn_logit_softcap,
        final_logit_softcap,
        tie_embeddings,
    })
}

fn head_dim(
    md: &Meta,
    key: &str,
    d_model: usize,
    n_heads: usize,
    heads_key: &str,
) -> Result<usize> {
    if let Some(v) = opt_usize(md, key)? {
        return count_in(md, key, Some(v), MAX_WIDTH);
    }
    if !d_model.is_multiple_of(n_heads) {
        let reason = format!("does not divide embedding_length {d_model} and {key} is not given");
        return Err(Error::bad_hparam(heads_key, n_heads, reason));
    }
    Ok(d_model / n_heads)
}

fn norm_eps(md: &Meta, key: &str) -> Result<f32> {
    let eps = opt_f32(md, key)?.unwrap_or(1e-5);
    if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
        return Err(Error::bad_hparam(key, eps, "must be in (0, 1)"));
    }
    Ok(eps)
}

fn softcap(md: &Meta, key: &str) -> Result<Option<f32>> {
    let cap = opt_f32(md, key)?;
    if let Some(c) = cap
        && !(c.is_finite() && c > 0.0)
    {
        return Err(Error::bad_hparam(key, c, "must be positive and finite"));
    }
    Ok(cap)
}

/// Every `blk.N.*` tensor has `N < n_layers`, and every layer has at least one tensor.
fn check_layers(tensors: &[TensorInfo], n_layers: usize, key: &str) -> Result<()> {
    let mut present = vec![false; n_layers];
    for t in tensors {
        let Some(rest) = t.name.strip_prefix("blk.") else {
            continue;
        };
        let idx = rest.split('.').next().and_then(|n| n.parse::<usize>().ok());
        match idx {
            Some(i) if i < n_layers => present[i] = true,
            _ => {
                let reason = format!("tensor {} lies outside the declared layers", t.name);
                return Err(Error::bad_hparam(key, n_layers, reason));
            }
        }
    }
    if let Some(missing) = present.iter().position(|p| !p) {
        return Err(Error::bad_hparam(
            key,
            n_layers,
            format!("no tensors for layer {missing}"),
        ));
    }
    Ok(())
}

/// `n_vocab` from `token_embd.weight`, which must be `[d_model, n_vocab]`.
fn vocab_rows(tensors: &[TensorInfo], d_model: usize, key: &str) -> Result<usize> {
    let name = "token_embd.weight";
    let embd = tensors
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| Error::MissingTensor { name: name.into() })?;
    if embd.dims.len() != 2 || embd.dims[0] != d_model as u64 {
        let reason = format!("expected [{key} = {d_model}, n_vocab]");
        return Err(Error::BadDims {
            name: name.into(),
            dims: embd.dims.clone(),
            reason,
        });
    }
    usize::try_from(embd.dims[1]).map_err(|_| Error::SizeOverflow { name: name.into() })
}

/// Convenience for tests and tools: a metadata map from key/value pairs.
#[cfg(test)]
pub(crate) fn meta_of(pairs: &[(&str, crate::gguf::MetaValue)]) -> Meta {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
