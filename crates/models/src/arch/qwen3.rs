//! The Qwen3 family (dense): Qwen3 0.6B-32B (Qwen team 2025, <https://arxiv.org/abs/2505.09388>).
//!
//! A Llama-style pre-norm decoder with QK-norm: an RMSNorm over each head of Q and of K
//! (weights `[head_dim]`, shared by all heads) right after the projections, before RoPE.
//! No biases. `head_dim` is set explicitly and need not equal `d_model / n_heads`
//! (Qwen3-0.6B: 16 heads of 128 over `d_model` 1024), so Q and O are not square.

use crate::arch::Architecture;
use crate::error::Result;
use crate::layers::decoder::{Decoder, DecoderConfig};
use crate::weights::{Loader, Role, TensorTable};

/// GGUF names of the Qwen3 family's tensors.
pub const TENSORS: TensorTable = &[
    (Role::TokenEmbd, "token_embd.weight"),
    (Role::Output, "output.weight"),
    (Role::OutputNorm, "output_norm.weight"),
    (Role::AttnNorm, "blk.{i}.attn_norm.weight"),
    (Role::AttnQ, "blk.{i}.attn_q.weight"),
    (Role::AttnK, "blk.{i}.attn_k.weight"),
    (Role::AttnV, "blk.{i}.attn_v.weight"),
    (Role::AttnOut, "blk.{i}.attn_output.weight"),
    (Role::AttnQNorm, "blk.{i}.attn_q_norm.weight"),
    (Role::AttnKNorm, "blk.{i}.attn_k_norm.weight"),
    (Role::FfnNorm, "blk.{i}.ffn_norm.weight"),
    (Role::FfnGate, "blk.{i}.ffn_gate.weight"),
    (Role::FfnUp, "blk.{i}.ffn_up.weight"),
    (Role::FfnDown, "blk.{i}.ffn_down.weight"),
];

/// Builds the model from `loader`'s file, checking every tensor's shape and dtype.
pub(crate) fn build(loader: &Loader<'_>) -> Result<Box<dyn Architecture>> {
    let config = DecoderConfig {
        qkv_bias: false,
        qk_norm: true,
    };
    Ok(Box::new(Decoder::load(loader, config, None)?))
}
