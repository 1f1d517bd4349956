//! RoPE settings: pairing by architecture and source, `{arch}.rope.*` keys with defaults.
//!
//! Pairing trap: llama.cpp's GGUF converter permutes the Q and K rows of `llama`-family
//! models so that adjacent dimensions pair up (`LLAMA_ROPE_TYPE_NORM`), while the original
//! Hugging Face weights pair halves (`rotate_half`, NeoX style). So `llama` and `mistral`
//! are [`RopePairing::Interleaved`] in GGUF but [`RopePairing::Neox`] from safetensors;
//! `qwen2`, `qwen3` and `gemma3` are NeoX everywhere.

use super::meta::{Meta, opt_f32, opt_str, opt_usize};
use super::{MAX_CONTEXT, SUPPORTED_ARCHS};
use crate::error::{Error, Result};
use crate::spec::{RopePairing, RopeScaling, RopeSpec, SourceFormat};

/// The pairing for `arch` loaded from `source`; unknown architectures are refused.
pub(crate) fn pairing(arch: &str, source: &SourceFormat) -> Result<RopePairing> {
    let gguf = matches!(source, SourceFormat::Gguf { .. });
    match arch {
        "llama" | "mistral" if gguf => Ok(RopePairing::Interleaved),
        "llama" | "mistral" | "qwen2" | "qwen3" | "gemma3" => Ok(RopePairing::Neox),
        _ => Err(Error::UnsupportedArch {
            arch: arch.to_string(),
            supported: SUPPORTED_ARCHS,
        }),
    }
}

/// RoPE settings of `arch` from its `{arch}.rope.*` keys.
pub(crate) fn rope_spec(
    arch: &str,
    md: &Meta,
    head_dim: usize,
    pairing: RopePairing,
) -> Result<RopeSpec> {
    let base_key = format!("{arch}.rope.freq_base");
    let theta = opt_f32(md, &base_key)?.unwrap_or(10_000.0);
    if !(theta.is_finite() && theta > 0.0) {
        return Err(Error::bad_hparam(
            &base_key,
            theta,
            "must be positive and finite",
        ));
    }
    let dim_key = format!("{arch}.rope.dimension_count");
    let rot_dim = opt_usize(md, &dim_key)?.unwrap_or(head_dim);
    if rot_dim == 0 || rot_dim > head_dim || !rot_dim.is_multiple_of(2) {
        let reason = format!("must be even and in 2..={head_dim} (head_dim)");
        return Err(Error::bad_hparam(&dim_key, rot_dim, reason));
    }
    let scaling = scaling(arch, md)?;
    Ok(RopeSpec {
        theta,
        rot_dim,
        pairing,
        scaling,
    })
}

fn positive(md: &Meta, key: &str, default: Option<f32>) -> Result<f32> {
    let v = match (opt_f32(md, key)?, default) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => {
            return Err(Error::MissingKey {
                key: key.to_string(),
            });
        }
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::bad_hparam(key, v, "must be positive and finite"));
    }
    Ok(v)
}

fn original_ctx(md: &Meta, key: &str) -> Result<usize> {
    let v = opt_usize(md, key)?.ok_or_else(|| Error::MissingKey {
        key: key.to_string(),
    })?;
    if v == 0 || v > MAX_CONTEXT {
        return Err(Error::bad_hparam(
            key,
            v,
            format!("must be in 1..={MAX_CONTEXT}"),
        ));
    }
    Ok(v)
}

/// `{arch}.rope.scaling.*`, or the legacy `{arch}.rope.scale_linear`.
fn scaling(arch: &str, md: &Meta) -> Result<RopeScaling> {
    let k = |s: &str| format!("{arch}.rope.scaling.{s}");
    let Some(kind) = opt_str(md, &k("type"))? else {
        let legacy = format!("{arch}.rope.scale_linear");
        return match opt_f32(md, &legacy)? {
            Some(f) if f != 1.0 => Ok(RopeScaling::Linear {
                factor: positive(md, &legacy, None)?,
            }),
            _ => Ok(RopeScaling::None),
        };
    };
    match kind {
        "none" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear {
            factor: positive(md, &k("factor"), None)?,
        }),
        "yarn" => Ok(RopeScaling::Yarn {
            factor: positive(md, &k("factor"), None)?,
            original_max_seq_len: original_ctx(md, &k("original_context_length"))?,
            beta_fast: positive(md, &k("yarn_beta_fast"), Some(32.0))?,
            beta_slow: positive(md, &k("yarn_beta_slow"), Some(1.0))?,
        }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: positive(md, &k("factor"), None)?,
            low_freq_factor: positive(md, &k("low_freq_factor"), None)?,
            high_freq_factor: positive(md, &k("high_freq_factor"), None)?,
            original_max_seq_len: original_ctx(md, &k("original_context_length"))?,
        }),
        other => Err(Error::bad_hparam(
            &k("type"),
            other,
            "expected none, linear, yarn or llama3",
        )),
    }
}
