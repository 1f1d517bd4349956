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
use crate::layers::{Ctx, Scratch, sized};
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
        let a = &self.attn;
        let d_model = self.embd.d_model;
        let x = sized(&mut s.x, n_tokens * d_model); // [n_tokens, d_model]
        self.embd.forward_into(ctx, &batch.tokens, x)?;
        tap(x, "inp_embd", None);
        let h = sized(&mut s.h, n_tokens * d_model);
        let o = sized(&mut s.o, n_tokens * d_model);
        let q = sized(&mut s.q, n_tokens * a.n_heads * a.head_dim);
        let k = sized(&mut s.k, n_tokens * a.n_kv_heads * a.head_dim);
        let v = sized(&mut s.v, n_tokens * a.n_kv_heads * a.head_dim_v);
        let rope = &mut s.rope[0];
        self.rope.fill_table(&batch.positions, rope);
        if let Some(first) = self.layers.first() {
            first.attn_norm.apply_to(cpu, x, h);
        }
        for (layer_idx, l) in self.layers.iter().enumerate() {
            tap(h, "attn_norm", Some(layer_idx));
            // q: [n_tokens, n_heads * head_dim], k: [n_tokens, n_kv_heads * head_dim],
            // v: [n_tokens, n_kv_heads * head_dim_v]
            Linear::forward_many(ctx, [&l.wq, &l.wk, &l.wv], h, n_tokens, [q, k, v])?;
            if let Some(qk_norm) = &l.qk_norm {
                qk_norm.q.apply(cpu, q); // per head: rows of head_dim
                qk_norm.k.apply(cpu, k);
                tap(q, "q_norm", Some(layer_idx));
            }
            self.rope.apply_table(cpu, q, a.n_heads, rope);
            self.rope.apply_table(cpu, k, a.n_kv_heads, rope);
            let qkv = Qkv { q, k, v };
            let attn = attention(cpu, a, qkv, kv.layer(layer_idx), batch, &mut s.attn); // [n_tokens, n_heads * head_dim_v]
            l.wo.forward_into(ctx, attn, n_tokens, o)?;
            tap(o, "attn_out", Some(layer_idx));
            l.ffn_norm.add_apply(cpu, x, o, h); // x += o; h = ffn_norm(x)
            tap(h, "ffn_norm", Some(layer_idx));
            l.mlp
                .forward_into(ctx, h, n_tokens, [&mut s.gate, &mut s.up], o)?;
            tap(o, "ffn_out", Some(layer_idx));
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
