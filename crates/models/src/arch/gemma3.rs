//! The Gemma 3 family (text): Gemma 3 270M, 1B, 4B, 12B, 27B (Gemma Team 2025,
//! <https://arxiv.org/abs/2503.19786>).
//!
//! A pre- and post-norm decoder: `x += post_attn_norm(o(attn(...)))` over `attn_norm(x)`,
//! then `x += post_ffn_norm(down(gelu_tanh(gate) * up))` over `ffn_norm(x)`, with QK-norm
//! on every head before RoPE, embeddings scaled by `sqrt(d_model)`, and a tied LM head with
//! an optional final soft cap.
//!
//! Local and global layers (llama.cpp `src/models/gemma3.cpp`, `llama-model.cpp`):
//! - Layers are local (sliding window `hparams.sliding_window`) except every 6th, which is
//!   global: layer `i` is global when `(i + 1) % 6 == 0`. A per-layer
//!   `gemma3.attention.sliding_window_pattern` bool array (or a period) overrides this.
//! - Local layers use RoPE base `gemma3.rope.freq_base_swa` (default 10000) with no
//!   scaling; global layers use `rope.freq_base` (1e6) and the model's scaling (linear x8
//!   on the 4B and larger).
//!
//! Traps:
//! - Norm weights: transformers computes `x * (1 + w)`; llama.cpp's converter stores
//!   `1 + w`. The spec's `norm_weight_offset` (1 for safetensors) is folded in at load.
//! - Scale: `1/sqrt(query_pre_attn_scalar)`, which equals `1/sqrt(head_dim)` except on the
//!   27B (`d_model / n_heads`); GGUF does not store it, so llama.cpp decides by layer count.

use skiff_formats::gguf::MetaValue;
use skiff_formats::{HParams, ModelSpec, RopeScaling, RopeSpec};

use crate::arch::{Architecture, attn_params, meta_number};
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::kv::KvCache;
use crate::layers::attention::{AttnParams, Qkv, attention};
use crate::layers::embedding::Embedding;
use crate::layers::linear::Linear;
use crate::layers::lm_head::LmHead;
use crate::layers::mlp::{Activation, GatedMlp};
use crate::layers::norm::RmsNorm;
use crate::layers::rope::Rope;
use crate::layers::{Ctx, Scratch, sized};
use crate::tap::tap;
use crate::weights::{Loader, Role, TensorTable};

/// GGUF names of the Gemma 3 family's tensors.
pub const TENSORS: TensorTable = &[
    (Role::TokenEmbd, "token_embd.weight"),
    (Role::Output, "output.weight"),
    (Role::OutputNorm, "output_norm.weight"),
    (Role::AttnNorm, "blk.{i}.attn_norm.weight"),
    (Role::AttnQ, "blk.{i}.attn_q.weight"),
    (Role::AttnK, "blk.{i}.attn_k.weight"),
    (Role::AttnV, "blk.{i}.attn_v.weight"),
    (Role::AttnQNorm, "blk.{i}.attn_q_norm.weight"),
    (Role::AttnKNorm, "blk.{i}.attn_k_norm.weight"),
    (Role::AttnOut, "blk.{i}.attn_output.weight"),
    (Role::AttnPostNorm, "blk.{i}.post_attention_norm.weight"),
    (Role::FfnNorm, "blk.{i}.ffn_norm.weight"),
    (Role::FfnGate, "blk.{i}.ffn_gate.weight"),
    (Role::FfnUp, "blk.{i}.ffn_up.weight"),
    (Role::FfnDown, "blk.{i}.ffn_down.weight"),
    (Role::FfnPostNorm, "blk.{i}.post_ffw_norm.weight"),
];

/// Global-attention period of llama.cpp's `set_swa_pattern(6)`.
const DEFAULT_SWA_PERIOD: usize = 6;
/// RoPE base of local layers when the file does not say (`rope_local_base_freq`).
const DEFAULT_LOCAL_THETA: f32 = 10_000.0;

struct Layer {
    attn_norm: RmsNorm,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    wo: Linear,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    mlp: GatedMlp,
    post_ffn_norm: RmsNorm,
    /// Sliding-window (local) layer rather than global.
    local: bool,
}

/// A loaded Gemma 3 model.
pub(crate) struct Gemma3 {
    embd: Embedding,
    layers: Vec<Layer>,
    rope_local: Rope,
    rope_global: Rope,
    attn_local: AttnParams,
    attn_global: AttnParams,
    head: LmHead,
}

