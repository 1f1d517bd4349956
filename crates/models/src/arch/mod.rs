//! One file per architecture family, each assembled from `layers/` with a straight-line
//! forward pass in paper order. Variants inside a family (Mistral's sliding window, tied
//! embeddings, RoPE scaling) are fields, never copied files. Families that share the plain
//! pre-norm decoder (Llama, Qwen2, Qwen3) pick its optional weights in `layers::decoder`.

pub mod gemma3;
pub mod llama;
pub mod qwen2;
pub mod qwen3;

use skiff_formats::gguf::MetaValue;
use skiff_formats::{HParams, ModelSpec};

use crate::batch::Batch;
use crate::error::Result;
use crate::kv::KvCache;
use crate::layers::attention::AttnParams;
use crate::layers::{Ctx, Scratch};

/// A loaded architecture: weights plus config, stateless with respect to sequences.
pub(crate) trait Architecture: Send + Sync {
    /// Runs `batch` (already validated against `kv`), appending its keys and values to
    /// `kv`, and writes the logits of `batch.logit_rows` into `logits`, resized to
    /// `[logit_rows.len(), n_vocab]`. The activations live in `s`.
    fn forward(
        &self,
        ctx: &Ctx<'_>,
        batch: &Batch,
        kv: &mut KvCache,
        s: &mut Scratch,
        logits: &mut Vec<f32>,
    ) -> Result<()>;
}

/// Attention parameters from the hyperparameters: the usual `1/sqrt(head_dim)` scale, the
/// model's score soft cap, and `window` for sliding-window layers.
pub(crate) fn attn_params(hp: &HParams, window: Option<usize>) -> AttnParams {
    AttnParams {
        n_heads: hp.n_heads,
        n_kv_heads: hp.n_kv_heads,
        head_dim: hp.head_dim,
        head_dim_v: hp.head_dim_v,
        scale: 1.0 / (hp.head_dim as f32).sqrt(),
        softcap: hp.attn_logit_softcap,
        window,
    }
}

/// A numeric metadata value as f64 (any integer or float type), or `None` when absent or
/// not a number.
pub(crate) fn meta_number(spec: &ModelSpec, key: &str) -> Option<f64> {
    match spec.metadata.get(key)? {
        MetaValue::U8(v) => Some(f64::from(*v)),
        MetaValue::I8(v) => Some(f64::from(*v)),
        MetaValue::U16(v) => Some(f64::from(*v)),
        MetaValue::I16(v) => Some(f64::from(*v)),
        MetaValue::U32(v) => Some(f64::from(*v)),
        MetaValue::I32(v) => Some(f64::from(*v)),
        MetaValue::U64(v) => Some(*v as f64),
        MetaValue::I64(v) => Some(*v as f64),
        MetaValue::F32(v) => Some(f64::from(*v)),
        MetaValue::F64(v) => Some(*v),
        MetaValue::Bool(_) | MetaValue::String(_) | MetaValue::Array(_) => None,
    }
}
