//! The Qwen2 family: Qwen2, Qwen2.5 (Yang et al. 2024, <https://arxiv.org/abs/2407.10671>).
//!
//! A Llama-style pre-norm decoder whose Q, K and V projections carry biases. RoPE uses NeoX
//! pairing in both GGUF and safetensors (the converter does not permute Qwen's rows).
//! Small models tie the LM head to the embeddings.

use crate::arch::Architecture;
use crate::error::Result;
use crate::layers::decoder::{Decoder, DecoderConfig};
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

/// Builds the model from `loader`'s file, checking every tensor's shape and dtype.
pub(crate) fn build(loader: &Loader<'_>) -> Result<Box<dyn Architecture>> {
    let config = DecoderConfig {
        qkv_bias: true,
        qk_norm: false,
    };
    Ok(Box::new(Decoder::load(loader, config, None)?))
}
