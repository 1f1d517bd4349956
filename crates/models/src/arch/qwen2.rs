//! The Qwen2 family: Qwen2, Qwen2.5 (Yang et al. 2024, <https://arxiv.org/abs/2407.10671>).
//!
//! A Llama-style pre-norm decoder whose Q, K and V projections carry biases. RoPE uses NeoX
//! pairing in both GGUF and safetensors (the converter does not permute Qwen's rows).
//! Small models tie the LM head to the embeddings.

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
use crate::weights::{Loader, Role, TensorTable};

/// GGUF names of the Qwen2 family's tensors.
pub const TENSORS: TensorTable = &[
    (Role::TokenEmbd, "token_embd.weight"),
    (Role::Output, "output.weight"),
    (Role::OutputNorm, "output_norm.weight"),
    (Role::AttnNorm, "blk.{i}.attn_norm.weight"),
    (Role::AttnQ, "blk.{i}.attn_q.weight"),
    (Role::AttnK, "blk.{i}.attn_k.weight"),
    (Role::AttnV, "blk.{i}.attn_v.weight"),
    (Role::AttnOut, "blk.{i}.attn_output.weight"),
    (Role::AttnQBias, "blk.{i}.attn_q.bias"),
    (Role::AttnKBias, "blk.{i}.attn_k.bias"),
    (Role::AttnVBias, "blk.{i}.attn_v.bias"),
    (Role::FfnNorm, "blk.{i}.ffn_norm.weight"),
    (Role::FfnGate, "blk.{i}.ffn_gate.weight"),
    (Role::FfnUp, "blk.{i}.ffn_up.weight"),
    (Role::FfnDown, "blk.{i}.ffn_down.weight"),
];

struct Layer {
    attn_norm: RmsNorm,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    ffn_norm: RmsNorm,
    mlp: GatedMlp,
}

/// A loaded Qwen2-family model.
pub(crate) struct Qwen2 {
    embd: Embedding,
    layers: Vec<Layer>,
    rope: Rope,
    attn: AttnParams,
    head: LmHead,
}

/// Builds the model from `loader`'s file, checking every tensor's shape and dtype.
pub(crate) fn build(loader: &Loader<'_>) -> Result<Box<dyn Architecture>> {
    let hp = loader.hparams();
    let layers = (0..hp.n_layers)
        .map(|i| {
            Ok(Layer {
                attn_norm: loader.norm(Role::AttnNorm, Some(i))?,
                wq: loader.linear(Role::AttnQ, Some(i), Some(Role::AttnQBias))?,
                wk: loader.linear(Role::AttnK, Some(i), Some(Role::AttnKBias))?,
                wv: loader.linear(Role::AttnV, Some(i), Some(Role::AttnVBias))?,
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
    Ok(Box::new(Qwen2 {
        embd: loader.embedding(1.0)?,
        layers,
        rope: Rope::new(&hp.rope, hp.head_dim, None)?,
        attn: attn_params(hp, hp.sliding_window),
        head: LmHead {
            norm: loader.norm(Role::OutputNorm, None)?,
            output,
            softcap: hp.final_logit_softcap,
        },
    }))
}

impl Architecture for Qwen2 {
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
