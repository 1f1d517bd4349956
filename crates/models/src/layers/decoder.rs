//! The pre-norm decoder shared by the Llama, Qwen2 and Qwen3 families (Touvron et al. 2023,
//! <https://arxiv.org/abs/2307.09288>): `x += o(attn(rope(q), rope(k), v))` over
//! `attn_norm(x)`, then `x += down(silu(gate) * up)` over `ffn_norm(x)`.
//!
//! The families differ only in optional weights, chosen by [`DecoderConfig`] at load:
//! Q/K/V biases (Qwen2, carried by the [`Linear`]s) and a per-head RMSNorm over Q and K
//! right after the projections, before RoPE (Qwen3). Each family's file in `arch/` keeps
//! its tensor table, its choices and its traps.

use crate::arch::{Architecture, attn_params};
use crate::batch::Batch;
use crate::error::Result;
use crate::kv::KvCache;
use crate::layers::attention::{AttnParams, Qkv, attention};
use crate::layers::embedding::Embedding;
use crate::layers::linear::Linear;
use crate::layers::lm_head::LmHead;
use crate::layers::mlp::{Activation, GatedMlp};
use crate::layers::norm::RmsNorm;
use crate::layers::rope::Rope;
use crate::layers::{Ctx, add_inplace};
use crate::tap::tap;
use crate::weights::{Loader, Role};

/// Which optional weights a family's layers carry.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DecoderConfig {
    /// Q, K and V projections have biases (`attn_{q,k,v}.bias`).
    pub qkv_bias: bool,
    /// Per-head RMSNorm over Q and K before RoPE (`attn_{q,k}_norm.weight`).
    pub qk_norm: bool,
}

/// QK-norm weights: `[head_dim]` each, shared by all heads.
struct QkNorm {
    q: RmsNorm,
    k: RmsNorm,
}

struct Layer {
    attn_norm: RmsNorm,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    qk_norm: Option<QkNorm>,
    wo: Linear,
    ffn_norm: RmsNorm,
    mlp: GatedMlp,
}

/// A loaded pre-norm decoder model.
pub(crate) struct Decoder {
    embd: Embedding,
    layers: Vec<Layer>,
    rope: Rope,
    attn: AttnParams,
    head: LmHead,
}

impl Decoder {
    /// Loads the model from `loader`'s file, checking every tensor's shape and dtype.
    /// `freq_factors` are RoPE's per-frequency divisors (Llama 3.1's `rope_freqs.weight`).
    pub(crate) fn load(
        loader: &Loader<'_>,
        config: DecoderConfig,
        freq_factors: Option<&[f32]>,
    ) -> Result<Decoder> {
        let hp = loader.hparams();
        let bias = |role| config.qkv_bias.then_some(role);
        let layers = (0..hp.n_layers)
            .map(|i| {
                Ok(Layer {
                    attn_norm: loader.norm(Role::AttnNorm, Some(i))?,
                    wq: loader.linear(Role::AttnQ, Some(i), bias(Role::AttnQBias))?,
                    wk: loader.linear(Role::AttnK, Some(i), bias(Role::AttnKBias))?,
                    wv: loader.linear(Role::AttnV, Some(i), bias(Role::AttnVBias))?,
                    qk_norm: if config.qk_norm {
                        Some(QkNorm {
                            q: loader.norm(Role::AttnQNorm, Some(i))?,
                            k: loader.norm(Role::AttnKNorm, Some(i))?,
                        })
                    } else {
                        None
                    },
                    wo: loader.linear(Role::AttnOut, Some(i), None)?,
                    ffn_norm: loader.norm(Role::FfnNorm, Some(i))?,
                    mlp: GatedMlp {
                        gate: loader.linear(Role::FfnGate, Some(i), None)?,
                        up: loader.linear(Role::FfnUp, Some(i), None)?,
                        down: loader.linear(Role::FfnDown, Some(i), None)?,
                        act: Activation::Silu,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = match loader.linear_opt(Role::Output)? {
            Some(output) => output,
            None => loader.tied_output()?,
        };
        Ok(Decoder {
            embd: loader.embedding(1.0)?,
            layers,
            rope: Rope::new(&hp.rope, hp.head_dim, freq_factors)?,
            attn: attn_params(hp, hp.sliding_window),
            head: LmHead {
                norm: loader.norm(Role::OutputNorm, None)?,
                output,
                softcap: hp.final_logit_softcap,
            },
        })
    }
}

impl Architecture for Decoder {
    fn forward(&self, ctx: &Ctx<'_>, batch: &Batch, kv: &mut KvCache) -> Result<Vec<f32>> {
        let n_tokens = batch.n_tokens();
        let (n_heads, n_kv_heads) = (self.attn.n_heads, self.attn.n_kv_heads);
        let mut x = self.embd.forward(ctx, &batch.tokens)?; // [n_tokens, d_model]
        tap(&x, "inp_embd", None);
        for (layer_idx, l) in self.layers.iter().enumerate() {
            let h = l.attn_norm.forward(&x);
            tap(&h, "attn_norm", Some(layer_idx));
            let mut q = l.wq.forward(ctx, &h, n_tokens)?; // [n_tokens, n_heads * head_dim]
            let mut k = l.wk.forward(ctx, &h, n_tokens)?; // [n_tokens, n_kv_heads * head_dim]
            let v = l.wv.forward(ctx, &h, n_tokens)?; // [n_tokens, n_kv_heads * head_dim_v]
            if let Some(qk_norm) = &l.qk_norm {
                qk_norm.q.forward_inplace(&mut q); // per head: rows of head_dim
                qk_norm.k.forward_inplace(&mut k);
                tap(&q, "q_norm", Some(layer_idx));
            }
            self.rope.apply(&mut q, n_heads, &batch.positions);
            self.rope.apply(&mut k, n_kv_heads, &batch.positions);
            let qkv = Qkv {
                q: &q,
                k: &k,
                v: &v,
            };
            let a = attention(ctx.cpu, &self.attn, qkv, kv.layer(layer_idx), batch); // [n_tokens, n_heads * head_dim_v]
            let o = l.wo.forward(ctx, &a, n_tokens)?;
            tap(&o, "attn_out", Some(layer_idx));
            add_inplace(&mut x, &o);

            let h = l.ffn_norm.forward(&x);
            tap(&h, "ffn_norm", Some(layer_idx));
            let f = l.mlp.forward(ctx, &h, n_tokens)?;
            tap(&f, "ffn_out", Some(layer_idx));
            add_inplace(&mut x, &f);
            tap(&x, "l_out", Some(layer_idx));
        }
        let logits = self.head.forward(ctx, &x, &batch.logit_rows)?;
        tap(&logits, "result_output", None);
        Ok(logits)
    }
}