/// Builds the model from `loader`'s file, checking every tensor's shape and dtype.
pub(crate) fn build(loader: &Loader<'_>) -> Result<Box<dyn Architecture>> {
    let spec = loader.spec();
    let hp = loader.hparams();
    let local = local_layers(spec)?;
    let norm = |role, i| loader.norm(role, Some(i));
    let layers = (0..hp.n_layers)
        .map(|i| {
            Ok(Layer {
                attn_norm: norm(Role::AttnNorm, i)?,
                wq: loader.linear(Role::AttnQ, Some(i), None)?,
                wk: loader.linear(Role::AttnK, Some(i), None)?,
                wv: loader.linear(Role::AttnV, Some(i), None)?,
                q_norm: norm(Role::AttnQNorm, i)?,
                k_norm: norm(Role::AttnKNorm, i)?,
                wo: loader.linear(Role::AttnOut, Some(i), None)?,
                post_attn_norm: norm(Role::AttnPostNorm, i)?,
                ffn_norm: norm(Role::FfnNorm, i)?,
                mlp: GatedMlp {
                    gate: loader.linear(Role::FfnGate, Some(i), None)?,
                    up: loader.linear(Role::FfnUp, Some(i), None)?,
                    down: loader.linear(Role::FfnDown, Some(i), None)?,
                    act: Activation::GeluTanh,
                },
                post_ffn_norm: norm(Role::FfnPostNorm, i)?,
                local: local[i],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let output = match loader.linear_opt(Role::Output)? {
        Some(output) => output,
        None => loader.tied_output()?,
    };
    let local_theta = meta_number(spec, &format!("{}.rope.freq_base_swa", spec.arch))
        .map_or(DEFAULT_LOCAL_THETA, |v| v as f32);
    let local_rope = RopeSpec {
        theta: local_theta,
        scaling: RopeScaling::None,
        ..hp.rope.clone()
    };
    let scale = attn_scale(spec);
    Ok(Box::new(Gemma3 {
        embd: loader.embedding((hp.d_model as f32).sqrt())?,
        layers,
        rope_local: Rope::new(&local_rope, hp.head_dim, None)?,
        rope_global: Rope::new(&hp.rope, hp.head_dim, None)?,
        attn_local: AttnParams {
            scale,
            ..attn_params(hp, Some(window(hp)?))
        },
        attn_global: AttnParams {
            scale,
            ..attn_params(hp, None)
        },
        head: LmHead {
            norm: loader.norm(Role::OutputNorm, None)?,
            output,
            softcap: hp.final_logit_softcap,
        },
    }))
}

/// Which layers are local, from `{arch}.attention.sliding_window_pattern` (a bool per
/// layer, or a period) or llama.cpp's fixed period of 6.
fn local_layers(spec: &ModelSpec) -> Result<Vec<bool>> {
    let n_layers = spec.hparams.n_layers;
    let key = format!("{}.attention.sliding_window_pattern", spec.arch);
    if let Some(MetaValue::Array(flags)) = spec.metadata.get(&key) {
        let flags: Option<Vec<bool>> = flags
            .iter()
            .map(|f| {
                if let MetaValue::Bool(b) = f {
                    Some(*b)
                } else {
                    None
                }
            })
            .collect();
        return match flags {
            Some(flags) if flags.len() == n_layers => Ok(flags),
            _ => Err(Error::BadHParam {
                field: "attention.sliding_window_pattern",
                value: format!(
                    "array of {} values",
                    spec.metadata.get(&key).map_or(0, array_len)
                ),
                reason: "must hold one bool per layer",
            }),
        };
    }
    let period = match meta_number(spec, &key) {
        Some(p) if p >= 1.0 => p as usize,
        Some(p) => {
            return Err(Error::BadHParam {
                field: "attention.sliding_window_pattern",
                value: p.to_string(),
                reason: "a period must be at least 1",
            });
        }
        None => DEFAULT_SWA_PERIOD,
    };
    Ok((0..n_layers).map(|i| (i + 1) % period != 0).collect())
}

fn array_len(v: &MetaValue) -> usize {
    if let MetaValue::Array(a) = v {
        a.len()
    } else {
        1
    }
}

/// The window of local layers, which Gemma 3 requires.
fn window(hp: &HParams) -> Result<usize> {
    match hp.sliding_window {
        Some(w) if w > 0 => Ok(w),
        other => Err(Error::BadHParam {
            field: "attention.sliding_window",
            value: format!("{other:?}"),
            reason: "gemma3 local layers need a non-zero sliding window",
        }),
    }
}

/// The score scale: `{arch}.attention.scale` when the file gives it, else
/// `query_pre_attn_scalar^-0.5` when given, else llama.cpp's rule.
fn attn_scale(spec: &ModelSpec) -> f32 {
    let hp = &spec.hparams;
    if let Some(scale) = meta_number(spec, &format!("{}.attention.scale", spec.arch)) {
        return scale as f32;
    }
    if let Some(scalar) = meta_number(
        spec,
        &format!("{}.attention.query_pre_attn_scalar", spec.arch),
    ) {
        return (1.0 / scalar.sqrt()) as f32;
    }
    let is_27b = hp.n_layers == 62;
    let scalar = if is_27b {
        hp.d_model / hp.n_heads
    } else {
        hp.head_dim
    };
    1.0 / (scalar as f32).sqrt()
}

impl Architecture for Gemma3 {
    /// Each residual add is fused with the norm that follows it (the next sub-block's input
    /// norm).
    fn forward(
        &self,
        ctx: &Ctx<'_>,
        batch: &Batch,
        kv: &mut KvCache,
        s: &mut Scratch,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let (cpu, n_tokens) = (ctx.cpu, batch.n_tokens());
        let a = &self.attn_global;
        let d_model = self.embd.d_model;
        let x = sized(&mut s.x, n_tokens * d_model); // [n_tokens, d_model]
        self.embd.forward_into(ctx, &batch.tokens, x)?; // scaled by sqrt(d_model)
        tap(x, "inp_scaled", None);
        let h = sized(&mut s.h, n_tokens * d_model);
        let o = sized(&mut s.o, n_tokens * d_model);
        let q = sized(&mut s.q, n_tokens * a.n_heads * a.head_dim);
        let k = sized(&mut s.k, n_tokens * a.n_kv_heads * a.head_dim);
        let v = sized(&mut s.v, n_tokens * a.n_kv_heads * a.head_dim_v);
        let [table_local, table_global] = &mut s.rope;
        self.rope_local.fill_table(&batch.positions, table_local);
        self.rope_global.fill_table(&batch.positions, table_global);
        if let Some(first) = self.layers.first() {
            first.attn_norm.apply_to(cpu, x, h);
        }
        for (layer_idx, l) in self.layers.iter().enumerate() {
            let (rope, table, attn) = if l.local {
                (&self.rope_local, &*table_local, &self.attn_local)
            } else {
                (&self.rope_global, &*table_global, &self.attn_global)
            };
            tap(h, "attn_norm", Some(layer_idx));
            // q: [n_tokens, n_heads * head_dim], k: [n_tokens, n_kv_heads * head_dim],
            // v: [n_tokens, n_kv_heads * head_dim_v]
            Linear::forward_many(ctx, [&l.wq, &l.wk, &l.wv], h, n_tokens, [q, k, v])?;
            l.q_norm.apply(cpu, q); // per head: rows of head_dim
            l.k_norm.apply(cpu, k);
            tap(q, "Qcur_normed", Some(layer_idx));
            rope.apply_table(cpu, q, a.n_heads, table);
            rope.apply_table(cpu, k, a.n_kv_heads, table);
            let qkv = Qkv { q, k, v };
            let att = attention(cpu, attn, qkv, kv.layer(layer_idx), batch, &mut s.attn); // [n_tokens, n_heads * head_dim_v]
            l.wo.forward_into(ctx, att, n_tokens, o)?;
            l.post_attn_norm.apply(cpu, o);
            tap(o, "attn_post_norm", Some(layer_idx));
            l.ffn_norm.add_apply(cpu, x, o, h); // x += o; h = ffn_norm(x)
            tap(h, "ffn_norm", Some(layer_idx));
            l.mlp
                .forward_into(ctx, h, n_tokens, [&mut s.gate, &mut s.up], o)?;
            l.post_ffn_norm.apply(cpu, o);
            tap(o, "ffn_post_norm", Some(layer_idx));
            match self.layers.get(layer_idx + 1) {
                Some(next) => next.attn_norm.add_apply(cpu, x, o, h), // x += f; h = attn_norm'(x)
                None => cpu.add(x, o),
            }
            tap(x, "l_out", Some(layer_idx));
        }
        self.head
            .forward(ctx, x, &batch.logit_rows, &mut s.h, logits)?;
        tap(logits, "result_output", None);
        Ok(())
    }
}
